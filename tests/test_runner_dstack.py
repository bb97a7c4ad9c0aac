"""The dstack runner: task YAML, names, ps parsing, and runs against a real dstack server (what
can happen offline) and against the stand-in CLI (what needs a fleet: running, done, spot
interruptions, restarts)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from dstack_server import RECORDED, DstackServer, dstack_venv, redact_ps, served, use_server
from standins import StandinDstack, default_sigint, use_standin

from slm_bench.errors import BenchError
from slm_bench.formats.logs import console_line, running_message, trial_metrics_message
from slm_bench.runners import RunRequest, make_runner
from slm_bench.runners import dstack as dstack_runner
from slm_bench.runners.dstack import (
    DstackRunner,
    RunState,
    base_run_name,
    cancel_recorded_runs,
    next_run_name,
    parse_ps_output,
    read_journal,
    validate_options,
)
from slm_bench.runners.dstack import cell_run as dstack_cell_run_module
from slm_bench.runners.dstack import task as dstack_task

REPO = Path(__file__).resolve().parents[1]
SLM_LAB_FIXTURES = REPO / "tests" / "fixtures" / "slm-lab"
SECRET = "hf_testsecretvalue0123456789abcdefXYZ"
STORE = {"name": "hf", "dev_repo": "SLM-Lab/benchmark-dev"}
FOLDER = "ppo_cartpole_2026_02_11_144029"


def make_request(root: Path, fingerprint: str = "fp-1", **changes) -> RunRequest:
    cell = root / "cell"
    fields = dict(
        spec_file="specs/ppo_classic.yaml",
        spec_name="ppo_cartpole",
        sets={},
        workdir=cell / "work",
        log_path=cell / "train.log.partial",
        journal_path=cell / "journal.json",
        time_limit_s=6 * 3600,
        cell="CartPole-v1/ppo",
        fingerprint=fingerprint,
    )
    fields.update(changes)
    return RunRequest(**fields)


def success_log(folder: str = FOLDER) -> str:
    """What `dstack logs` prints for a finished SLM-Lab run; the stand-in fills in the
    ``{SPEC_FILE}`` / ``{SPEC_NAME}`` placeholders from the run's env."""
    running = running_message(
        "{SPEC_FILE}", "{SPEC_NAME}", "train", 4, f"data/{folder}/ppo_cartpole"
    )
    score = trial_metrics_message(
        {"frame": 2e5, "total_reward_ma": 498.94, "strength": 400.1, "consistency": 0.9}
    )
    upload = f"Uploading data/{folder} to SLM-Lab/benchmark-dev/data/{folder}..."
    lines = [
        console_line("INFO", "cli", "run", running),
        console_line("INFO", "analysis", "analyze_trial", score),
        console_line("INFO", "cli", "upload", upload),
    ]
    return "\n".join(lines) + "\n"


def running_then(final: dict, polls: int = 2) -> list[dict]:
    return [{"status": "provisioning"}, {"status": "running", "polls": polls, "cost": 0.05}, final]


DONE = {"status": "done", "cost": 0.12, "log": success_log()}
INTERRUPTED = {
    "status": "failed",
    "job_status": "failed",
    "job_message": "interrupted",
    "job_termination_reason": "interrupted_by_no_capacity",
    "cost": 0.03,
    "log": "step 100\n",
}


@pytest.fixture
def standin(tmp_path, monkeypatch) -> StandinDstack:
    return use_standin(tmp_path, monkeypatch, SECRET)


def options(stand: StandinDstack, **changes) -> dict:
    opts = {
        "dstack_bin": stand.dstack_bin,
        "poll_interval_s": 0.01,
        "poll_backoff_max_s": 0.04,
        "store": dict(STORE),
    }
    opts.update(changes)
    return opts


# -- options, names, task YAML ----------------------------------------------------------------


def test_schema_documents_every_option_with_a_default():
    schema = yaml.safe_load((REPO / "schemas" / "dstack.schema.yaml").read_text())
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    wanted = {
        "inner_runner",
        "resources",
        "spot_policy",
        "max_duration",
        "max_price",
        "retry_events",
        "retry_duration",
        "poll_interval_s",
        "poll_backoff_max_s",
        "max_relaunches",
        "setup_commands",
        "repo_dir",
        "env",
        "dstack_bin",
        "hardware",
        "env_hardware",
        "unreachable_timeout_s",
        "heartbeat_s",
        "install",
    }
    assert set(schema["properties"]) == wanted
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
        assert "default" in prop, name
    defaults = validate_options({})
    assert defaults["poll_interval_s"] == 60 and defaults["max_relaunches"] == 3
    assert defaults["dstack_bin"] == "dstack" and defaults["unreachable_timeout_s"] < 60
    # The task's own resources, price and limits unless overridden.
    overrides = ("resources", "spot_policy", "max_duration", "max_price", "retry_events")
    assert all(defaults[key] is None for key in overrides)


@pytest.mark.parametrize(
    ("options_in", "field"),
    [
        ({"poll_intervall_s": 5}, "poll_intervall_s"),
        ({"env": ["HF_TOKEN=hf_abc"]}, "env.0"),
        ({"spot_policy": "cheap"}, "spot_policy"),
        ({"max_duration": "six hours"}, "max_duration"),
    ],
)
def test_bad_options_are_one_line_errors(options_in, field):
    with pytest.raises(BenchError) as error:
        make_runner("dstack", options_in)
    message = str(error.value)
    assert message.startswith("config.yaml: dstack") and "\n" not in message
    assert field.split(".")[0] in message


def test_run_names_follow_spec_names_and_increment():
    assert base_run_name("ppo_cartpole", {}) == "ppo-cartpole"
    assert base_run_name("PPO_Atari", {"env": "ALE/Breakout-v5"}) == "ppo-atari-breakout"
    long = base_run_name("crossq_humanoid_standup_playground_arc_tuned_v2", {})
    assert dstack_runner.RUN_NAME_RE.match(long) and len(long) <= 37
    assert next_run_name("ppo-cartpole", "ppo-cartpole", []) == "ppo-cartpole-2"
    assert next_run_name("ppo-cartpole-2", "ppo-cartpole", []) == "ppo-cartpole-3"
    assert next_run_name("ppo-cartpole", "ppo-cartpole", ["ppo-cartpole-2"]) == "ppo-cartpole-3"
    assert base_run_name("3d_ball", {}) == "run-3d-ball"  # dstack names start with a letter


