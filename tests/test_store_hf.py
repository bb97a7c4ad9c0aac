"""HfStore against real servers: the Hub-compatible test server (uploads, faults) and olah."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hf_helpers import (
    CANARY_TOKEN,
    fast_options,
    git_dataset_repo,
    make_run_folder,
    tree_bytes,
)
from hub_server import HubServer

from slm_bench.errors import BenchError
from slm_bench.stores import make_public_store, make_store, require_folders
from slm_bench.stores.hf import HfStore

pytest_plugins = ["conftest_hf"]

REPO_ROOT = Path(__file__).resolve().parents[1]
FOLDER = "ppo_cartpole_arc_2026_02_11_144029"
OTHER = "dqn_cartpole_arc_2026_02_11_135648"


def store_for(hub: HubServer, **extra: object) -> HfStore:
    store = make_store("hf", fast_options(hub.url, **extra))
    assert isinstance(store, HfStore)
    return store


def expected_files(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_bytes(folder).items() if not k.endswith("_optim.pt")}


def test_url_is_slm_labs_link_with_the_endpoints_host():
    hub_store = HfStore.from_options({})
    assert hub_store.url(FOLDER) == (
        f"https://huggingface.co/datasets/SLM-Lab/benchmark-dev/tree/main/data/{FOLDER}"
    )
    mirror = HfStore.from_options({"endpoint": "http://127.0.0.1:8090/"}, repo="me/runs")
    assert mirror.url(FOLDER) == f"http://127.0.0.1:8090/datasets/me/runs/tree/main/data/{FOLDER}"
    public = make_public_store("hf", {})
    assert public.repo == "SLM-Lab/benchmark"


def test_endpoint_defaults_to_hf_endpoint_and_options_are_checked(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:9000")
    assert HfStore.from_options({}).endpoint == "http://mirror.example:9000"
    with pytest.raises(BenchError, match=r"^config.yaml: hf.max_retries: expected a non-neg"):
        HfStore.from_options({"max_retries": -1})
    with pytest.raises(BenchError, match=r"^config.yaml: hf.dev_repo: 'benchmark' is not a repo"):
        HfStore.from_options({"dev_repo": "benchmark"})
    with pytest.raises(BenchError, match=r"^config.yaml: hf.public_repo: 'pub' is not a repo id"):
        make_public_store("hf", {"public_repo": "pub"})
    monkeypatch.setenv("HF_ENDPOINT", "mirror.example")
    with pytest.raises(BenchError, match=r"^HF_ENDPOINT: 'mirror.example' is not an http\(s\)"):
        HfStore.from_options({})


def test_upload_download_exists_roundtrip(hub, hf_env, tmp_path):
    store = store_for(hub)
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.upload(run)

    files = hub.files(store.repo)
    uploaded = {p.removeprefix(f"data/{FOLDER}/"): c for p, c in files.items() if "/" in p}
    assert uploaded == expected_files(run)  # optimizer file left out, the rest byte-identical
    assert hub.count(r"lfs/objects/batch") == 1  # the binary model went through LFS

    hub.clear_log()
    assert store.exists([FOLDER, OTHER]) == {FOLDER: True, OTHER: False}
    assert [r.line.split("?")[0] for r in hub.requests] == [
        "POST /api/datasets/SLM-Lab/benchmark-dev/paths-info/main"
    ]

    hub.clear_log()
    dest = store.download(FOLDER, tmp_path / "hf_data")
    assert dest == tmp_path / "hf_data" / "data" / FOLDER
    assert tree_bytes(dest) == expected_files(run)
    assert sorted(p.name for p in dest.parent.iterdir()) == [FOLDER]  # no scratch left behind
    # Only this folder was listed and fetched: no repo-wide listing or repo info call.
    assert all(FOLDER in r.path for r in hub.requests), [r.line for r in hub.requests]
    assert hub.count(r"/revision/|/tree/main\?") == 0


def test_reupload_and_repull_send_nothing_new(hub, hf_env, tmp_path):
    store = store_for(hub)
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.upload(run)
    commits = hub.commit_count(store.repo)
    hub.clear_log()
    store.upload(run)
    assert hub.commit_count(store.repo) == commits
    assert hub.count(r"preupload|/commit/|lfs") == 0
    assert hub.count() == 1  # one listing of data/FOLDER, compared by hash

    (run / "log" / "extra.log").write_text("one more line\n")
    assert store.upload_tree(run / "log", f"data/{FOLDER}/log") == 1  # only the new file
    assert hub.commit_count(store.repo) == commits + 1


def test_upload_creates_a_missing_repo_once(hub, hf_env, tmp_path):
    store = store_for(hub, dev_repo="someone/new-runs")
    store.upload(make_run_folder(tmp_path, FOLDER))
    assert hub.count(r"POST /api/repos/create") == 1
    store.upload(make_run_folder(tmp_path / "b", OTHER))
    assert hub.count(r"POST /api/repos/create") == 1
    assert store.exists([FOLDER, OTHER]) == {FOLDER: True, OTHER: True}


@pytest.mark.parametrize(
    ("action", "pattern"),
    [("exists", r"POST .*/paths-info/"), ("upload", r"POST .*/commit/")],
)
def test_429_twice_then_success_honours_retry_after(hub, hf_env, tmp_path, action, pattern):
    store = store_for(hub)
    run = make_run_folder(tmp_path, FOLDER)
    if action == "exists":
        store.upload(run)
    hub.clear_log()
    hub.inject(pattern, 429, times=2, retry_after=0.2)
    started = time.monotonic()
    if action == "exists":
        assert store.exists([FOLDER]) == {FOLDER: True}
    else:
        store.upload(run)
        assert f"data/{FOLDER}/info/{FOLDER}_t0_trial_metrics.json" in hub.files(store.repo)
    # backoff_s is 0.01: only Retry-After (0.2 s twice) explains the wait.
    assert time.monotonic() - started >= 0.4
    assert [r.status for r in hub.matching(pattern)] == [429, 429, 200]


def test_persistent_429_gives_one_clear_line_after_bounded_retries(hub, hf_env, tmp_path):
    store = store_for(hub)
    store.upload(make_run_folder(tmp_path / "a", FOLDER))
    before = hub.files(store.repo)
    commits = hub.commit_count(store.repo)
    hub.clear_log()
    hub.inject(r"POST .*/commit/", 429, times=None, retry_after=0)
    with pytest.raises(BenchError) as raised:
        store.upload(make_run_folder(tmp_path / "b", OTHER))
    message = str(raised.value)
    assert "\n" not in message
    assert "SLM-Lab/benchmark-dev" in message and f"data/{OTHER}" in message
    assert "HTTP 429" in message and "after 3 tries" in message
    assert hub.count(r"POST .*/commit/") == 3  # max_retries=2: bounded
    assert hub.files(store.repo) == before and hub.commit_count(store.repo) == commits

    hub.clear_faults()
    hub.inject(r"paths-info", 429, times=None)
    with pytest.raises(
        BenchError, match=rf"link check data/{FOLDER} failed after 3 tries: HTTP 429"
    ):
        store.exists([FOLDER])


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_gives_one_clear_line_and_writes_nothing(hub, hf_env, tmp_path, status):
    store = store_for(hub)
    store.upload(make_run_folder(tmp_path / "a", FOLDER))
    commits = hub.commit_count(store.repo)
    hub.inject(r"POST .*/commit/", status, times=None)
    with pytest.raises(BenchError, match=rf"upload .* failed after 3 tries: HTTP {status}"):
        store.upload(make_run_folder(tmp_path / "b", OTHER))
    assert hub.commit_count(store.repo) == commits
    assert not any(OTHER in path for path in hub.files(store.repo))


def test_missing_folder_is_false_and_an_error_where_required(hub, hf_env, tmp_path):
    store = store_for(hub)
    store.upload(make_run_folder(tmp_path, FOLDER))
    assert store.exists([OTHER, FOLDER]) == {OTHER: False, FOLDER: True}
    with pytest.raises(BenchError) as raised:
        require_folders(store, [FOLDER, OTHER])
    assert store.url(OTHER) in str(raised.value) and store.url(FOLDER) not in str(raised.value)
    with pytest.raises(BenchError, match=rf"data/{OTHER} not found \(HTTP 404"):
        store.download(OTHER, tmp_path / "hf_data")
    assert not (tmp_path / "hf_data" / "data" / OTHER).exists()


def test_unknown_repo_is_a_clear_error_for_checks(hub, hf_env):
    store = store_for(hub, dev_repo="nobody/nothing")
    with pytest.raises(BenchError, match=r"nobody/nothing: link check .* HTTP 404"):
        store.exists([FOLDER])


def test_failed_pull_leaves_previous_copy_and_no_partial_folder(hub, hf_env, tmp_path):
    store = store_for(hub)
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.upload(run)
    dest_root = tmp_path / "hf_data"
    old = store.download(FOLDER, dest_root)
    (old / "marker").write_text("previous complete pull")
    hub.inject(r"GET .*/resolve/.*_net_model\.pt", 404, times=None)
    with pytest.raises(BenchError, match=r"download data/.*_net_model\.pt failed: HTTP 404"):
        store.download(FOLDER, dest_root)
    assert (old / "marker").read_text() == "previous complete pull"  # untouched
    assert sorted(p.name for p in (dest_root / "data").iterdir()) == [FOLDER]  # no scratch

    fresh_root = tmp_path / "fresh"
    with pytest.raises(BenchError):
        store.download(FOLDER, fresh_root)
    assert [p.name for p in (fresh_root / "data").iterdir()] == []


def test_truncated_transfer_resumes_with_a_range_request(hub, hf_env, tmp_path):
    store = store_for(hub)
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.upload(run)
    hub.inject(r"GET .*/resolve/.*_net_model\.pt", kind="truncate", times=1)
    dest = store.download(FOLDER, tmp_path / "hf_data")
    assert tree_bytes(dest) == expected_files(run)
    # The client retried the cut transfer on its own (with a Range request once bytes arrived).
    assert len(hub.matching(r"GET .*/resolve/.*_net_model\.pt")) == 2


KILLED_PULL = """
import sys
from huggingface_hub import constants
constants.HF_HUB_DISABLE_XET = True
from slm_bench.stores import make_store
store = make_store("hf", {"endpoint": sys.argv[1], "max_workers": 1})
store.download(sys.argv[2], sys.argv[3])
"""


def test_killed_pull_leaves_no_complete_looking_folder(hub, hf_env, tmp_path):
    store = store_for(hub)
    store.upload(make_run_folder(tmp_path / "runs", FOLDER))
    dest_root = tmp_path / "hf_data"
    # The model file's body stalls half-way; the pulling process is then killed outright.
    hub.inject(r"GET .*/resolve/.*_net_model\.pt", kind="stall", times=None)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_PULL, hub.url, FOLDER, str(dest_root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not hub.matching(r"GET .*/resolve/.*_net_model\.pt"):
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the pull never reached the stalled file"
            time.sleep(0.05)
        time.sleep(0.2)  # let it write the first half
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        hub.release()
    data = dest_root / "data"
    assert not (data / FOLDER).exists()
    assert all(p.name.startswith(".") for p in data.iterdir())  # only hidden scratch remains


def test_token_never_leaks(hub, hf_env, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    store = store_for(hub)
    run = make_run_folder(tmp_path / "runs", FOLDER)
    store.upload(run)
    store.exists([FOLDER, OTHER])
    dest = store.download(FOLDER, tmp_path / "hf_data")
    messages = []
    # A server that echoes the token in its error body must not get it into our message.
    hub.inject(r"paths-info", 403, times=None, message=f"bad credentials {CANARY_TOKEN}")
    hub.inject(r"POST .*/commit/", 500, times=None)
    hub.inject(r"GET .*/resolve/", 404, times=None, message=f"no such file {CANARY_TOKEN}")
    for action in (
        lambda: store.exists([FOLDER]),
        lambda: store.upload(make_run_folder(tmp_path / "b", OTHER)),
        lambda: store.download(FOLDER, tmp_path / "x"),
    ):
        with pytest.raises(BenchError) as raised:
            action()
        messages.append(str(raised.value))
        # The library's error holds the request and its Authorization header: not reachable.
        assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert "bad credentials ***" in messages[0]
    # The token was really in use (the server saw it; LFS content uploads carry none) ...
    api_calls = [r for r in hub.requests if "/lfs-objects/" not in r.path]
    assert {r.authorization for r in api_calls} == {f"Bearer {CANARY_TOKEN}"}
    # ... and it appears nowhere we write or show.
    captured = capsys.readouterr()
    for text in [*messages, captured.out, captured.err, caplog.text]:
        assert CANARY_TOKEN not in text
    for path in (tmp_path / "hf_data").rglob("*"):
        assert path.is_dir() or CANARY_TOKEN.encode() not in path.read_bytes()
    assert dest.is_dir()


def test_upload_needs_a_token_and_says_how_to_provide_it(hub, hf_env, tmp_path, monkeypatch):
    store = store_for(hub)
    store.upload(make_run_folder(tmp_path / "a", FOLDER))
    monkeypatch.delenv("HF_TOKEN")
    other = make_run_folder(tmp_path / "b", OTHER)
    with pytest.raises(BenchError, match=r"set HF_TOKEN or put HF_TOKEN=\.\.\. in \.env"):
        store.upload(other)
    hub.clear_log()
    assert store.exists([FOLDER]) == {FOLDER: True}  # reads need no token
    assert hub.requests[-1].authorization is None
    (tmp_path / ".env").write_text(
        "# secrets\nexport HF_TOKEN='hf_fromDotEnvFile000000000000000000000'\n"
    )
    store.upload(other)
    assert hub.requests[-1].authorization == "Bearer hf_fromDotEnvFile000000000000000000000"


# -- olah: a real Hub mirror serving git repos offline -----------------------------------------


def test_pull_and_link_checks_through_olah(olah_mirror, hf_env, tmp_path):
    url, mirrors = olah_mirror
    repo_id = "SLM-Lab/benchmark-dev"
    run = make_run_folder(tmp_path / "runs", FOLDER)
    other = make_run_folder(tmp_path / "runs", OTHER, seed=1)
    files = {f"data/{FOLDER}/{k}": v for k, v in expected_files(run).items()}
    files |= {f"data/{OTHER}/{k}": v for k, v in expected_files(other).items()}
    files["README.md"] = b"# runs\n"
    if not (mirrors / "datasets" / repo_id).exists():
        git_dataset_repo(mirrors, repo_id, files)
    store = make_store("hf", fast_options(url))

    assert store.exists([FOLDER, OTHER, "missing_2026_01_01_000000"]) == {
        FOLDER: True,
        OTHER: True,
        "missing_2026_01_01_000000": False,
    }
    dest = store.download(FOLDER, tmp_path / "hf_data")
    assert tree_bytes(dest) == expected_files(run)
    assert sorted(p.name for p in dest.parent.iterdir()) == [FOLDER]
    with pytest.raises(BenchError, match=r"data/missing_2026_01_01_000000 not found"):
        store.download("missing_2026_01_01_000000", tmp_path / "hf_data")
