"""What pulling one run folder costs against a dataset repo of growing size.

Runs huggingface_hub's real client against the Hub-compatible test server (tests/hub_server.py,
Link-header pagination at the Hub's 1000 entries per page) on 127.0.0.1, for repos of 1, 50 and
200 run folders (a few files each), and prints requests and bytes side by side for:

- ``store pull``: HfStore.download (lists ``data/FOLDER`` only, fetches its files);
- ``snapshot --include``: ``snapshot_download(allow_patterns=["data/FOLDER/*"])``, what
  ``hf download --include`` does (it lists the whole repo tree first);
- ``whole repo``: ``snapshot_download`` of everything.

A second table compares re-uploading an unchanged folder: HfStore's hash comparison against
``upload_folder``'s own no-op detection.

Usage: python bench/hf_pull.py [--sizes 1,50,200] [--files 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="hf-pull-bench-"))
# huggingface_hub reads these at import time.
os.environ.update(
    HF_HUB_DISABLE_XET="1",
    HF_HOME=str(WORK / "hf_home"),
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    HF_TOKEN="hf_bench_token_not_secret_0000",
)
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from hub_server import HubServer  # noqa: E402
from huggingface_hub import HfApi, snapshot_download  # noqa: E402
from huggingface_hub.utils import logging as hf_logging  # noqa: E402

from slm_bench.stores.hf import HfStore  # noqa: E402


def run_folder_files(folder: str, files: int, seed: int) -> dict[str, bytes]:
    """A run folder shaped like SLM-Lab's: metrics json, log, spec, model weights, graphs."""
    names = [
        (f"info/{folder}_t0_trial_metrics.json", 1200),
        (f"log/{folder}_t0_s0.log", 4000),
        (f"{folder}_spec.json", 2500),
        (f"model/{folder}_t0_s0_net_model.pt", 8000),
        (f"graph/{folder}_t0_trial_graph.png", 3000),
    ]
    while len(names) < files:
        names.append((f"graph/{folder}_extra_{len(names)}.png", 2000))
    return {
        f"data/{folder}/{name}": bytes((seed + i) % 251 for i in range(size))
        for name, size in names[:files]
    }


def measure(hub: HubServer, action) -> tuple[int, int, int, float]:
    hub.clear_log()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return hub.count(), hub.bytes_out(), hub.bytes_in(), seconds


def bench_repo(hub: HubServer, size: int, files_per_folder: int) -> tuple[list, list]:
    """Pull and re-upload one folder of a repo with ``size`` run folders; returns table rows."""
    repo = f"bench/runs-{size}"
    folders = [f"ppo_run{i:04d}_2026_01_01_000000" for i in range(size)]
    files: dict[str, bytes] = {}
    for seed, folder in enumerate(folders):
        files |= run_folder_files(folder, files_per_folder, seed)
    hub.seed(repo, files)
    commits = hub.commit_count(repo)
    target = folders[size // 2]
    store = HfStore(repo=repo, endpoint=hub.url)
    api = HfApi(endpoint=hub.url)
    out = WORK / f"out-{size}"
    pulled = out / "store" / "data" / target

    def snapshot(name: str, patterns: list[str] | None) -> None:
        snapshot_download(
            repo,
            repo_type="dataset",
            allow_patterns=patterns,
            local_dir=out / name,
            endpoint=hub.url,
        )

    def upload_folder() -> None:
        api.upload_folder(
            repo_id=repo, folder_path=pulled, path_in_repo=f"data/{target}", repo_type="dataset"
        )

    pulls = [
        (size, "store pull", measure(hub, lambda: store.download(target, out / "store"))),
        (size, "snapshot --include", measure(hub, lambda: snapshot("b", [f"data/{target}/*"]))),
        (size, "whole repo", measure(hub, lambda: snapshot("c", None))),
    ]
    uploads = [
        (size, "store hash compare", measure(hub, lambda: store.upload(pulled))),
        (size, "upload_folder no-op", measure(hub, upload_folder)),
    ]
    if hub.commit_count(repo) != commits:
        raise SystemExit(f"{repo}: an unchanged re-upload made a commit")
    return pulls, uploads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,50,200", help="repo sizes in run folders")
    parser.add_argument("--files", type=int, default=5, help="files per run folder")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()  # the no-op upload warns "No files have been modified"

    pulls: list = []
    uploads: list = []
    with HubServer(WORK / "repos") as hub:
        for size in (int(size) for size in args.sizes.split(",")):
            repo_pulls, repo_uploads = bench_repo(hub, size, args.files)
            pulls += repo_pulls
            uploads += repo_uploads

    columns = ("folders", "method", "requests", "bytes down", "bytes up", "ms")
    header = "{:>7}  {:<20} {:>8} {:>11} {:>9} {:>7}".format(*columns)
    row = "{:>7}  {:<20} {:>8} {:>11,} {:>9,} {:>7.0f}"
    print(f"Pull one folder ({args.files} files) from a repo of N run folders")
    print(header)
    for size, method, (count, down, up, seconds) in pulls:
        print(row.format(size, method, count, down, up, seconds * 1000))
    print()
    print("Re-upload an unchanged folder (no commit is made either way)")
    print(header)
    for size, method, (count, down, up, seconds) in uploads:
        print(row.format(size, method, count, down, up, seconds * 1000))
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