def slm_lab_checkout(root: Path) -> Path:
    """A copy of the whole SLM-Lab source when it is there (SLM_BENCH_SLM_LAB_SRC or
    ../shared/slm-lab), else a checkout holding SLM-Lab's two train tasks and its CartPole spec
    from the project's fixtures."""
    import shutil

    source = os.environ.get("SLM_BENCH_SLM_LAB_SRC")
    whole = Path(source) if source else REPO.parent / "shared" / "slm-lab"
    checkout = root / "SLM-Lab"
    if (whole / ".dstack").is_dir():
        shutil.copytree(whole, checkout, ignore=shutil.ignore_patterns("data", "hf_data"))
        return checkout
    (checkout / ".dstack").mkdir(parents=True)
    for hardware in ("cpu", "gpu"):
        shutil.copy(
            SLM_LAB_FIXTURES / f"dstack-run-{hardware}-train.yml",
            checkout / ".dstack" / f"run-{hardware}-train.yml",
        )
    shutil.copytree(SLM_LAB_FIXTURES / "specs", checkout / "slm_lab" / "spec")
    return checkout


CHECKOUT_ROWS = [
    # (hardware, spec file, spec name, sets): CartPole and an Atari row of SLM-Lab's table.
    ("cpu", "slm_lab/spec/benchmark/ppo/ppo_cartpole.json", "ppo_cartpole", {}),
    (
        "gpu",
        "slm_lab/spec/benchmark_arc/ppo/ppo_atari_arc.yaml",
        "ppo_atari_arc",
        {"env": "ALE/Pong-v5"},
    ),
]


@pytest.mark.parametrize(("hardware", "spec_file", "spec_name", "sets"), CHECKOUT_ROWS)
def test_task_with_a_checkout_is_slm_labs_own_file_key_by_key(
    tmp_path, monkeypatch, hardware, spec_file, spec_name, sets
):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    checkout = slm_lab_checkout(tmp_path)
    runner = DstackRunner({"store": dict(STORE), "checkout": str(checkout)})
    request = make_request(tmp_path, spec_file=spec_file, spec_name=spec_name, sets=sets)
    plan = runner.plan_task(request)
    theirs = yaml.safe_load((checkout / ".dstack" / f"run-{hardware}-train.yml").read_text())
    ours = plan.config

    assert (plan.hardware, plan.inner_runner, plan.overrides) == (hardware, "slm-lab", [])
    # Key by key: equal except the documented differences.
    assert set(ours) == set(theirs)
    differ = {key for key in theirs if ours[key] != theirs[key]}
    assert differ == {"name", "repos"}
    assert ours["name"] == base_run_name(spec_name, sets)  # the name the journal records
    assert theirs["repos"] == ["..:/workflow"]  # relative to the checkout's .dstack/
    assert ours["repos"] == [f"{checkout.resolve()}:/workflow"]  # the task file lives elsewhere
    assert ours["env"] == theirs["env"]  # SLM-Lab's list (HF_ENDPOINT is added only when set)
    # The values run-remote sets, HF_TOKEN by name only.
    assert plan.values == {
        "SPEC_FILE": spec_file,
        "SPEC_NAME": spec_name,
        "LAB_MODE": "train",
        "SPEC_VARS": " ".join(f"-s {k}={v}" for k, v in sets.items()),
        "HF_REPO": "SLM-Lab/benchmark-dev",
        "PROFILE": "",
        "PROF_SKIP": "500",
        "PROF_ACTIVE": "20",
    }
    bare = [e for e in ours["env"] if "=" not in e and e not in plan.values]
    assert bare == ["HF_TOKEN"]
    text = plan.text(request.cell)
    assert SECRET not in text and yaml.safe_load(text) == ours
    assert_dstack_accepts(text, tmp_path)


def assert_dstack_accepts(task_text: str, tmp_path: Path) -> None:
    """The task parses with dstack's own model (when the dstack venv is there)."""
    venv = dstack_venv()
    if venv is None:
        return
    path = tmp_path / "check-task.yml"
    path.write_text(task_text)
    code = (
        "import sys, yaml\n"
        "from dstack._internal.core.models.configurations import parse_apply_configuration\n"
        "print(type(parse_apply_configuration(yaml.safe_load(open(sys.argv[1])))).__name__)\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, str(path)], capture_output=True, text=True
    )
    assert done.stdout.strip() == "TaskConfiguration", done.stderr[-2000:]


def test_overrides_go_on_top_of_slm_labs_task_and_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    checkout = slm_lab_checkout(tmp_path)
    options = {
        "checkout": str(checkout),
        "store": {**STORE, "endpoint": "http://127.0.0.1:9"},
        "max_price": 0.2,
        "spot_policy": "spot",
        "retry_events": ["no-capacity", "interruption"],
        "env_hardware": {"CartPole-v1": "gpu"},
    }
    runner = DstackRunner(options)
    hardware, spec_file, spec_name, sets = CHECKOUT_ROWS[0]
    request = make_request(tmp_path, spec_file=spec_file, spec_name=spec_name, time_limit_s=3600)
    plan = runner.plan_task(request)
    theirs = yaml.safe_load((checkout / ".dstack" / "run-gpu-train.yml").read_text())
    assert (plan.hardware, plan.why) == ("gpu", "dstack.env_hardware[CartPole-v1]")
    assert plan.config["max_price"] == 0.2 and plan.config["spot_policy"] == "spot"
    assert plan.config["retry"] == {"on_events": ["no-capacity", "interruption"], "duration": "1h"}
    assert plan.config["max_duration"] == "1h"  # never more than the pipeline's time limit
    assert plan.config["resources"] == theirs["resources"]
    assert plan.overrides == [
        "spot_policy: auto -> spot",
        "max_price: 0.5 -> 0.2",
        "retry: {duration: 1h, on_events: [no-capacity]} ->"
        " {duration: 1h, on_events: [no-capacity, interruption]}",
        "max_duration: 6h -> 1h (the pipeline's time_limit)",
    ]
    assert plan.config["env"][-1] == "HF_ENDPOINT"
    assert plan.values["HF_ENDPOINT"] == "http://127.0.0.1:9"
    summary = plan.summary(request.cell)
    assert "run-gpu-train.yml (gpu: dstack.env_hardware[CartPole-v1], at most $0.20/h)" in summary
    assert "overrides: spot_policy: auto -> spot" in summary
    text = plan.text(request.cell)
    assert "# override: max_price: 0.5 -> 0.2" in text


