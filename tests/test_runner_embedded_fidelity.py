"""The embedded runner's folder and log lines against a real SLM-Lab run (tests/fixtures).

Wherever a reader would notice (SLM-Lab's plot and retro-analysis, a person grepping the logs),
an embedded run must look like ``slm-lab run``'s: same files, columns, JSON keys and formatting,
the same ``module:function`` for each kind of line, one summary block per checkpoint, and interim
trial metrics while it runs. docs/slm-lab-differences.md lists what still differs.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from owned_process import OwnedProcess, descendants, running

from slm_bench.cli import build_parser
from slm_bench.formats.logs import strip_ansi
from slm_bench.formats.run_folder import RunLayout
from slm_bench.formats.spec import resolve_spec
from slm_bench.runners.embedded import run_trial
from slm_bench.runners.process_group import OWNED_GROUP_ENV

REPO = Path(__file__).resolve().parents[1]
REAL_RUNS = Path(__file__).resolve().parent / "fixtures" / "slm-lab-runs"
REAL_FOLDER = REAL_RUNS / "ppo_cartpole_arc_2026_11_29_185430"
REAL_LOG = REAL_RUNS / "ppo_cartpole_arc_2026_11_29_185430.train.log"
REAL_NAME = "ppo_cartpole_arc"
NAME = "ppo_cartpole"
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \| (\w+) \| PID:\d+ \| (\S+) \| (.*)$")


def log_records(text: str) -> list[tuple[str, str, list[str]]]:
    """(module:function, first message line, continuation lines) per record of a console log."""
    records: list[tuple[str, str, list[str]]] = []
    for line in strip_ansi(text).splitlines():
        if match := _RECORD.match(line):
            records.append((match.group(2), match.group(3), []))
        elif records:
            records[-1][2].append(line)
    return records


def kind(message: str) -> str | None:
    """The kind of an SLM-Lab line a reader greps for, or None."""
    patterns = {
        "running": r"SLM-Lab: Running ",
        "summary": r"Trial 0 session \d+ \S+ \[train\]$",
        "session_done": r"Session \d+ done$",
        "trial_metrics": r"trial_metrics: ",
        "trial_done": r"Trial 0 done$",
        "output": r"Output: data/",
    }
    return next((k for k, p in patterns.items() if re.match(p, message)), None)


def where_by_kind(records) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for where, message, _ in records:
        if (k := kind(message)) is not None:
            found.setdefault(k, set()).add(where)
    return found


def relative_files(folder: Path, name: str) -> set[str]:
    """The folder's files (graph/ and model/ left out) with the run name replaced by NAME."""
    return {
        str(p.relative_to(folder)).replace(name, "NAME")
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).parts[0] not in ("graph", "model")
    }


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    """PPO CartPole with the real run's Settings shape (4 envs, 4 sessions), 1500 frames."""
    body = resolve_spec(REPO / "specs" / "ppo_classic.yaml", NAME, {"max_frame": 1500})
    data = tmp_path_factory.mktemp("data")
    stream = io.StringIO()
    spec_file = str(REPO / "specs" / "ppo_classic.yaml")
    folder = run_trial(body, spec_file, NAME, NAME, data, max_workers=2, stream=stream, seed=3)
    return folder, stream.getvalue()


def test_same_files_as_a_real_run(embedded_run):
    folder, _ = embedded_run
    assert relative_files(folder, NAME) >= relative_files(REAL_FOLDER, REAL_NAME)
    assert (folder / "model").is_dir()
    graph = f"{NAME}_t0_trial_graph_mean_returns_ma_vs_frames.png"  # SLM-Lab's trial MA graph
    assert (folder / "graph" / graph).stat().st_size > 10_000
    assert (folder / graph).read_bytes() == (folder / "graph" / graph).read_bytes()


def test_csv_columns_and_empty_epi_as_a_real_run(embedded_run):
    folder, _ = embedded_run
    real = pd.read_csv(REAL_FOLDER / "info" / f"{REAL_NAME}_t0_s0_session_df_train.csv")
    ours = pd.read_csv(folder / "info" / f"{NAME}_t0_s0_session_df_train.csv")
    assert list(ours.columns) == list(real.columns)
    assert real["epi"].isna().all() and ours["epi"].isna().all()  # vector envs count no episodes
    assert ours["t"].tolist() == (ours["frame"] / 4).tolist()
    # float32 values, as SLM-Lab's session_df holds them (20.227272, not 20.227272727272727)
    for csv in (REAL_FOLDER / "info" / f"{REAL_NAME}_t0_s0_session_df_train.csv",
                folder / "info" / f"{NAME}_t0_s0_session_df_train.csv"):  # fmt: skip
        for token in csv.read_text().splitlines()[1].split(",")[:2]:
            assert token == str(np.float32(token)), (csv.name, token)


