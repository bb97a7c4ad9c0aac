"""The whole pipeline with ``runner: dstack`` through the real Snakemake and the dstack workflow
profile, against the stand-in ``dstack`` CLI (tests/standins) and the Hub-compatible test server
(tests/hub_server.py) as the ``hf`` store.

The stand-in cannot train, so the remote side is played honestly once per module: the embedded
runner (``python -m slm_bench run``, what an ``inner_runner: embedded`` task runs) trains a tiny
CartPole PPO, its folder is uploaded to the test Hub's dev repo with the real HfStore, and its
console output plus the task's upload lines become the log ``dstack logs`` prints for a done run.
The pipeline's own checks (score from the log, pull, settings, score against the folder, link)
then run on real data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hf_helpers import CANARY_TOKEN, offline_hf_env, tree_bytes
from hub_server import HubServer
from owned_process import OwnedProcess
from standins import STATE_VAR, StandinDstack, default_sigint
from workflow_helpers import REPO, SNAKEFILE, make_workdir, tiny_config

from slm_bench.formats.logs import console_line, upload_messages
from slm_bench.stores.hf import HfStore

pytestmark = pytest.mark.slow

DEV = "SLM-Lab/benchmark-dev"
PROFILE = REPO / "profiles" / "dstack"
CELL = Path("results/CartPole-v1/ppo")
POLL_S = 0.2


# -- the remote side, played once --------------------------------------------------------------


class RemoteRun:
    """A finished remote run: its folder (also in the test Hub's dev repo) and its console log."""

    def __init__(self, path: Path, log: str):
        self.path = path
        self.folder = path.name
        self.log = log
        (scalar,) = (path / "info").glob("*_t0_trial_metrics_scalar.json")
        self.score = json.loads(scalar.read_text())["total_reward_ma"]

    def done_step(self, cost: float) -> dict:
        # The stand-in fills ``{name}``-style placeholders in a step's log: keep braces literal.
        log = self.log.replace("{", "{{").replace("}", "}}")
        return {"status": "done", "cost": cost, "log": log}


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[HubServer]:
    """The test Hub, with the HF settings the test process and every Snakemake run share."""
    root = tmp_path_factory.mktemp("hub")
    with pytest.MonkeyPatch.context() as patch:
        offline_hf_env(patch, root / "hf_home")
        with HubServer(root / "repos") as server:
            yield server


@pytest.fixture(scope="module")
def remote_run(hub, tmp_path_factory) -> RemoteRun:
    """Train like the task's ``slm-bench run`` does, then upload like its ``hf upload`` does."""
    machine = tmp_path_factory.mktemp("remote")
    (machine / "specs").symlink_to(REPO / "specs")
    spec = ["specs/ppo_classic.yaml", "ppo_cartpole", "train"]
    trained = subprocess.run(
        [sys.executable, "-m", "slm_bench", "run", "--workers", "2", "-s", "max_frame=2000", *spec],
        cwd=machine,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stdout[-4000:]
    (path,) = (machine / "data").iterdir()
    HfStore.from_options({"endpoint": hub.url, "dev_repo": DEV}).upload(path)
    started, finished = upload_messages(path.name, DEV)
    upload = [console_line("INFO", "slm_bench", "upload", line) for line in (started, finished)]
    return RemoteRun(path, trained.stdout + "\n".join(upload) + "\n")


# -- the pipeline -------------------------------------------------------------------------------


def pipeline_config(hub: HubServer, standin: StandinDstack, algos: tuple[str, ...] = ("ppo",)):
    # The project's default runner and store: the dstack profile switches both.
    config = tiny_config()
    cartpole = config["envs"]["CartPole-v1"]
    cartpole["algorithms"] = {algo: cartpole["algorithms"][algo] for algo in algos}
    config["hf"] = {"endpoint": hub.url, "max_retries": 2, "backoff_s": 0.05, "max_wait_s": 1}
    config["dstack"] = {
        "inner_runner": "embedded",
        "dstack_bin": standin.dstack_bin,  # not on PATH: every dstack call must use the option
        "poll_interval_s": POLL_S,
        "poll_backoff_max_s": 1,
    }
    return config


def argv(workdir: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
        "--workflow-profile", str(PROFILE), "--profile", "none", *args,
    ]  # fmt: skip


def environment(standin: StandinDstack, tmp_path: Path) -> dict[str, str]:
    # TMPDIR: the runners' shared `dstack ps` cache stays in the test's folder.
    return {**os.environ, STATE_VAR: str(standin.state), "TMPDIR": str(tmp_path)}


class Pipeline:
    """Snakemake runs in one working directory against one stand-in dstack."""

    def __init__(self, tmp_path: Path, hub: HubServer, scenario: dict, **config_args):
        self.standin = StandinDstack(tmp_path / "dstack", scenario)
        self.workdir = make_workdir(
            tmp_path / "work", pipeline_config(hub, self.standin, **config_args)
        )
        self.env = environment(self.standin, tmp_path)
        self.started: list[OwnedProcess] = []
        self.output_path: Path | None = None

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            argv(self.workdir, *args),
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str) -> OwnedProcess:
        """Snakemake in a process group of its own (one signal reaches it and every job) that
        dies with this test, even if pytest is SIGKILLed (tests/owned_process.py); its output
        in a file (a pipe nobody reads could fill and stall it)."""
        self.output_path = self.workdir.parent / f"snakemake-{len(self.started) + 1}.out"
        with self.output_path.open("w") as output:
            owned = OwnedProcess(
                argv(self.workdir, *args),
                self.workdir,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=default_sigint,
            )
        self.started.append(owned)
        return owned

    def kill_leftovers(self) -> None:
        """A test that failed midway leaves no Snakemake (nor its jobs) behind; every group's
        keeper ends."""
        for owned in self.started:
            owned.kill()

    def output(self) -> str:
        """What the last started Snakemake printed."""
        return self.output_path.read_text()

    def journal(self, cell: Path = CELL) -> dict:
        path = self.workdir / cell / "journal.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def read(self, relative: Path | str) -> dict:
        return json.loads((self.workdir / relative).read_text())


def wait_for(predicate, pipeline: Pipeline, owned: OwnedProcess, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if owned.process.poll() is not None:
            rc = owned.process.returncode
            pytest.fail(f"Snakemake ended early ({rc}):\n{pipeline.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for the pipeline:\n{pipeline.output()}")
        time.sleep(0.1)


def last_state(pipeline: Pipeline, cell: Path = CELL) -> str | None:
    attempts = pipeline.journal(cell).get("attempts") or [{}]
    return attempts[-1].get("state")


def applied_names(pipeline: Pipeline) -> list[str]:
    """The run names ``dstack apply -n NAME`` was called with, in order."""
    return [c["args"][c["args"].index("-n") + 1] for c in pipeline.standin.calls("apply")]


def running_forever() -> list[dict]:
    """A run that provisions and then runs until the scenario says otherwise."""
    return [{"status": "provisioning"}, {"status": "running", "cost": 0.05}]


def everything_written(workdir: Path) -> str:
    chunks = []
    for root in (workdir / "results", workdir / ".snakemake"):
        chunks += [p.read_bytes().decode(errors="replace") for p in root.rglob("*") if p.is_file()]
    return "\n".join(chunks)


@pytest.fixture
def make_pipeline(hub, tmp_path) -> Iterator:
    """``make_pipeline(scenario, algos=...)``: a Pipeline in this test's folder."""
    made: list[Pipeline] = []

    def make(scenario: dict, **config_args) -> Pipeline:
        made.append(Pipeline(tmp_path, hub, scenario, **config_args))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.kill_leftovers()


# -- tests ---------------------------------------------------------------------------------------


def test_profile_runs_a_cell_on_dstack_to_a_verified_row(hub, remote_run, make_pipeline):
    scenario = {
        "default": [
            {"status": "provisioning"},
            {"status": "running", "polls": 2, "cost": 0.05},
            remote_run.done_step(cost=0.12),
        ]
    }
    pipeline = make_pipeline(scenario)

    built = pipeline.run()

    assert built.returncode == 0, built.stdout[-6000:]
    folder = remote_run.folder
    table = (pipeline.workdir / "results/BENCHMARKS.md").read_text()
    assert f"[{folder}]({hub.url}/datasets/{DEV}/tree/main/data/{folder})" in table
    marker = pipeline.read(CELL / "run.json")
    # config.yaml says embedded + local: the profile's config made it dstack + hf.
    assert (marker["runner"], marker["store"], marker["repo"]) == ("dstack", "hf", DEV)
    assert (marker["run_name"], marker["data_folder"]) == ("ppo-cartpole", folder)
    assert marker["extra"]["cost"] == 0.12
    assert marker["extra"]["uploaded_to"] == f"{DEV}/data/{folder}"
    metrics = pipeline.read(CELL / "metrics.json")
    assert metrics["run_name"] == "ppo-cartpole" and metrics["run"]["cost"] == 0.12
    assert [(a["name"], a["reason"], a["status"]) for a in metrics["run"]["attempts"]] == [
        ("ppo-cartpole", "submit", "done")
    ]
    # The score is the trained run's, and the pulled folder is that run's folder.
    assert f"{metrics['total_reward_ma']:.2f}" == f"{remote_run.score:.2f}"
    pulled = pipeline.workdir / CELL / "hf_data" / "data" / folder
    assert tree_bytes(pulled) == tree_bytes(remote_run.path)
    # The task went in with the cell's spec, the store's repo and endpoint, and no secret.
    (apply,) = pipeline.standin.calls("apply")
    assert "SPEC_VARS=-s max_frame=2000" in apply["args"]
    assert f"HF_ENDPOINT={hub.url}" in apply["args"] and f"HF_REPO={DEV}" in apply["args"]
    assert CANARY_TOKEN not in json.dumps(apply)
    assert pipeline.standin.run("ppo-cartpole")["env"]["HF_TOKEN"] == CANARY_TOKEN

    status = pipeline.run("status")

    assert status.returncode == 0, status.stdout[-4000:]
    header = next(line for line in status.stdout.splitlines() if line.startswith("CELL "))
    assert header.split() == ["CELL", "STATE", "DSTACK", "RUNS", "COST", "MA", "STATUS", "REASON"]
    row = next(line for line in status.stdout.splitlines() if line.startswith("CartPole-v1/ppo"))
    assert row.split()[:6] == [
        "CartPole-v1/ppo",
        "done",
        "done",
        "ppo-cartpole",
        "$0.12",
        f"{metrics['total_reward_ma']:.2f}",
    ]
    assert "1 cells: 1 done; cost $0.12" in status.stdout
    assert CANARY_TOKEN not in everything_written(pipeline.workdir)
    assert CANARY_TOKEN not in built.stdout + status.stdout


def test_killed_pipeline_reattaches_to_its_run_after_restart(remote_run, make_pipeline):
    pipeline = make_pipeline({"default": running_forever()})
    first = pipeline.start(str(CELL / "metrics.json"))
    wait_for(lambda: last_state(pipeline) == "running", pipeline, first)

    first.kill()  # SIGKILL to Snakemake's whole group
    assert pipeline.journal()["attempts"][0]["name"] == "ppo-cartpole"
    assert not (pipeline.workdir / CELL / "run.json").exists()
    calls_at_kill = len(pipeline.standin.calls())
    unlocked = pipeline.run("--unlock")
    assert unlocked.returncode == 0, unlocked.stdout[-4000:]
    # Nothing of the killed pipeline survived to poll on (its run job was in the group).
    assert len(pipeline.standin.calls()) == calls_at_kill
    # The run goes on without the pipeline: still running when it comes back, then done.
    provisioning, running = running_forever()
    finishing = [provisioning, {**running, "polls": 3}, remote_run.done_step(0.2)]
    pipeline.standin.scenario({"default": finishing})
    polls_before = len(pipeline.standin.calls("ps"))

    restarted = pipeline.run(str(CELL / "metrics.json"))

    assert restarted.returncode == 0, restarted.stdout[-6000:]
    assert applied_names(pipeline) == ["ppo-cartpole"]
    assert pipeline.standin.calls("stop") == []
    assert len(pipeline.standin.calls("ps")) - polls_before >= 3  # it waited for the live run
    assert [c["args"] for c in pipeline.standin.calls("logs")] == [["ppo-cartpole"]]
    marker = pipeline.read(CELL / "run.json")
    assert marker["run_name"] == "ppo-cartpole" and marker["extra"]["cost"] == 0.2
    assert [a["name"] for a in marker["extra"]["attempts"]] == ["ppo-cartpole"]
    metrics = pipeline.read(CELL / "metrics.json")
    assert (metrics["run_name"], metrics["data_folder"]) == ("ppo-cartpole", remote_run.folder)


def test_spot_interruption_relaunches_under_the_next_name(remote_run, make_pipeline):
    interrupted = {
        "status": "failed",
        "job_status": "failed",
        "job_message": "interrupted",
        "job_termination_reason": "interrupted_by_no_capacity",
        "cost": 0.03,
        "log": "training step 100\n",
    }
    scenario = {
        "runs": {
            "ppo-cartpole": [{"status": "provisioning"}, {"status": "running"}, interrupted],
            "ppo-cartpole-2": [
                {"status": "provisioning"},
                {"status": "running"},
                remote_run.done_step(0.12),
            ],
        }
    }
    pipeline = make_pipeline(scenario)

    built = pipeline.run(str(CELL / "metrics.json"))

    assert built.returncode == 0, built.stdout[-6000:]
    assert applied_names(pipeline) == ["ppo-cartpole", "ppo-cartpole-2"]
    marker = pipeline.read(CELL / "run.json")
    assert marker["run_name"] == "ppo-cartpole-2" and marker["data_folder"] == remote_run.folder
    metrics = pipeline.read(CELL / "metrics.json")
    attempts = metrics["run"]["attempts"]
    assert [(a["name"], a["reason"], a["status"]) for a in attempts] == [
        ("ppo-cartpole", "submit", "failed"),
        ("ppo-cartpole-2", "relaunch", "done"),
    ]
    assert "interrupted_by_no_capacity" in attempts[0]["termination"]
    assert metrics["run"]["cost"] == pytest.approx(0.15) == marker["extra"]["cost"]
    assert metrics["run_name"] == "ppo-cartpole-2"


def test_cancel_stops_every_recorded_run(make_pipeline):
    pipeline = make_pipeline({"default": running_forever()}, algos=("ppo", "a2c"))
    cells = [CELL, Path("results/CartPole-v1/a2c")]
    running = pipeline.start()
    wait_for(
        lambda: all(last_state(pipeline, cell) == "running" for cell in cells), pipeline, running
    )

    # From another terminal while the pipeline waits on its runs.
    cancelled = pipeline.run("cancel")

    assert cancelled.returncode == 0, cancelled.stdout[-4000:]
    running.process.wait(timeout=120)
    output = pipeline.output()
    stops = sorted(c["args"] for c in pipeline.standin.calls("stop"))
    assert stops == [["-y", "a2c-cartpole"], ["-y", "ppo-cartpole"]]
    assert "stopped 2 run(s)" in cancelled.stdout
    for name in ("ppo-cartpole", "a2c-cartpole"):
        assert pipeline.standin.run(name)["status"] == "terminated"
    # The pipeline saw its runs stopped and failed both cells, keeping no result.
    assert running.process.returncode != 0
    # (show-failed-logs repeats each job's error line)
    errors = {line for line in output.splitlines() if line.startswith("error: dstack run ")}
    assert len(errors) == 2 and all(" terminated (stopped_by_user" in e for e in errors), errors
    assert not any((pipeline.workdir / cell / "run.json").exists() for cell in cells)


def test_status_flags_a_run_no_cell_waits_for_and_cancel_stops_it(make_pipeline):
    """A stopped run that came back (its journal says failed) and an earlier attempt still
    running: status warns about both, naming them; cancel stops both, whatever the journal
    says; then status is quiet."""
    pipeline = make_pipeline({"default": running_forever()})
    for name in ("ppo-cartpole", "ppo-cartpole-2"):
        task = pipeline.workdir / "task.yml"
        task.write_text("type: task\ncommands: [sleep 1]\n")
        subprocess.run(
            [pipeline.standin.dstack_bin, "apply", "-f", str(task), "-y", "-d", "-n", name],
            check=True, capture_output=True, env=pipeline.env,
        )  # fmt: skip
    journal = pipeline.workdir / CELL / "journal.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    attempts = [{"name": "ppo-cartpole", "state": "cancelled"}]
    attempts.append({"name": "ppo-cartpole-2", "state": "failed", "run": {"status": "failed"}})
    journal.write_text(
        json.dumps({"dstack_bin": pipeline.standin.dstack_bin, "attempts": attempts})
    )

    shown = pipeline.run("status")
    assert shown.returncode == 0, shown.stdout[-3000:]
    warning = shown.stdout[shown.stdout.index("WARNING: 2 dstack run(s) alive on the server") :]
    assert "  ppo-cartpole (CartPole-v1/ppo, running; the journal says cancelled)" in warning
    assert "  ppo-cartpole-2 (CartPole-v1/ppo, running; the journal says failed)" in warning
    assert "stop them: snakemake --workflow-profile profiles/dstack cancel" in warning

    cancelled = pipeline.run("cancel")
    assert cancelled.returncode == 0, cancelled.stdout[-3000:]
    assert "stopped 2 run(s): ppo-cartpole, ppo-cartpole-2" in cancelled.stdout
    assert "the server reports every one of them finished" in cancelled.stdout
    assert [r["status"] for r in pipeline.standin.runs()] == ["terminated", "terminated"]
    assert "WARNING" not in pipeline.run("status").stdout


def test_ctrl_c_prints_what_keeps_running_and_a_rerun_reattaches(remote_run, make_pipeline):
    pipeline = make_pipeline({"default": running_forever()}, algos=("ppo", "a2c"))
    cells = {"CartPole-v1/ppo": CELL, "CartPole-v1/a2c": Path("results/CartPole-v1/a2c")}
    first = pipeline.start(*[str(cell / "metrics.json") for cell in cells.values()])
    wait_for(
        lambda: all(last_state(pipeline, cell) == "running" for cell in cells.values()),
        pipeline,
        first,
    )

    os.killpg(first.pgid, signal.SIGINT)  # what Ctrl-C in the terminal sends; the keeper stays
    first.process.wait(timeout=120)

    output = pipeline.output()
    for noise in ("Traceback", "KeyboardInterrupt", "Cannot close a running event loop"):
        assert noise not in output, output[-6000:]
    lines = [line for line in output.splitlines() if "stopped waiting" in line]
    assert sorted(line.split(": ", 1)[0] for line in lines) == sorted(cells), output[-6000:]
    for line in lines:
        assert "keeps running and a rerun re-attaches to it" in line
        assert "snakemake --workflow-profile profiles/dstack cancel" in line
    assert pipeline.standin.calls("stop") == []
    for name in ("ppo-cartpole", "a2c-cartpole"):
        assert pipeline.standin.run(name)["status"] == "running"

    # The same command again re-attaches to both runs: nothing new is submitted.
    provisioning, running = running_forever()
    # (the runs are at step 1, running: step 2 ends them)
    finishing = [provisioning, {**running, "polls": 2}, remote_run.done_step(0.1)]
    pipeline.standin.scenario({"default": finishing})
    restarted = pipeline.run(str(CELL / "metrics.json"))
    assert restarted.returncode == 0, restarted.stdout[-6000:]
    assert "CartPole-v1/ppo: re-attaching to dstack run ppo-cartpole" in restarted.stdout
    assert sorted(applied_names(pipeline)) == ["a2c-cartpole", "ppo-cartpole"]
    assert pipeline.read(CELL / "run.json")["run_name"] == "ppo-cartpole"


def test_with_an_slm_lab_checkout_the_pipeline_applies_its_own_task(
    remote_run, make_pipeline, tmp_path
):
    import shutil

    import yaml

    checkout = tmp_path / "SLM-Lab"
    (checkout / ".dstack").mkdir(parents=True)
    fixtures = REPO / "tests" / "fixtures" / "slm-lab"
    for hardware in ("cpu", "gpu"):
        shutil.copy(
            fixtures / f"dstack-run-{hardware}-train.yml",
            checkout / ".dstack" / f"run-{hardware}-train.yml",
        )
    scenario = {"default": [{"status": "provisioning"}, remote_run.done_step(cost=0.05)]}
    pipeline = make_pipeline(scenario)
    config_path = pipeline.workdir / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["dstack"].update(repo_dir=str(checkout), inner_runner="auto")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    built = pipeline.run(str(CELL / "metrics.json"))

    assert built.returncode == 0, built.stdout[-6000:]
    task_file = pipeline.workdir / CELL / "work" / "dstack-task.yml"
    ours = yaml.safe_load(task_file.read_text())
    theirs = yaml.safe_load((checkout / ".dstack" / "run-cpu-train.yml").read_text())
    assert {key for key in theirs if ours.get(key) != theirs[key]} == {"name", "repos", "env"}
    assert ours["repos"] == [f"{checkout}:/workflow"]
    assert ours["env"] == [*theirs["env"], "HF_ENDPOINT"]  # the test Hub is not huggingface.co
    (apply,) = pipeline.standin.calls("apply")
    assert {"PROFILE=", "PROF_SKIP=500", "PROF_ACTIVE=20", "LAB_MODE=train"} <= set(apply["args"])
    assert f"CartPole-v1/ppo: dstack task {checkout}/.dstack/run-cpu-train.yml" in built.stdout
    assert pipeline.read(CELL / "metrics.json")["run_name"] == "ppo-cartpole"