def test_hardware_as_slm_lab_chooses_it():
    from slm_bench.runners.dstack import choose_hardware

    opts = validate_options({})
    assert choose_hardware("CartPole-v1", None, opts) == ("cpu", "vector-state env")
    assert choose_hardware("ALE/Pong-v5", None, opts)[0] == "gpu"
    assert choose_hardware("playground/CartpoleBalance", None, opts)[0] == "gpu"
    conv = {"agent": {"net": {"type": "TorchArcNet", "arc": {"layers": ["Conv2d(32, 8, 4)"]}}}}
    assert choose_hardware("MyPixels-v0", conv, opts)[0] == "gpu"
    assert choose_hardware("ALE/Pong-v5", None, {**opts, "hardware": "cpu"})[0] == "cpu"


def test_embedded_task_installs_slm_bench_on_the_box(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    runner = DstackRunner({"store": dict(STORE), "spec_root": str(REPO)})
    plan = runner.plan_task(make_request(tmp_path))
    config = plan.config
    assert (plan.inner_runner, plan.hardware) == ("embedded", "cpu")
    assert config["files"] == [
        f"{REPO}:/slm-bench",
        f"{REPO / 'specs' / 'ppo_classic.yaml'}:/workflow/specs/ppo_classic.yaml",
    ]
    assert config["commands"] == [
        "pip install --extra-index-url https://download.pytorch.org/whl/cpu '/slm-bench'",
        "cd /workflow && slm-bench run ${SPEC_VARS} ${SPEC_FILE} ${SPEC_NAME} ${LAB_MODE}",
        f"cd /workflow && {dstack_task.EMBEDDED_UPLOAD}",
    ]
    # SLM-Lab's CPU train task's resources and limits.
    for key, value in dstack_task.SLM_LAB_TASKS[("cpu", "train")].items():
        assert config[key] == value, key
    assert_dstack_accepts(plan.text("CartPole-v1/ppo"), tmp_path)
    pinned = DstackRunner({"install": "slm-bench @ git+https://example.org/slm-bench@abc123"})
    command = pinned.plan_task(make_request(tmp_path)).config["commands"][0]
    assert command.endswith("'slm-bench @ git+https://example.org/slm-bench@abc123'")
    with pytest.raises(BenchError, match="inner_runner: slm-lab needs an SLM-Lab checkout"):
        DstackRunner({"inner_runner": "slm-lab"})


def test_embedded_upload_command_prints_the_lines_the_log_reader_needs(tmp_path):
    """The upload command run by bash for real; `hf` is replaced by a script recording its
    arguments (uploading needs the Hub)."""
    (tmp_path / "data" / FOLDER).mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "hf").write_text('#!/bin/sh\necho "$@" > "$HF_ARGS"\necho uploaded-url\n')
    (bin_dir / "hf").chmod(0o755)
    env = {
        **os.environ,
        "HF_REPO": "me/dev",
        "HF_ARGS": str(tmp_path / "args"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-c", dstack_task.EMBEDDED_UPLOAD],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    from slm_bench.formats.logs import read_run_log

    (tmp_path / "log").write_text(done.stdout)
    run_log = read_run_log(tmp_path / "log")
    assert run_log.uploaded_to == f"me/dev/data/{FOLDER}"
    assert run_log.data_folder == FOLDER
    assert (tmp_path / "args").read_text().split() == [
        "upload", "me/dev", f"data/{FOLDER}", f"data/{FOLDER}", "--repo-type", "dataset",
        "--exclude", "*_optim.pt",
    ]  # fmt: skip
    assert "Upload complete: https://huggingface.co/datasets/me/dev/tree/main/data/" in done.stdout


def test_store_must_be_hf_and_sets_must_be_shell_safe(tmp_path, monkeypatch):
    with pytest.raises(BenchError, match="store: hf"):
        DstackRunner({"store": {"name": "local"}})
    request = make_request(tmp_path, sets={"env": "Pong v5"})
    with pytest.raises(BenchError, match="no spaces"):
        dstack_runner.submit_values(request)


# -- ps JSON ----------------------------------------------------------------------------------


def recorded(name: str) -> dict:
    return json.loads((RECORDED / f"ps_{name}.json").read_text())


def test_parse_ps_output_finds_the_json_among_other_lines():
    document = recorded("failed")
    text = (
        "A new version of dstack is available: 0.99.0\n\n"
        + json.dumps(document)
        + "\nSome trailing notice {not json}\n"
    )
    runs = parse_ps_output(text)
    assert [r["run_spec"]["run_name"] for r in runs] == ["rec-failed"]
    with pytest.raises(ValueError):
        parse_ps_output("Failed to connect {oops}")


def test_run_state_from_the_real_servers_shapes():
    failed = RunState.from_json(recorded("failed")["runs"][0])
    assert (failed.status, failed.finished, failed.interrupted) == ("failed", True, False)
    assert "no fleets" in failed.reasons() and "job_failed" in failed.reasons()
    pending = RunState.from_json(recorded("pending")["runs"][0])
    assert (pending.status, pending.status_message, pending.finished) == (
        "pending",
        "retrying",
        False,
    )
    stopped = RunState.from_json(recorded("terminated")["runs"][0])
    assert stopped.status == "terminated" and stopped.termination_reason == "stopped_by_user"
    # The summary kept in journals has no env values (the server echoes them in run_spec).
    assert "env" not in json.dumps(failed.to_dict())


def test_recordings_hold_no_env_values():
    for path in RECORDED.glob("ps_*.json"):
        for run in json.loads(path.read_text())["runs"]:
            env = run["run_spec"]["configuration"]["env"]
            assert all(value == f"<{key}>" for key, value in env.items()), path


# -- against the stand-in ---------------------------------------------------------------------


def test_success_path_fetches_the_log_and_reports_cost_gpu_attempts(tmp_path, standin):
    standin.scenario({"default": running_then(DONE), "banner": True})
    runner = DstackRunner(options(standin))
    request = make_request(tmp_path)
    result = runner.run(request)

    assert (result.run_name, result.runner, result.data_folder) == (
        "ppo-cartpole",
        "dstack",
        FOLDER,
    )
    assert result.folder_path is None
    assert result.extra["cost"] == pytest.approx(0.12)
    assert result.extra["gpu"] == "A10G" and result.extra["wall_time_s"] >= 0
    assert [a["name"] for a in result.extra["attempts"]] == ["ppo-cartpole"]
    log = request.log_path.read_text()
    assert "trial_metrics: frame:2.00e+05 | total_reward_ma:498.94" in log
    assert "SLM-Lab: Running specs/ppo_classic.yaml ppo_cartpole train" in log

    applies = standin.calls("apply")
    assert len(applies) == 1
    args = applies[0]["args"]
    assert args[:7] == ["-f", "dstack-task.yml", "-y", "-d", "-n", "ppo-cartpole", "-e"]
    assert not any(SECRET in arg for arg in args)  # passed by name only
    # The server echoes HF_TOKEN's value in `ps --json`; none of it reaches the journal.
    assert SECRET in json.dumps(standin.run("ppo-cartpole")["env"])
    journal_text = request.journal_path.read_text()
    assert SECRET not in journal_text
    journal = json.loads(journal_text)
    assert journal["attempts"][0]["state"] == "done" and journal["fingerprint"] == "fp-1"


def test_spot_interruption_relaunches_under_an_incremented_name(tmp_path, standin):
    standin.scenario(
        {
            "runs": {
                "ppo-cartpole": running_then(INTERRUPTED),
                "ppo-cartpole-2": running_then(INTERRUPTED),
                "ppo-cartpole-3": running_then(DONE),
            }
        }
    )
    result = DstackRunner(options(standin)).run(make_request(tmp_path))
    assert result.run_name == "ppo-cartpole-3"
    names = [a["name"] for a in result.extra["attempts"]]
    assert names == ["ppo-cartpole", "ppo-cartpole-2", "ppo-cartpole-3"]
    assert [a["reason"] for a in result.extra["attempts"]] == ["submit", "relaunch", "relaunch"]
    assert "interrupted_by_no_capacity" in result.extra["attempts"][0]["termination"]
    assert result.extra["cost"] == pytest.approx(0.03 + 0.03 + 0.12)
    assert [c["args"][5] for c in standin.calls("apply")] == names
    journal = read_journal(tmp_path / "cell" / "journal.json")
    assert [a["state"] for a in journal["attempts"]] == ["failed", "failed", "done"]


def test_relaunches_stop_at_max_relaunches(tmp_path, standin):
    standin.scenario({"default": running_then(INTERRUPTED)})
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin, max_relaunches=1)).run(make_request(tmp_path))
    message = str(error.value)
    assert "dstack run ppo-cartpole-2 of cell CartPole-v1/ppo failed" in message
    assert "interrupted" in message and "attempt 2 of this cell, 2 in this invocation" in message
    assert len(standin.calls("apply")) == 2


