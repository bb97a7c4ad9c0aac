"""`make setup` says what it is doing: one line per step, pip's output in a log, and on a
failure the step and the log's last lines.

pip cannot install the project offline, so ``PYTHON`` is a stand-in interpreter whose
``-m venv DIR`` makes ``DIR/bin/pip``: a script that prints pip-like noise and exits with the
code the test chose (the Makefile only runs the commands and reads their exit codes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/bin/sh
# stand-in for `python3 -m venv DIR`
[ "$1" = "-m" ] && [ "$2" = "venv" ] || exit 2
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'PIP'
#!/bin/sh
echo "Collecting torch==2.5.1"
echo "  Downloading torch-2.5.1-cp311-none-linux_x86_64.whl (906.4 MB)"
echo "Successfully installed $*"
case "$*" in *"-e"*) exit ${PIP_EXIT:-0};; esac
PIP
chmod +x "$3/bin/pip"
"""


def make_setup(tmp_path: Path, pip_exit: int = 0) -> subprocess.CompletedProcess:
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    venv = tmp_path / "venv"
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "setup", f"VENV={venv}",
         f"PYTHON={python}"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PIP_EXIT": str(pip_exit)},
        timeout=60,
    )  # fmt: skip


def test_setup_prints_one_line_per_step_and_keeps_pips_output_in_a_log(tmp_path):
    done = make_setup(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    venv, log = tmp_path / "venv", tmp_path / "venv-setup.log"
    assert done.stdout.splitlines() == [
        f"setup: 1/3 creating {venv} with {tmp_path / 'python'} (log: {log})",
        "setup: 2/3 upgrading pip",
        "setup: 3/3 installing slm-bench with its pinned dependencies (torch included: a few "
        "minutes)",
        f"setup: done: {venv} ready",
    ]
    assert done.stderr == ""
    assert "Downloading torch" in log.read_text()  # pip's noise: in the log, not on screen
    assert (venv / "bin" / "snakemake").exists()


def test_a_failed_step_names_itself_and_shows_the_logs_last_lines(tmp_path):
    failed = make_setup(tmp_path, pip_exit=1)
    assert failed.returncode != 0
    lines = failed.stdout.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("setup: failed:")]
    assert lines[at].startswith("setup: failed: 3/3 installing slm-bench")
    assert lines[at].endswith(f"last lines of {tmp_path / 'venv-setup.log'}:")
    assert lines[at + 1 :] == (tmp_path / "venv-setup.log").read_text().splitlines()[-20:]
    assert lines[-1].startswith("Successfully installed") and "-e .[test,slurm]" in lines[-1]
    assert not (tmp_path / "venv" / "bin" / "snakemake").exists()  # setup is not marked done