def test_one_env_counts_episodes_and_steps_into_the_episode(tmp_path):
    """SLM-Lab's single-env clock: epi = finished episodes, t = steps into the current one."""
    body = resolve_spec(REPO / "specs" / "ppo_classic.yaml", NAME, {"max_frame": 1500})
    body["env"]["num_envs"] = 1
    body["meta"]["max_session"] = 1
    folder = run_trial(body, "ppo.yaml", NAME, NAME, tmp_path, max_workers=1, stream=io.StringIO())
    df = pd.read_csv(folder / "info" / f"{NAME}_t0_s0_session_df_train.csv")
    assert df["frame"].tolist() == [500, 1000, 1500]
    assert df["epi"].is_monotonic_increasing and df["epi"].iloc[-1] > 10  # CartPole: ~20 steps
    assert ((df["t"] >= 0) & (df["t"] < 500)).all()  # reset at every episode
    assert df["t"].tolist() != df["frame"].tolist()


def test_json_as_a_real_run(embedded_run):
    folder, _ = embedded_run
    pairs = [
        (f"{REAL_NAME}_spec.json", f"{NAME}_spec.json"),
        (f"{REAL_NAME}_t0_trial_metrics_scalar.json", f"{NAME}_t0_trial_metrics_scalar.json"),
        (f"info/{REAL_NAME}_t0_trial_metrics.json", f"info/{NAME}_t0_trial_metrics.json"),
        (
            f"info/{REAL_NAME}_t0_s0_session_metrics_train.json",
            f"info/{NAME}_t0_s0_session_metrics_train.json",
        ),
    ]
    for real_path, our_path in pairs:
        real_text = (REAL_FOLDER / real_path).read_text()
        our_text = (folder / our_path).read_text()
        assert not real_text.endswith("\n") and not our_text.endswith("\n"), our_path
        real, ours = json.loads(real_text), json.loads(our_text)
        assert list(ours) == list(real), our_path
        for key in ("scalar", "local", "meta"):
            if key in real:
                assert set(ours[key]) >= set(real[key]), (our_path, key)
    meta = json.loads((folder / f"{NAME}_spec.json").read_text())["meta"]
    assert re.fullmatch(r"[0-9a-f]{40}", meta["git_sha"])  # the spec's repository commit


def test_log_lines_as_a_real_run(embedded_run):
    folder, console = embedded_run
    real = log_records(REAL_LOG.read_text())
    ours = log_records(console)
    assert (
        where_by_kind(ours)
        == where_by_kind(real)
        == {
            "running": {"slm_lab.cli.main:run_spec"},
            "summary": {"slm_lab.agent:log_summary"},
            "session_done": {"slm_lab.lib.logger:info"},
            "trial_metrics": {"slm_lab.lib.logger:info"},
            "trial_done": {"slm_lab.lib.logger:info"},
            "output": {"slm_lab.cli.main:run_spec"},
        }
    )
    # the same order of the trial's last lines
    tail = [kind(message) for _, message, _ in ours[-3:]]
    assert tail == [kind(message) for _, message, _ in real[-3:]]
    for records, name, df_folder in ((real, REAL_NAME, REAL_FOLDER), (ours, NAME, folder)):
        for s in range(4):
            prefix = f"Trial 0 session {s} {name}_t0_s{s} [train]"
            blocks = [lines for _, message, lines in records if message == prefix]
            df = pd.read_csv(df_folder / "info" / f"{name}_t0_s{s}_session_df_train.csv")
            assert len(blocks) == len(df), (name, s)  # one summary per checkpoint
            keys = [item.split(":")[0] for line in blocks[-1] for item in line.split()]
            assert keys == list(df.columns)
            assert [len(line.split()) for line in blocks[-1]] == [4, 4, 4]