def test_failure_is_one_line_with_status_reason_and_log_tail(tmp_path, standin):
    crash = {
        "status": "failed",
        "job_status": "failed",
        "job_message": "exited (1)",
        "job_termination_reason": "container_exited_with_error",
        "exit_status": 1,
        "log": "loading spec\nTraceback (most recent call last):\nKeyError: 'max_frame'\n",
    }
    standin.scenario({"default": running_then(crash)})
    request = make_request(tmp_path)
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin)).run(request)
    message = str(error.value)
    assert "\n" not in message
    assert "failed (job_failed, exited (1), container_exited_with_error, exit status 1)" in message
    assert message.endswith(
        "loading spec / Traceback (most recent call last): / KeyError: 'max_frame'"
    )
    assert len(standin.calls("apply")) == 1  # a crash is not relaunched
    # A later pipeline run starts a fresh attempt (under the next name) instead of re-attaching.
    standin.scenario({"default": running_then(DONE)})
    assert DstackRunner(options(standin)).run(request).run_name == "ppo-cartpole-2"


def test_unreachable_server_backs_off_and_recovers(tmp_path, standin):
    standin.scenario({"default": running_then(DONE), "ps_failures": 4})
    runner = DstackRunner(options(standin, poll_interval_s=0.01, poll_backoff_max_s=0.05))
    delays: list[float] = []
    runner.sleep = delays.append
    result = runner.run(make_request(tmp_path))
    assert result.data_folder == FOLDER
    # The name check before apply meets the four failures: 0.01, 0.02, 0.04, then capped.
    assert delays[:4] == [0.01, 0.02, 0.04, 0.05]
    assert set(delays[4:]) == {0.01}


def test_name_taken_on_the_server_is_never_replaced(tmp_path, standin):
    standin.scenario(
        {"runs": {"ppo-cartpole": [{"status": "running"}]}, "default": running_then(DONE)}
    )
    task = tmp_path / "other.yml"
    task.write_text("type: task\ncommands: [sleep 1]\n")
    subprocess.run(
        [standin.dstack_bin, "apply", "-f", str(task), "-y", "-d", "-n", "ppo-cartpole"],
        check=True,
        capture_output=True,
        env=standin.env(),
    )
    result = DstackRunner(options(standin)).run(make_request(tmp_path))
    assert result.run_name == "ppo-cartpole-2"
    assert standin.run("ppo-cartpole")["status"] == "running"  # the other run is untouched


def test_restart_reattaches_to_a_recorded_run(tmp_path, standin):
    standin.scenario({"default": running_then(DONE, polls=3)})
    request = make_request(tmp_path)
    runner = DstackRunner(options(standin))
    runner.submit(request)
    assert len(standin.calls("apply")) == 1

    result = DstackRunner(options(standin)).run(request)  # a fresh process would do the same
    assert result.run_name == "ppo-cartpole" and result.data_folder == FOLDER
    assert len(standin.calls("apply")) == 1
    # Asked again (e.g. the marker was lost), a done run is re-attached, not paid for twice.
    again = DstackRunner(options(standin)).run(request)
    assert again.run_name == "ppo-cartpole" and len(standin.calls("apply")) == 1


def test_a_submission_killed_before_apply_is_applied_under_the_same_name(tmp_path, standin):
    standin.scenario({"default": running_then(DONE)})
    request = make_request(tmp_path)
    request.journal_path.parent.mkdir(parents=True)
    request.journal_path.write_text(
        json.dumps(
            {
                "fingerprint": "fp-1",
                "attempts": [{"name": "ppo-cartpole", "reason": "submit", "state": "submitting"}],
            }
        )
    )
    result = DstackRunner(options(standin)).run(request)
    assert result.run_name == "ppo-cartpole"
    assert [c["args"][5] for c in standin.calls("apply")] == ["ppo-cartpole"]


