"""Every `snakemake` command in README.md and docs/*.md runs as written (as a dry run), so the
documentation cannot rot.

The commands are read from the pages themselves: each line of a code block, and each inline code
span, that starts with ``snakemake``. Each runs from a copy of the project (the README's commands
are run from the project root, with its profiles) next to an SLM-Lab checkout built from the
test fixtures; ``my-slm-lab.yaml`` is the README's own example, pointed at that checkout. ``-n``
is added to every command: targets that would run (training, publishing, ``status``, ``cancel``)
are planned, not run, so no command needs the network or a token. A ``--report FILE`` command
is planned without its report options: the report is written after the jobs it plans have run.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from slm_lab_checkout import build_checkout
from workflow_helpers import REPO, planned_jobs

README = REPO / "README.md"
# The front door and every page it leads to.
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
CHECKOUT_PLACEHOLDER = "/path/to/SLM-Lab"
# What a copy of the project leaves out: version control, virtual environments, outputs.
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv*", ".snakemake", "build", "*.egg-info", "__pycache__", ".*_cache",
    ".slm-lab-src", ".env",
)  # fmt: skip


def not_copied(folder: str, names: list[str]) -> set[str]:
    """The patterns above anywhere; outputs (results/, data/) only at the project's top level,
    since slm_bench/data holds the bundled random baseline."""
    top = {"results", "data"} & set(names) if Path(folder) == REPO else set()
    return set(_NOT_COPIED(folder, names)) | top


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```", text, flags=re.M | re.S)


def readme_commands(text: str) -> list[str]:
    """The README's `snakemake` command lines: code-block lines and inline code spans."""
    commands = []
    for _info, body in _fenced_blocks(text):
        for line in body.splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())  # a shell comment after the command
            if line.startswith("snakemake ") or line == "snakemake":
                commands.append(line)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    commands += [span for span in re.findall(r"`(snakemake(?: [^`]*)?)`", prose)]
    return list(dict.fromkeys(commands))


def checkout_configs(text: str) -> list[str]:
    """The example checkout configs (YAML blocks headed ``# my-slm-lab.yaml``) of one page."""
    return [
        body
        for info, body in _fenced_blocks(text)
        if info.strip() == "yaml" and body.startswith("# my-slm-lab.yaml")
    ]


def readme_checkout_config(text: str) -> str:
    """The README's example checkout config, the one every page's commands run with."""
    configs = checkout_configs(text)
    assert configs, "README.md has no YAML block headed '# my-slm-lab.yaml'"
    return configs[0]


COMMANDS = list(
    dict.fromkeys(
        command for page in PAGES for command in readme_commands(page.read_text(encoding="utf-8"))
    )
)


def test_the_pages_have_commands_to_check():
    assert len(COMMANDS) >= 10, COMMANDS
    assert any("--configfile" in command for command in COMMANDS)
    assert any("--workflow-profile profiles/dstack" in command for command in COMMANDS)
    pages_with_commands = {
        page.name for page in PAGES if readme_commands(page.read_text(encoding="utf-8"))
    }
    assert {"README.md", "checkout.md", "remote-runs.md", "search.md"} <= pages_with_commands


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_example_checkout_config_is_the_readmes(page):
    """A page that repeats the checkout example repeats it exactly: the commands run with it."""
    expected = readme_checkout_config(README.read_text(encoding="utf-8"))
    for config in checkout_configs(page.read_text(encoding="utf-8")):
        assert config == expected, f"{page.name}: its '# my-slm-lab.yaml' differs from README.md's"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project (run from its root, as the README does) and a checkout beside it."""
    base = tmp_path_factory.mktemp("readme")
    checkout = build_checkout(base / "SLM-Lab")
    project = base / "slm-bench"
    shutil.copytree(REPO, project, ignore=not_copied)
    text = README.read_text(encoding="utf-8")
    config = readme_checkout_config(text).replace(CHECKOUT_PLACEHOLDER, str(checkout))
    (project / "my-slm-lab.yaml").write_text(config, encoding="utf-8")
    return project


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_plans(project, command):
    # FILE stands for the reader's own config (docs/slurm.md): the README's checkout example.
    argv = shlex.split(command.replace("--configfile=FILE", "--configfile=my-slm-lab.yaml"))
    assert argv[0] == "snakemake"
    if "--report" in argv:
        at = argv.index("--report")
        argv = [a for a in argv[:at] + argv[at + 2 :] if a != "--report-after-run"]
    dry_run = [] if {"-n", "--dry-run"} & set(argv) else ["-n"]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *argv[1:], *dry_run],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}"
    assert "Traceback" not in result.stdout, result.stdout[-3000:]
    if "--configfile" in command and "my-slm-lab.yaml" in command:
        jobs = planned_jobs(result.stdout)
        # the checkout's rows only: none of the demo config's algorithm folders
        assert not re.search(r"results/CartPole-v1/(ppo|a2c|dqn)/", result.stdout), command
        assert jobs, result.stdout[-3000:]


def _anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    headings = re.findall(r"^#{1,6} (.+)$", prose, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_of_the_pages_resolves(page):
    """A link to a file of the project (or an anchor in it) resolves from the page that holds it."""
    text = page.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        missing_anchor = (
            resolved.exists()
            and anchor
            and resolved.suffix == ".md"
            and anchor not in _anchors(resolved.read_text(encoding="utf-8"))
        )
        if not resolved.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"