def test_session_logs_as_a_real_run(embedded_run):
    folder, _ = embedded_run
    for path_folder, name in ((REAL_FOLDER, REAL_NAME), (folder, NAME)):
        text = (path_folder / "log" / f"{name}_t0_s1.log").read_text()
        assert "\x1b[" not in text
        records = log_records(text)
        assert records[-1][1] == "Session 1 done"
        assert {kind(message) for _, message, _ in records} - {None} == {
            "summary",
            "session_done",
        }
        trial_log = (path_folder / "log" / f"{name}_t0.log").read_text()
        assert [kind(message) for _, message, _ in log_records(trial_log)][-3:] == [
            "trial_metrics",
            "trial_done",
            "output",
        ]


def test_a_killed_run_leaves_interim_trial_metrics_as_slm_lab_does(tmp_path):
    """SLM-Lab rewrites the trial metrics at every checkpoint: a killed run's folder holds them
    below max_frame (the pipeline's folder check must refuse it)."""
    argv = [sys.executable, "-m", "slm_bench", "run", "-s", "max_frame=200000", "--"]
    argv += [str(REPO / "specs" / "ppo_classic.yaml"), NAME, "train"]
    # Its own process group, which dies with this test even if pytest is SIGKILLed.
    run = OwnedProcess(argv, tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        found: list[Path] = []
        while not found and time.monotonic() < deadline and run.process.poll() is None:
            time.sleep(0.5)
            found = list(tmp_path.glob(f"data/*/info/{NAME}_t0_trial_metrics.json"))
        assert found, "no interim trial metrics appeared"
    finally:
        run.kill()  # SIGKILL to the run and its session processes
    layout = RunLayout(found[0].parents[1], NAME)
    scalar = json.loads(layout.trial_metrics_scalar_json.read_text())
    assert 0 < scalar["frame"] < 200000
    assert json.loads(layout.trial_metrics_json.read_text())["scalar"] == scalar
    assert "Trial 0 session 0" in layout.session_log(0).read_text()  # logs fill as it runs


def test_slm_bench_run_ends_options_with_a_double_dash():
    args = build_parser().parse_args(
        ["run", "--workers", "2", "-s", "max_frame=2000", "--", "-odd.yaml", "x", "train"]
    )
    assert (args.spec_file, args.spec_name, args.mode) == ("-odd.yaml", "x", "train")
    assert (args.sets, args.workers) == ([("max_frame", "2000")], 2)


STOP_SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT]
SEARCH_SPEC = Path(__file__).resolve().parent / "fixtures" / "search" / "tiny_search.yaml"
TRAIN_ARGV = [sys.executable, "-m", "slm_bench", "run", "--workers", "2", "-s", "max_frame=400000"]
TRAIN_ARGV += ["--", str(REPO / "specs" / "ppo_classic.yaml"), NAME, "train"]
SEARCH_ARGV = [sys.executable, "-m", "slm_bench", "run", "--workers", "2", "-s", "max_frame=400000"]
SEARCH_ARGV += ["--reevaluate-top", "0", "--", str(SEARCH_SPEC), "ppo_tiny", "search"]