def test_other_work_in_the_journal_is_kept_but_not_reattached(tmp_path, standin):
    standin.scenario({"default": running_then(DONE)})
    DstackRunner(options(standin)).run(make_request(tmp_path, fingerprint="old"))
    result = DstackRunner(options(standin)).run(make_request(tmp_path, fingerprint="new"))
    assert result.run_name == "ppo-cartpole-2"
    journal = read_journal(tmp_path / "cell" / "journal.json")
    assert [a["name"] for a in journal["previous"]] == ["ppo-cartpole"]
    assert [a["name"] for a in journal["attempts"]] == ["ppo-cartpole-2"]


def test_a_run_beyond_the_ps_page_is_followed_through_its_events(tmp_path, standin, monkeypatch):
    monkeypatch.setattr(dstack_cell_run_module, "PS_PAGE_SIZE", 2)
    standin.scenario(
        {
            "ps_limit": 2,
            "runs": {"ppo-cartpole": running_then(DONE)},
            "default": [{"status": "running"}],
        }
    )
    request = make_request(tmp_path)
    runner = DstackRunner(options(standin))
    runner.submit(request)
    task = tmp_path / "other.yml"
    task.write_text("type: task\ncommands: [sleep 1]\n")
    for name in ("newer-a", "newer-b"):
        time.sleep(0.01)
        subprocess.run(
            [standin.dstack_bin, "apply", "-f", str(task), "-y", "-d", "-n", name],
            check=True,
            capture_output=True,
            env=standin.env(),
        )
    result = DstackRunner(options(standin)).run(request)
    assert result.data_folder == FOLDER
    assert standin.calls("event")


