"""Every link of a Markdown file, resolved as a reader's viewer resolves it: a relative link
from the file's own folder, on disk; a link to the test Hub by asking it (its web-page route,
which answers 404 for a path the repo does not have). Other sites cannot be asked offline and
are left out (and counted)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from slm_bench.stores.publish_links import LINK_RE


@dataclass
class LinkCheck:
    checked: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)  # other sites: not asked


def _hub_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the test Hub
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def check_links(path: Path, hub_url: str | None = None, text: str | None = None) -> LinkCheck:
    """Resolve every link of ``path`` (or of ``text``, as if it were that file)."""
    text = Path(path).read_text(encoding="utf-8") if text is None else text
    result = LinkCheck()
    for match in LINK_RE.finditer(text):
        href = match["href"]
        if href.startswith("#"):
            continue
        if "://" in href:
            if hub_url and href.startswith(hub_url):
                result.checked.append(href)
                if not _hub_answers(href):
                    result.broken.append(f"{path}: {href} (the Hub answers no such path)")
            else:
                result.offline.append(href)
            continue
        result.checked.append(href)
        target = Path(path).parent / href.split("#", 1)[0]
        if not target.exists():
            result.broken.append(f"{path}: {href} (no {target})")
    return result