def default_stop_signals() -> None:
    """In the child before exec: the stop signals at their default dispositions, as from a
    terminal, even when pytest itself runs under ``nohup`` (which the run would inherit)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def standalone(argv: list[str], cwd: Path) -> OwnedProcess:
    """``argv`` started as its user starts it, outside any owned group (``env -u`` drops the
    mark ``owned_group`` gives its process), yet in a group this test owns: nothing it starts
    outlives the test."""
    argv = ["env", "-u", OWNED_GROUP_ENV, *argv]
    return OwnedProcess(
        argv,
        cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=default_stop_signals,
    )


def wait_for_both(run: OwnedProcess, root: Path, pattern: str, text: str) -> None:
    """Until two files matching ``pattern`` under ``root`` hold ``text`` (40 s at most)."""

    def holding() -> int:
        return sum(text in path.read_text() for path in root.glob(pattern))

    deadline = time.monotonic() + 40
    while holding() < 2 and time.monotonic() < deadline:
        assert run.process.poll() is None, f"the run ended with {run.process.returncode}"
        time.sleep(0.5)
    assert holding() == 2, f"not two of {pattern} hold {text!r}"


def training_run(tmp_path: Path) -> tuple[OwnedProcess, set[tuple[int, int]]]:
    """A standalone ``slm-bench run`` training two sessions, once both are past their first
    checkpoint; with its two session workers."""
    run = standalone(TRAIN_ARGV, tmp_path)
    wait_for_both(run, tmp_path, f"data/*/log/{NAME}_t0_s*.log", "frame:")
    workers = {w for w in descendants(run.process.pid) if "spawn_main" in cmdline(w[0])}
    assert len(workers) == 2, workers
    return run, workers


def searching_run(tmp_path: Path, argv: list[str], quiet: bool = False) -> OwnedProcess:
    """A standalone ``slm-bench run ... search`` once its two trials train: past their first
    checkpoint, or (``quiet``: a spec with no checkpoint for minutes) past their start."""
    run = standalone(argv, tmp_path)
    trial_logs = "data/.search-*/trial_*/data/ppo_tiny_*/log/ppo_tiny_t0"
    if quiet:
        wait_for_both(run, tmp_path, f"{trial_logs}.log", "Embedded runner:")
    else:
        wait_for_both(run, tmp_path, f"{trial_logs}_s0.log", "frame:")
    trials = [pid for pid, _ in descendants(run.process.pid) if "trial_spec.json" in cmdline(pid)]
    assert len(trials) == 2, trials
    return run


def stop_alone(run: OwnedProcess, signum: int, workers: set[tuple[int, int]]) -> int:
    """``signum`` to the run's process alone (not its group); its exit status, once every one of
    ``workers`` has ended too (20 s after the run at most)."""
    os.kill(run.process.pid, signum)
    try:
        code = run.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run still runs 60 s after {signal.Signals(signum).name}")
    deadline = time.monotonic() + 20
    while (alive := {w for w in workers if running(*w)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive, f"{len(alive)} of {len(workers)} alive 20 s after the run ended: {alive}"
    return code


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_slm_bench_run_alone_stops_its_session_workers(tmp_path, signum):
    """`kill PID` of `slm-bench run` (not its group): its session worker processes end with it
    instead of training on for the rest of the run."""
    run, workers = training_run(tmp_path)
    try:
        assert stop_alone(run, signum, workers) == 128 + signum  # a program's exit, not a kill
    finally:
        run.kill()


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_slm_bench_search_alone_stops_its_trials(tmp_path, signum):
    """`kill PID` of `slm-bench run ... search` (not its group) while two trials train: the
    trial processes (and anything they started) end with it instead of training on, and it
    leaves nothing under data/ that a later run could take for a finished search."""
    run = searching_run(tmp_path, SEARCH_ARGV)
    try:
        assert stop_alone(run, signum, descendants(run.process.pid)) == 128 + signum
        assert not list((tmp_path / "data").iterdir())  # no folder, reservation or scratch
    finally:
        run.kill()


def test_slm_bench_run_killed_alone_leaves_no_process(tmp_path):
    """`kill -9 PID` of `slm-bench run` (or the OOM killer's), which no handler sees: every
    process it started (its session workers, Python's resource tracker) ends within 20 s
    instead of training on, orphaned, for the rest of the run."""
    run, workers = training_run(tmp_path)
    try:
        started = descendants(run.process.pid)
        assert workers <= started
        assert stop_alone(run, signal.SIGKILL, started) == -signal.SIGKILL
    finally:
        run.kill()


def test_slm_bench_search_killed_alone_leaves_no_process(tmp_path):
    """`kill -9 PID` of `slm-bench run ... search` while two trials train: the trial processes
    end within 20 s instead of training on, orphaned. Their spec checkpoints once in a million
    frames: a trial that wrote a line would die of the search's closed pipe anyway."""
    spec = SEARCH_SPEC.read_text()
    quiet = spec.replace("log_frequency: 500", "log_frequency: 1000000")
    assert quiet != spec
    (tmp_path / "quiet.yaml").write_text(quiet)
    argv = [*SEARCH_ARGV[: SEARCH_ARGV.index("--") + 1], "quiet.yaml", "ppo_tiny", "search"]
    argv[argv.index("max_frame=400000")] = "max_frame=4000000"
    run = searching_run(tmp_path, argv, quiet=True)
    try:
        assert stop_alone(run, signal.SIGKILL, descendants(run.process.pid)) == -signal.SIGKILL
    finally:
        run.kill()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