def test_missing_token_stops_before_anything_is_submitted(tmp_path, standin, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
    opts = options(standin, store={**STORE, "env_file": str(tmp_path / "no.env")})
    request = make_request(tmp_path)
    with pytest.raises(BenchError, match="HF_TOKEN is not set"):
        DstackRunner(opts).run(request)
    assert standin.calls("apply") == [] and not request.journal_path.exists()


def test_token_from_the_env_file_reaches_dstack_through_its_environment(
    tmp_path, standin, monkeypatch
):
    monkeypatch.delenv("HF_TOKEN")
    (tmp_path / "my.env").write_text(f"HF_TOKEN={SECRET}\n")
    standin.scenario({"default": running_then(DONE)})
    opts = options(standin, store={**STORE, "env_file": str(tmp_path / "my.env")})
    result = DstackRunner(opts).run(make_request(tmp_path))
    assert result.data_folder == FOLDER
    assert standin.run("ppo-cartpole")["env"]["HF_TOKEN"] == SECRET  # dstack read it by name
    assert not any(SECRET in arg for call in standin.calls() for arg in call["args"])
    assert "HF_TOKEN" not in os.environ


def test_cancel_stops_recorded_runs_and_a_rerun_submits_afresh(tmp_path, standin):
    standin.scenario({"default": [{"status": "running"}]})
    request = make_request(tmp_path)
    runner = DstackRunner(options(standin))
    runner.submit(request)
    gone = tmp_path / "gone" / "journal.json"
    gone.parent.mkdir()
    gone.write_text(json.dumps({"attempts": [{"name": "never-submitted", "state": "submitted"}]}))

    stopped = cancel_recorded_runs([request.journal_path, gone], dstack_bin=standin.dstack_bin)
    assert [(o.name, o.stops, o.status) for o in stopped] == [("ppo-cartpole", 1, "terminated")]
    assert standin.run("ppo-cartpole")["status"] == "terminated"
    assert read_journal(request.journal_path)["attempts"][0]["state"] == "cancelled"

    standin.scenario({"default": running_then(DONE)})
    assert DstackRunner(options(standin)).run(request).run_name == "ppo-cartpole-2"


def test_cancel_between_journaling_and_apply_still_stops_the_run(tmp_path, standin):
    """The cancel target reads the journal after the runner recorded a name but before it ran
    `dstack apply`: it cannot stop what is not submitted yet, so the runner must, and fail."""
    standin.scenario({"default": [{"status": "running"}]})
    request = make_request(tmp_path)
    runner = DstackRunner(options(standin))
    apply = runner.cli.apply

    def apply_after_a_cancel(*args, **kwargs):
        cancel_recorded_runs([request.journal_path], dstack_bin=standin.dstack_bin)
        return apply(*args, **kwargs)

    runner.cli.apply = apply_after_a_cancel
    with pytest.raises(BenchError, match="dstack run ppo-cartpole was cancelled"):
        runner.run(request)
    assert standin.run("ppo-cartpole")["status"] == "terminated"
    assert read_journal(request.journal_path)["attempts"][-1]["state"] == "cancelled"


def test_standin_output_validates_against_dstacks_own_model(tmp_path, standin):
    venv = dstack_venv()
    if venv is None:
        pytest.skip("no dstack venv (set SLM_BENCH_DSTACK_VENV)")
    standin.scenario({"default": running_then(DONE, polls=2)})
    request = make_request(tmp_path)
    runner = DstackRunner(options(standin))
    runner.submit(request)
    outputs = []
    for _ in range(3):
        outputs.append(
            subprocess.run(
                [standin.dstack_bin, "ps", "-a", "--json"],
                env=standin.env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    code = (
        "import sys, json\n"
        "from dstack._internal.cli.models.runs import PsCommandOutput\n"
        "for text in json.load(sys.stdin):\n"
        "    run = PsCommandOutput.model_validate_json(text).runs[0]\n"
        "    print(run.status.value)\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        input=json.dumps(outputs),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["running", "running", "done"]


# -- a runner process that gets killed or stopped ---------------------------------------------

RUNNER_SCRIPT = """
import sys
from pathlib import Path
from slm_bench.runners import RunRequest
from slm_bench.runners.dstack import DstackRunner
root = Path(sys.argv[1])
request = RunRequest(spec_file="specs/ppo_classic.yaml", spec_name="ppo_cartpole", sets={},
    workdir=root / "cell" / "work", log_path=root / "cell" / "train.log.partial",
    journal_path=root / "cell" / "journal.json", time_limit_s=21600, cell="CartPole-v1/ppo",
    fingerprint="fp-1")
DstackRunner({"dstack_bin": sys.argv[2], "poll_interval_s": 0.05, "store":
    {"name": "hf", "dev_repo": "SLM-Lab/benchmark-dev"}}).run(request)
"""


def start_runner_process(tmp_path: Path, standin: StandinDstack) -> subprocess.Popen:
    env = standin.env()
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER_SCRIPT, str(tmp_path), standin.dstack_bin],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )


def wait_for_running(tmp_path: Path, process: subprocess.Popen, timeout_s: float = 30) -> None:
    journal = tmp_path / "cell" / "journal.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if journal.exists():
            attempts = json.loads(journal.read_text())["attempts"]
            if attempts and attempts[-1]["state"] == "running":
                return
        time.sleep(0.05)
    raise AssertionError("the runner never saw its run running")


def test_sigkilled_runner_is_replaced_by_one_that_reattaches(tmp_path, standin):
    standin.scenario({"default": running_then(DONE, polls=15)})
    process = start_runner_process(tmp_path, standin)
    wait_for_running(tmp_path, process)
    process.kill()
    process.wait()
    assert len(standin.calls("apply")) == 1

    result = DstackRunner(options(standin)).run(make_request(tmp_path))
    assert result.run_name == "ppo-cartpole" and result.data_folder == FOLDER
    assert len(standin.calls("apply")) == 1  # re-attached: nothing new submitted
    assert standin.calls("stop") == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_pipeline_leaves_the_remote_run_running(tmp_path, standin, sig):
    standin.scenario({"default": [{"status": "provisioning"}, {"status": "running"}]})
    process = start_runner_process(tmp_path, standin)
    wait_for_running(tmp_path, process)
    process.send_signal(sig)
    assert process.wait(timeout=20) == 130
    stderr = process.stderr.read().decode()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    (line,) = [line for line in stderr.splitlines() if "stopped waiting" in line]
    assert line == (
        "CartPole-v1/ppo: stopped waiting; dstack run ppo-cartpole (running) keeps running and a"
        " rerun re-attaches to it; to stop it: snakemake --workflow-profile profiles/dstack"
        " cancel (or dstack stop -y ppo-cartpole)"
    )
    assert standin.calls("stop") == []
    assert standin.run("ppo-cartpole")["status"] == "running"
    # A rerun re-attaches to the run the interrupted one left.
    standin.scenario({"default": running_then(DONE)})
    result = DstackRunner(options(standin)).run(make_request(tmp_path))
    assert result.run_name == "ppo-cartpole" and len(standin.calls("apply")) == 1


# -- saying what is wrong ------------------------------------------------------------------------

NO_CAPACITY = {
    # A spot offer that could not be provisioned: dstack retries within the retry window. The
    # run fields are the real server's (recorded/ps_pending.json); the message is dstack
    # 0.22.5's for offers that were tried and failed (jobs_submitted.py).
    "status": "pending",
    "job_status": "failed",
    "job_message": "no capacity",
    "job_termination_reason": "failed_to_start_due_to_no_capacity",
    "job_termination_message": "Failed to provision in fleet 'slm-bench-gpu': tried 3 of 3"
    " offers, all failed.\nSee https://dstack.ai/docs/guides/troubleshooting/#provisioning-fails",
}


def recorded_job(name: str) -> dict:
    """The latest job submission's status fields as the real server recorded them."""
    job = recorded(name)["runs"][0]["latest_job_submission"]
    return {
        "job_status": job["status"],
        "job_message": job["status_message"],
        "job_termination_reason": job["termination_reason"],
        "job_termination_message": job["termination_reason_message"],
    }


def test_a_capacity_wait_prints_state_changes_and_heartbeats(tmp_path, standin):
    waiting = {**NO_CAPACITY, "seconds": 0.5}
    submitted = {"status": "submitted", "polls": 2}
    standin.scenario({"default": [submitted, waiting, *running_then(DONE)]})
    runner = DstackRunner(options(standin, heartbeat_s=0.1))
    lines: list[str] = []
    runner.say = lines.append
    result = runner.run(make_request(tmp_path))
    assert result.data_folder == FOLDER
    reason = (
        "no capacity: Failed to provision in fleet 'slm-bench-gpu': tried 3 of 3 offers, all"
        " failed. See https://dstack.ai/docs/guides/troubleshooting/#provisioning-fails"
    )
    changes = [line for line in lines if line.startswith("CartPole-v1/ppo: dstack run ")]
    assert changes == [
        "CartPole-v1/ppo: dstack run ppo-cartpole: submitted",
        f"CartPole-v1/ppo: dstack run ppo-cartpole: pending ({reason})",
        "CartPole-v1/ppo: dstack run ppo-cartpole: provisioning",
        "CartPole-v1/ppo: dstack run ppo-cartpole: running",
        "CartPole-v1/ppo: dstack run ppo-cartpole: done",
    ]
    beats = [line for line in lines if "waiting for capacity" in line]
    assert beats, lines
    assert beats[0] == "CartPole-v1/ppo: waiting for capacity, 0 of 60 min (dstack run" + (
        f" ppo-cartpole: {reason})"
    )
    assert lines[0].startswith("CartPole-v1/ppo: dstack task the embedded runner's cpu task")
    assert standin.calls("stop") == []  # a capacity wait is waited out


def test_no_fleet_seen_while_polling_stops_the_run_and_fails_at_once(tmp_path, standin):
    standin.scenario({"default": [{"status": "submitted"}, {"status": "pending", **recorded_job(
        "pending")}]})  # fmt: skip
    request = make_request(tmp_path)
    started = time.monotonic()
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin)).run(request)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message == (
        "CartPole-v1/ppo: dstack cannot start run ppo-cartpole: no fleets (No matching fleet"
        " found. Possible reasons: https://dstack.ai/docs/guides/troubleshooting/#no-fleets);"
        " create a fleet the run fits in first: dstack apply -f profiles/dstack/fleet-cpu.yml"
        " (it needs a backend: https://dstack.ai/docs/concepts/backends; fleets:"
        " https://dstack.ai/docs/concepts/fleets), then rerun; the waiting run was stopped;"
        " attempt 1 of this cell, 1 in this invocation"
    )
    assert standin.run("ppo-cartpole")["status"] == "terminated"
    attempt = read_journal(request.journal_path)["attempts"][-1]
    assert attempt["state"] == "failed" and attempt["run"]["problem"].startswith("no fleets: ")
    # Fixed, a rerun submits afresh; the count says which attempts are this invocation's.
    standin.scenario({"default": [{"status": "running"}, INTERRUPTED]})
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin, max_relaunches=0)).run(request)
    assert "attempt 2 of this cell, 1 in this invocation" in str(error.value)


