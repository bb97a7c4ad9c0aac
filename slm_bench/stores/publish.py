"""Publishing: copy what BENCHMARKS.md links to from the dev repo to the public one.

SLM-Lab's workflow, on any store: the table's rows that link to the dev repo name the folders to
publish; ``hf_data/`` is the manifest (it ends up holding exactly those folders). Pull them from
dev into ``hf_data/data/``; upload README.md, then ``hf_data/data`` as ``data``; rewrite the
table's links from the dev repo to the public one; upload ``docs/`` with the rewritten table,
its relative links made to work in the public repo (``slm_bench/stores/publish_links.py``: plots
uploaded beside it, spec links to the source repository).
Uploads skip files the public repo already holds, so publishing twice sends nothing the second
time. Nothing is ever pushed with git.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from slm_bench.atomic import staged_dir
from slm_bench.errors import BenchError
from slm_bench.formats.benchmarks_md import BenchmarksDoc
from slm_bench.stores import Store, check_folder_name, require_folders
from slm_bench.stores.publish_links import LinkFix, apply_links, plan_links


@dataclass(frozen=True)
class PublishPlan:
    """The manifest: which folders go from the dev repo to the public one, and what goes where."""

    doc_path: Path
    readme_path: Path
    docs_dir: Path | None
    hf_data_dir: Path
    dev_store: Store = field(repr=False)
    public_store: Store = field(repr=False)
    folders: tuple[str, ...]  # linked to the dev repo: pulled and published
    already_public: tuple[str, ...]  # linked to the public repo already
    present: tuple[str, ...]  # of ``folders``, already pulled into hf_data/data
    stale: tuple[str, ...]  # in hf_data/data but not linked by the table: removed
    doc_in_docs: str  # where the rewritten table goes inside docs/
    links: tuple[LinkFix, ...] = ()  # relative links that would not work in the public repo
    link_dir: Path | None = None  # the folder the table's relative links start from
    data_hrefs: tuple[str, ...] = ()  # the table's data-folder links (dev or public repo)

    @property
    def data_dir(self) -> Path:
        return self.hf_data_dir / "data"

    @property
    def staged_docs_dir(self) -> Path:
        return self.hf_data_dir / "docs"

    def public_link(self, folder: str) -> str:
        """The folder's link in the published table (``../data/FOLDER``, or the Hub URL)."""
        return self.public_store.repo_link(folder, f"docs/{self.doc_in_docs}")


@dataclass
class PublishReport:
    pulled: list[str]
    reused: list[str]
    removed: list[str]
    uploaded: dict[str, int]  # files sent per step: README.md, data, docs
    links_rewritten: int
    published_doc: Path
    links_fixed: list[str] = field(default_factory=list)  # LinkFix.line() of each

    def summary(self) -> str:
        sent = ", ".join(f"{name} {count}" for name, count in self.uploaded.items())
        return (
            f"pulled {len(self.pulled)} folder(s) ({len(self.reused)} already there), removed "
            f"{len(self.removed)}; files uploaded: {sent}; links rewritten: {self.links_rewritten}"
            f"; relative links fixed: {len(self.links_fixed)}"
        )


def _data_links(dev: Store, public: Store, folder: str, link_dir: Path) -> dict[str, str]:
    """Every form a link to ``folder`` takes in the table -> which repo it names: a link from
    the table's folder, and the project-relative path tables written before used."""
    return {
        public.url(folder): "public",
        public.link(folder, link_dir): "public",
        dev.url(folder): "dev",
        dev.link(folder, link_dir): "dev",
    }


def plan_publish(
    doc_path: str | Path,
    readme_path: str | Path,
    docs_dir: str | Path | None,
    dev_store: Store,
    public_store: Store,
    hf_data_dir: str | Path,
    link_dir: str | Path | None = None,
) -> PublishPlan:
    """Read the table and the local hf_data tree; no network call. ``link_dir`` is where the
    table's relative links start (its own folder, or the checkout's docs/ it is written for)."""
    doc_path, readme_path, hf_data_dir = Path(doc_path), Path(readme_path), Path(hf_data_dir)
    docs = Path(docs_dir) if docs_dir is not None else None
    link_dir = Path(link_dir) if link_dir is not None else doc_path.parent
    if dev_store.repo == public_store.repo and dev_store.name == public_store.name:
        raise BenchError(
            f"publish: dev and public repo are both {dev_store.repo} (expected two repos)"
        )
    if not readme_path.is_file():
        raise BenchError(f"{readme_path}: README.md to publish not found")
    if docs is not None and not docs.is_dir():
        raise BenchError(f"{docs}: docs folder to publish not found")
    folders, already_public, data_hrefs = _linked_folders(
        BenchmarksDoc.read(doc_path), dev_store, public_store, link_dir
    )
    data_dir = hf_data_dir / "data"
    pulled = {p.name for p in data_dir.iterdir() if p.is_dir()} if data_dir.is_dir() else set()
    pulled = {name for name in pulled if not name.startswith(".")}
    keep = set(folders) | set(already_public)
    try:
        in_docs = doc_path.resolve().relative_to(docs.resolve()).as_posix() if docs else None
    except ValueError:
        in_docs = None
    in_docs = in_docs or doc_path.name
    text = doc_path.read_text(encoding="utf-8")
    links = plan_links(text, link_dir, docs, in_docs, skip=set(data_hrefs))
    return PublishPlan(
        doc_path=doc_path,
        readme_path=readme_path,
        docs_dir=docs,
        hf_data_dir=hf_data_dir,
        dev_store=dev_store,
        public_store=public_store,
        folders=tuple(folders),
        already_public=tuple(already_public),
        present=tuple(f for f in folders if f in pulled),
        stale=tuple(sorted(pulled - keep)),
        doc_in_docs=in_docs,
        links=tuple(links),
        link_dir=link_dir,
        data_hrefs=tuple(dict.fromkeys(data_hrefs)),
    )


