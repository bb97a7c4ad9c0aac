"""A directory laid out like an SLM-Lab checkout, from the project's own SLM-Lab fixtures.

``docs/BENCHMARKS.md`` is SLM-Lab's real file (292 result rows) and ``slm_lab/spec/`` holds the
real spec files the fixtures carry. With ``complete=True`` every spec file a row names but the
fixtures lack is written too, each of its spec names a copy of SLM-Lab's PPO CartPole spec with
``${env}`` and ``${max_frame}`` placeholders (a stand-in: only the planning path reads it), so
that all 292 rows plan.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slm-lab"
TEMPLATE_FILE = "benchmark/ppo/ppo_cartpole.yaml"
TEMPLATE_NAME = "ppo_cartpole"


def build_checkout(root: Path, complete: bool = True) -> Path:
    from slm_bench.formats.benchmarks_md import BenchmarksDoc
    from slm_bench.formats.spec import locate_spec_file

    (root / "docs").mkdir(parents=True)
    shutil.copyfile(FIXTURES / "BENCHMARKS.md", root / "docs" / "BENCHMARKS.md")
    shutil.copytree(FIXTURES / "specs", root / "slm_lab" / "spec")
    if not complete:
        return root
    spec_dir = root / "slm_lab" / "spec"
    template = yaml.safe_load((spec_dir / TEMPLATE_FILE).read_text())[TEMPLATE_NAME]
    template["env"].update(name="${env}", max_frame="${max_frame}")
    missing: dict[Path, dict] = {}
    for row in BenchmarksDoc.read(root / "docs" / "BENCHMARKS.md").result_rows():
        if not row.spec_file or not row.spec_name:
            continue
        path = locate_spec_file(row.spec_file, root)
        if not path.is_file():
            missing.setdefault(path, {})[row.spec_name] = template
    for path, specs in missing.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(specs, sort_keys=False)
        # SLM-Lab's placeholders: quoted in the file, substituted before parsing.
        path.write_text(re.sub(r"'(\$\{\w+\})'", r'"\1"', text))
    return root