def test_a_failure_line_never_points_at_an_empty_log(tmp_path, standin):
    stopped = {"status": "terminated", "termination_reason": "stopped_by_user"}
    standin.scenario({"default": [{"status": "submitted"}, stopped]})
    request = make_request(tmp_path)
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin)).run(request)
    assert str(error.value).endswith("; the run wrote no log")
    assert not request.log_path.exists()


def test_unreachable_server_fails_within_the_bound_with_the_url(tmp_path, standin):
    standin.scenario({"ps_failures": 1000})
    runner = DstackRunner(options(standin, unreachable_timeout_s=0.3, poll_backoff_max_s=0.05))
    started = time.monotonic()
    with pytest.raises(BenchError) as error:
        runner.run(make_request(tmp_path))
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert message.startswith("CartPole-v1/ppo: dstack server unreachable for ")
    assert "Failed to connect to dstack server http://127.0.0.1:3000" in message
    assert "`dstack server`" in message and "dstack project add" in message
    assert standin.calls("apply") == []


# -- against a real dstack server -------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from served(tmp_path_factory.mktemp("dstack-server"))


@pytest.fixture
def real_env(server, monkeypatch):
    use_server(server, monkeypatch)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    return server


def real_options(server: DstackServer, **changes) -> dict:
    opts = {
        "dstack_bin": server.dstack_bin,
        "poll_interval_s": 2,  # each CLI call costs ~2 s of CPU: slower polls finish sooner
        "poll_backoff_max_s": 8,
        "store": dict(STORE),
        "spec_root": str(REPO),
    }
    opts.update(changes)
    return opts


@pytest.mark.slow
def test_real_server_no_fleet_fails_within_a_minute_with_reason_and_fix(tmp_path, real_env):
    """Two cells at once on a server without fleets, one under SLM-Lab's retry policy (1 h on
    no-capacity, where dstack would keep it pending for the hour), one without: both fail in
    under a minute with dstack's reason, its whole URL and the fleet to create, and the
    runner stops the waiting runs."""
    server = real_env
    outcomes: dict[str, BaseException | object] = {}
    took: dict[str, float] = {}

    def run_cell(key: str, request: RunRequest, opts: dict) -> None:
        started = time.monotonic()
        try:
            outcomes[key] = DstackRunner(opts).run(request)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcomes[key] = error
        took[key] = time.monotonic() - started

    no_retry = make_request(tmp_path / "a", spec_name="ppo_cartpole")
    retrying = make_request(tmp_path / "b", spec_name="ppo_acrobot", sets={"env": "Acrobot-v1"})
    threads = [
        threading.Thread(
            target=run_cell, args=("no_retry", no_retry, real_options(server, retry_events=[]))
        ),
        threading.Thread(target=run_cell, args=("retrying", retrying, real_options(server))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    for key, name in (("no_retry", "ppo-cartpole"), ("retrying", "ppo-acrobot-acrobot")):
        failed = outcomes[key]
        assert isinstance(failed, BenchError), failed
        assert took[key] < 60, took
        message = str(failed)
        assert "\n" not in message
        assert message.startswith(f"CartPole-v1/ppo: dstack cannot start run {name}: no fleets (")
        assert "https://dstack.ai/docs/guides/troubleshooting/#no-fleets)" in message
        assert "dstack apply -f profiles/dstack/fleet-cpu.yml" in message
        assert message.endswith("attempt 1 of this cell, 1 in this invocation")
    retry_task = yaml.safe_load((retrying.workdir / "dstack-task.yml").read_text())
    assert retry_task["retry"] == {"on_events": ["no-capacity"], "duration": "1h"}

    # The runs were stopped; the real submissions carried the -e values and no secret.
    assert SECRET not in no_retry.journal_path.read_text()
    deadline = time.monotonic() + 60
    while True:
        document = json.loads(server.cli("ps", "-a", "--json").stdout)
        runs = {r["run_spec"]["run_name"]: r for r in document["runs"]}
        if runs["ppo-acrobot-acrobot"]["status"] == "terminated" or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert runs["ppo-acrobot-acrobot"]["status"] == "terminated"
    env = runs["ppo-acrobot-acrobot"]["run_spec"]["configuration"]["env"]
    assert env["SPEC_VARS"] == "-s env=Acrobot-v1" and env["SPEC_NAME"] == "ppo_acrobot"
    assert env["HF_REPO"] == "SLM-Lab/benchmark-dev"
    assert runs["ppo-cartpole"]["run_spec"]["configuration"]["env"]["SPEC_VARS"] == ""
    # The recorded shapes the stand-in copies are still the server's.
    assert _shape(redact_ps(document)["runs"][0]) == _shape(recorded("failed")["runs"][0])


@pytest.mark.slow
def test_real_cli_with_the_server_down_fails_within_a_minute(tmp_path, monkeypatch):
    """The real dstack CLI configured for a server that is not there (nothing listens on the
    port): the cell fails in under a minute, naming the URL and how to start a server."""
    from dstack_server import free_port

    venv = dstack_venv()
    if venv is None:
        pytest.skip("no dstack venv: set SLM_BENCH_DSTACK_VENV")
    port = free_port()
    home = tmp_path / "home"
    (home / ".dstack").mkdir(parents=True)
    (home / ".dstack" / "config.yml").write_text(
        "projects:\n- default: true\n  name: main\n  token: t0k3n\n"
        f"  url: http://127.0.0.1:{port}\n"
    )
    stamp = home / ".cache" / ".dstack" / "cli" / "last_check"
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DSTACK_SERVER_URL", raising=False)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    opts = {"dstack_bin": str(venv / "bin" / "dstack"), "store": dict(STORE)}
    started = time.monotonic()
    with pytest.raises(BenchError) as error:
        DstackRunner(opts).run(make_request(tmp_path))
    assert time.monotonic() - started < 60
    message = str(error.value)
    assert f"Failed to connect to dstack server http://127.0.0.1:{port}" in message
    assert "start one with `dstack server`" in message and "\n" not in message


def _shape(run: dict) -> dict:
    """The keys of a run and of the parts the runner and the stand-in read."""
    job = run["jobs"][0]
    return {
        "run": sorted(run),
        "run_spec": sorted(run["run_spec"]),
        "configuration": sorted(run["run_spec"]["configuration"]),
        "job": sorted(job),
        "job_spec": sorted(job["job_spec"]),
        "submission": sorted(job["job_submissions"][0]),
        "latest": sorted(run["latest_job_submission"]),
    }


@pytest.mark.slow
def test_real_server_unknown_names_logs_and_ps(tmp_path, real_env):
    server = real_env
    runner = DstackRunner(real_options(server))
    assert runner.cli.stop("no-such-run") is False  # unknown run: not an error for cancel
    with pytest.raises(dstack_runner.DstackCliError) as error:
        runner.cli.logs("no-such-run", tmp_path / "log")
    assert error.value.not_found and "Run no-such-run not found" in str(error.value)
    assert not (tmp_path / "log").exists()
    assert runner.cli.last_event_status("no-such-run") is None

    # The stand-in answers unknown names with the same words.
    stand = StandinDstack(tmp_path / "standin")
    for args in (["stop", "-y", "no-such-run"], ["logs", "no-such-run"]):
        real = server.cli(*args)
        fake = subprocess.run(
            [stand.dstack_bin, *args], env=stand.env(), capture_output=True, text=True
        )
        assert real.returncode == fake.returncode == 1
        assert real.stdout.strip() == fake.stdout.strip() == "Run no-such-run not found"

    # ps of the runs the other test left: parsed, every run finished or pending.
    states = dstack_runner.index_runs(runner.cli.ps())
    assert all(
        s.status in dstack_runner.ACTIVE_STATUSES + dstack_runner.FINISHED_STATUSES
        for s in states.values()
    )
    if "ppo-cartpole" in states:  # the logs of a run that never started are empty, not an error
        runner.cli.logs("ppo-cartpole", tmp_path / "log")
        assert (tmp_path / "log").read_text() == ""
        status, _ = runner.cli.last_event_status("ppo-cartpole")
        assert status in ("failed", "terminated")  # failed on its own, or stopped first


# -- the workflow profile ---------------------------------------------------------------------


def test_dstack_profile_selects_the_runner_and_caps_remote_runs(tmp_path):
    from snakemake.profiles import ProfileConfigFileParser
    from workflow_helpers import SNAKEFILE, make_workdir, planned_jobs, tiny_config

    profile = REPO / "profiles" / "dstack" / "config.yaml"
    with profile.open() as handle:
        flags = dict(ProfileConfigFileParser().parse(handle))
    assert flags["config"] == ["runner=dstack", "store=hf"]
    assert flags["resources"] == ["dstack_slots=10"]
    assert flags["keep-going"] == "True" and flags["retries"] == "0"
    assert flags.get("rerun-incomplete", "False") == "False"

    workdir = make_workdir(tmp_path / "w", tiny_config())
    argv = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), "-n",
            "--workflow-profile", str(profile.parent), "--profile", "none"]  # fmt: skip
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert planned_jobs(output)["run_cell"] == 3
    assert output.count("dstack_slots=1") == 3  # each remote run takes one of the 10 slots