def _linked_folders(
    doc: BenchmarksDoc, dev_store: Store, public_store: Store, link_dir: Path
) -> tuple[list[str], list[str], list[str]]:
    """The folders the table's rows link in the dev repo, those already in the public repo, and
    the links themselves; a link that names the dev repo in another form is an error."""
    dev_marker = f"/datasets/{dev_store.repo}/tree/main/data/"
    found: dict[str, list[str]] = {"dev": [], "public": []}
    data_hrefs: list[str] = []
    for row in doc.result_rows():
        if not row.hf_url:
            continue
        folder = check_folder_name(dev_store.repo, row.hf_folder)
        repo = _data_links(dev_store, public_store, folder, link_dir).get(row.hf_url)
        if repo is None and dev_marker in row.hf_url:
            raise BenchError(
                f"{doc.source}: HF Data link of {row.spec_name} is {row.hf_url} (expected the "
                f"dev store's {dev_store.link(folder, link_dir)}: check the store endpoint)"
            )
        if repo is None:
            continue
        data_hrefs.append(row.hf_url)
        if folder not in found[repo]:
            found[repo].append(folder)
    return found["dev"], found["public"], data_hrefs


def format_manifest(plan: PublishPlan) -> str:
    """What :func:`publish` will do, one line per action (a dry run)."""
    dev, public = plan.dev_store, plan.public_store
    lines = [
        f"publish {plan.doc_path}: {dev.name} store, {dev.repo} -> {public.repo}",
        f"  table links {len(plan.folders)} folder(s) in {dev.repo}, "
        f"{len(plan.already_public)} already in {public.repo}",
    ]
    for folder in plan.folders:
        note = "  (already pulled)" if folder in plan.present else ""
        lines.append(f"  pull     {dev.repo}/data/{folder} -> {plan.data_dir / folder}{note}")
    for folder in plan.stale:
        lines.append(f"  remove   {plan.data_dir / folder} (not linked by the table)")
    lines.append(f"  upload   {plan.readme_path} -> {public.repo}/README.md")
    lines.append(f"  upload   {plan.data_dir} -> {public.repo}/data")
    linked = plan.folders + plan.already_public
    example = f" (e.g. {plan.public_link(linked[0])})" if linked else ""
    lines.append(
        f"  rewrite  {len(linked)} data link(s) -> {public.repo}/data in docs/"
        f"{plan.doc_in_docs}{example}"
    )
    source = f"{plan.docs_dir} + rewritten {plan.doc_in_docs}" if plan.docs_dir else "rewritten"
    lines.append(f"  upload   docs ({source}) -> {public.repo}/docs")
    lines += [fix.line() for fix in plan.links]
    return "\n".join(lines)


def publish(plan: PublishPlan) -> PublishReport:
    """Carry out ``plan``: pull, upload README.md and data, rewrite links, upload docs."""
    dev, public = plan.dev_store, plan.public_store
    require_folders(dev, list(plan.folders))  # fail before anything is uploaded

    # hf_data/data is the manifest: exactly the table's folders.
    for folder in plan.stale:
        shutil.rmtree(plan.data_dir / folder)
    reused = [f for f in plan.folders if (plan.data_dir / f).is_dir()]
    pulled = [f for f in plan.folders if f not in reused]
    for folder in pulled:
        dev.download(folder, plan.hf_data_dir)

    uploaded = {"README.md": public.upload_file(plan.readme_path, "README.md")}
    has_data = plan.data_dir.is_dir() and any(plan.data_dir.iterdir())
    uploaded["data"] = public.upload_tree(plan.data_dir, "data") if has_data else 0
    # Links move to the public repo only once the data is there.
    require_folders(public, list(plan.folders + plan.already_public))

    doc = BenchmarksDoc.read(plan.doc_path)
    rewritten = doc.rewrite_links(dev.repo, public.repo)
    # Every data link, as the published table (docs/...) reaches the public repo's data/.
    linked = set(plan.folders + plan.already_public)
    for row in doc.result_rows():
        new = plan.public_link(row.hf_folder) if row.hf_folder in linked else None
        if new and row.hf_url != new and row.hf_url in plan.data_hrefs:
            doc.upsert_row(row.env, replace(row, hf_url=new))
            rewritten += 1

    with staged_dir(plan.staged_docs_dir) as tmp:
        if plan.docs_dir is not None:
            shutil.copytree(plan.docs_dir, tmp, dirs_exist_ok=True)
        doc.write(tmp / plan.doc_in_docs)
        staged_doc = tmp / plan.doc_in_docs
        text = staged_doc.read_text(encoding="utf-8")
        staged_doc.write_text(apply_links(text, list(plan.links), tmp), encoding="utf-8")
    uploaded["docs"] = public.upload_tree(plan.staged_docs_dir, "docs")
    return PublishReport(
        pulled=pulled,
        reused=reused,
        removed=list(plan.stale),
        uploaded=uploaded,
        links_rewritten=rewritten,
        published_doc=plan.staged_docs_dir / plan.doc_in_docs,
        links_fixed=[fix.line().strip() for fix in plan.links],
    )
