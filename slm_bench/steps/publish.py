"""The publishing stages (opt-in, final): the dry run's manifest, and the promotion of the table's
runs from the dev repo to the public one."""

from __future__ import annotations

from pathlib import Path

from slm_bench.atomic import write_json, write_text
from slm_bench.config_model import BenchConfig
from slm_bench.stores import public_store_from_config, store_from_config

DATASET_CARD = """---
pretty_name: {title}
---
# {title}

SLM-Lab benchmark runs, one folder per result under `data/`, as linked from
[docs/BENCHMARKS.md](docs/BENCHMARKS.md). Each folder is an SLM-Lab run folder: the resolved
spec, trial and session metrics, per-session CSVs and logs.
"""


def _publish_plan(config: BenchConfig, table: Path, hf_data: Path, card: Path):
    from slm_bench.steps.tables import base_benchmarks
    from slm_bench.stores.publish import plan_publish

    checkout = config.checkout
    root = Path(checkout.root) if checkout else None
    readme = config.publish.readme or (root / "README.md" if root else None)
    if readme is None:
        write_text(card, DATASET_CARD.format(title=config.title))
        readme = card
    docs = config.publish.docs or (checkout.benchmarks_path.parent if checkout else None)
    # The table's links start where it is written for: the checkout's docs/, or its folder.
    base = base_benchmarks(config)
    return plan_publish(
        table,
        readme,
        docs,
        store_from_config(config),
        public_store_from_config(config),
        hf_data,
        link_dir=base.parent if base else Path(table).parent,
    )


def write_publish_manifest(
    config: BenchConfig, table: Path, hf_data: Path, out_manifest: Path, log
) -> None:
    """The dry run of publishing: what would be pulled and uploaded where (no network)."""
    from slm_bench.stores.publish import format_manifest

    out_dir = Path(out_manifest).parent
    manifest = format_manifest(_publish_plan(config, table, Path(hf_data), out_dir / "README.md"))
    log(manifest)
    write_text(out_manifest, manifest + "\n")


def publish_results(
    config: BenchConfig, table: Path, hf_data: Path, out_report: Path, out_table: Path, log
) -> None:
    """Publish the table's runs from the dev repo to the public one (SLM-Lab's workflow)."""
    from slm_bench.stores.publish import format_manifest, publish
    from slm_bench.stores.publish_links import rebase_links

    plan = _publish_plan(config, table, Path(hf_data), Path(out_report).parent / "README.md")
    log(format_manifest(plan))
    report = publish(plan)
    log(report.summary())
    # A copy of the published table whose links reach, from results/publish/, the files they
    # reach in the public repo: the staged docs/ and the pulled data/ under hf_data.
    published = Path(report.published_doc)
    text = rebase_links(
        published.read_text(encoding="utf-8"), published.parent, Path(out_table).parent
    )
    write_text(out_table, text)
    write_json(
        out_report,
        {
            "public_repo": plan.public_store.repo,
            "folders": list(plan.folders),
            "pulled": report.pulled,
            "reused": report.reused,
            "removed": report.removed,
            "uploaded": report.uploaded,
            "links_rewritten": report.links_rewritten,
        },
    )