def test_runners_share_one_listing_per_poll_interval(tmp_path, standin):
    standin.scenario({"default": [{"status": "running"}]})
    runner = DstackRunner(options(standin))
    request = make_request(tmp_path)
    runner.submit(request)
    listing = dstack_runner.SharedListing(runner.cli, max_age_s=60, folder=tmp_path / "cache")
    before = len(standin.calls("ps"))
    results: list[list] = []
    threads = [threading.Thread(target=lambda: results.append(listing.runs())) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(standin.calls("ps")) == before + 1  # ten pollers, one CLI call
    assert all([s.name for s in r] == ["ppo-cartpole"] for r in results)
    # Another runner process (a new listing object) reuses it too, unless it needs a newer one.
    again = dstack_runner.SharedListing(runner.cli, max_age_s=60, folder=tmp_path / "cache")
    again.runs()
    assert len(standin.calls("ps")) == before + 1
    again.runs(not_before=time.time())
    assert len(standin.calls("ps")) == before + 2
    # Only summaries are cached, readable by the owner alone.
    assert SECRET not in listing.path.read_text()
    assert listing.path.stat().st_mode & 0o077 == 0


def test_a_checkout_dstack_cannot_mount_says_to_push_the_branch(tmp_path, standin):
    # What the real CLI prints for a checkout whose branch has no remote (dstack 0.22.5).
    standin.scenario({"apply_error": "No remote branch is configured"})
    checkout = slm_lab_checkout(tmp_path)
    hardware, spec_file, spec_name, sets = CHECKOUT_ROWS[0]
    request = make_request(tmp_path, spec_file=spec_file, spec_name=spec_name)
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin, checkout=str(checkout))).run(request)
    message = str(error.value)
    assert "`dstack apply` exited 1: No remote branch is configured" in message
    assert "git push -u origin BRANCH" in message
    assert read_journal(request.journal_path)["attempts"][-1]["state"] == "failed"


def test_a_run_failed_for_lack_of_a_fleet_fails_the_cell_with_the_fix(tmp_path, standin):
    # Without a retry policy the server fails the run itself (recorded/ps_failed.json).
    failed = {"status": "failed", **recorded_job("failed")}
    standin.scenario({"default": [{"status": "submitted"}, failed]})
    with pytest.raises(BenchError) as error:
        DstackRunner(options(standin, retry_events=[])).run(make_request(tmp_path))
    message = str(error.value)
    assert "no fleets (No matching fleet found" in message and "; the run ended;" in message
    assert "dstack apply -f profiles/dstack/fleet-cpu.yml" in message
    assert standin.calls("stop") == []


def test_the_embedded_tasks_source_upload_fits_dstacks_limit():
    """dstack refuses a `files` archive over 2 MiB (DSTACK_SERVER_CODE_UPLOAD_LIMIT); the
    source tree the embedded task uploads, as dstack itself archives it (.gitignore and
    .dstackignore honoured), stays well below."""
    venv = dstack_venv()
    if venv is None:
        pytest.skip("no dstack venv (set SLM_BENCH_DSTACK_VENV)")
    code = (
        "import sys, tempfile\n"
        "from dstack._internal.utils.files import create_file_archive\n"
        "with tempfile.TemporaryFile() as f:\n"
        "    create_file_archive(sys.argv[1], f)\n"
        "    print(f.tell())\n"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, str(dstack_task.source_tree())],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(done.stdout) < 1.5 * 2**20
