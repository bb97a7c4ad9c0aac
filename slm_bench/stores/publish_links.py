"""Working links in the published docs/BENCHMARKS.md.

The table is rendered where it is built (``results/`` or a checkout's ``docs/``), so its
relative links (the plots, the SPEC_FILE links, SLM-Lab's ``../README.md``) point at files the
public dataset repo does not have. Before upload each relative link is made to work there:

- a link whose file is uploaded with ``docs/`` anyway stays as it is;
- a plot is uploaded beside the table (``docs/plots/NAME``); a plot that does not exist is
  dropped with a note in its place;
- any other file links to the source repository it belongs to, at the pushed commit
  (``https://github.com/OWNER/REPO/blob/COMMIT/PATH``), when it is tracked, unmodified and
  pushed; otherwise the file is uploaded beside the table (``docs/sources/...``);
- a link to a folder (other than the data folders, which publishing rewrites) or to a file that
  does not exist keeps its text without the link; the manifest says which of the two it was.

``rebase_links`` moves a document's relative links to another folder (the copy of the
published table kept in ``results/publish/``).
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LINK_RE = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<href>[^)\s]+)\)")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


@dataclass(frozen=True)
class LinkFix:
    """What happens to one relative link of the published table."""

    kind: str  # upload | source | drop-plot | unlink | unlink-folder
    href: str  # as written in the table
    new_href: str | None  # None: no link any more
    local: Path | None  # the file uploaded beside the table (kind upload)
    dest: str | None  # where it goes inside docs/ (kind upload)

    def line(self) -> str:
        if self.kind == "upload":
            return f"  link     {self.href} -> docs/{self.dest} (uploaded beside the table)"
        if self.kind == "source":
            return f"  link     {self.href} -> {self.new_href}"
        if self.kind == "drop-plot":
            return f"  drop     plot {self.href} (not found; a note takes its place)"
        if self.kind == "unlink-folder":
            return f"  unlink   {self.href} (a folder, not published with docs/; its text stays)"
        return f"  unlink   {self.href} (not found; its text stays)"


def _is_relative(href: str) -> bool:
    return not (re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", href) or href.startswith(("#", "/")))


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def web_url(remote: str) -> str | None:
    """``https://host/owner/repo`` for a git remote URL (https, ssh or scp-like), else None."""
    remote = remote.strip().removesuffix(".git")
    if match := re.match(r"^https?://(?:[^@/]+@)?([^/]+)/(.+)$", remote):
        return f"https://{match[1]}/{match[2]}"
    if match := re.match(r"^ssh://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+)$", remote):
        return f"https://{match[1]}/{match[2]}"
    if match := re.match(r"^[^@/]+@([^:/]+):(.+)$", remote):
        return f"https://{match[1]}/{match[2]}"
    return None


def source_url(path: Path) -> str | None:
    """The file's URL in its source repository at a pushed commit, if it is tracked,
    unmodified there and the commit is on the remote; else None."""
    folder = path.parent
    root = _git(folder, "rev-parse", "--show-toplevel")
    remote = _git(folder, "remote", "get-url", "origin")
    commit = _git(folder, "rev-parse", "HEAD")
    if not (root and remote and commit) or (base := web_url(remote)) is None:
        return None
    top = Path(root)
    relative = path.resolve().relative_to(top.resolve()).as_posix()
    if _git(top, "ls-files", "--error-unmatch", relative) is None:
        return None  # untracked
    if _git(top, "diff", "--quiet", "HEAD", "--", relative) is None:
        return None  # modified since the commit
    if not _git(top, "branch", "-r", "--contains", commit):
        return None  # the commit is not pushed: the link would not resolve
    return f"{base}/blob/{commit}/{relative}"


def plan_links(
    doc_text: str,
    source_dir: Path,
    docs_dir: Path | None,
    doc_in_docs: str,
    skip: set[str] | frozenset[str] = frozenset(),
) -> list:
    """One :class:`LinkFix` per relative link (first occurrence) that would not work in the
    public repo's ``docs/{doc_in_docs}``; links in ``skip`` (the data folders) are the
    caller's."""
    fixes: dict[str, LinkFix] = {}
    doc_folder = posixpath.dirname(doc_in_docs)
    for match in LINK_RE.finditer(doc_text):
        href = match["href"]
        if href in fixes or href in skip or not _is_relative(href):
            continue
        path = href.split("#", 1)[0]
        fragment = href[len(path) :]
        if not path:
            continue
        if docs_dir is not None:
            uploaded = (docs_dir / doc_folder / path).resolve()
            inside = uploaded.is_relative_to(docs_dir.resolve())
            if inside and uploaded.exists():
                continue  # goes up with docs/
        local = (source_dir / path).resolve()
        image = bool(match["bang"]) or path.lower().endswith(IMAGE_SUFFIXES)
        if not local.is_file():
            kind = "drop-plot" if image else "unlink-folder" if local.is_dir() else "unlink"
            fixes[href] = LinkFix(kind, href, None, None, None)
            continue
        url = None if image else source_url(local)
        if url is not None:
            fixes[href] = LinkFix("source", href, url + fragment, None, None)
            continue
        dest = f"plots/{local.name}" if image else f"sources/{_source_name(local)}"
        new_href = posixpath.relpath(dest, doc_folder or ".") + fragment
        fixes[href] = LinkFix("upload", href, new_href, local, dest)
    return list(fixes.values())


def _source_name(local: Path) -> str:
    """A stable path under docs/sources/ for a file: relative to the working directory when it
    is under it (``specs/ppo_classic.yaml``), else its name."""
    try:
        return local.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return local.name


def apply_links(doc_text: str, fixes: list[LinkFix], staged_docs: Path) -> str:
    """Copy the files to upload into ``staged_docs`` and rewrite the table's links."""
    by_href = {fix.href: fix for fix in fixes}
    for fix in fixes:
        if fix.kind == "upload":
            assert fix.local is not None and fix.dest is not None  # an upload names both
            target = staged_docs / fix.dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fix.local, target)

    def rewrite(match: re.Match) -> str:
        fix = by_href.get(match["href"])
        if fix is None:
            return match[0]
        if fix.kind == "drop-plot":
            return f"*(plot not published: {match['href']} was not found)*"
        if fix.new_href is None:
            return match["text"]
        return f"{match['bang']}[{match['text']}]({fix.new_href})"

    return LINK_RE.sub(rewrite, doc_text)


def rebase_links(doc_text: str, from_dir: Path, to_dir: Path) -> str:
    """The document's relative links, written for a copy in ``from_dir``, made to reach the
    same files from ``to_dir``."""
    source, dest = Path(from_dir).resolve(), Path(to_dir).resolve()

    def rebase(match: re.Match) -> str:
        href = match["href"]
        path = href.split("#", 1)[0]
        if not path or not _is_relative(href):
            return match[0]
        moved = Path(os.path.relpath(source / path, dest)).as_posix() + href[len(path) :]
        return f"{match['bang']}[{match['text']}]({moved})"

    return LINK_RE.sub(rebase, doc_text)
