"""The Hugging Face store: run folders in a dataset repo on the Hub, through huggingface_hub.

Cost and rate limits drive the design: a pull lists only ``data/FOLDER`` and fetches only its
files (never the whole repo's tree, so its cost does not grow with the repo), link checks ask
for many folders in one ``paths-info`` call, and uploads first compare file hashes with the
repo's listing so a repeat sends nothing. Calls that huggingface_hub does not retry itself
(create_repo, commits, paths-info) go through a bounded backoff that honours ``Retry-After``.
Every failure becomes one BenchError line naming the repo, the path and the HTTP status, with
any token masked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from slm_bench.atomic import staged_dir
from slm_bench.config_source import DEFAULT_SOURCE, ConfigSource
from slm_bench.errors import BenchError
from slm_bench.formats.naming import dataset_url
from slm_bench.stores import (
    DEFAULT_DEV_REPO,
    OPTIMIZER_GLOB,
    check_folder_name,
    check_path_in_repo,
    local_files,
)
from slm_bench.stores.secrets import HOW_TO_PROVIDE, hf_token, redact

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_TYPE = "dataset"
REVISION = "main"
# The statuses huggingface_hub's own backoff treats as transient.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (httpx2.TransportError,)
# Failures that come from the remote side (or the library talking to it), not from our code.
REMOTE_ERRORS = (HfHubHTTPError, httpx2.HTTPError, OSError, ValueError, RuntimeError)
PATHS_PER_CALL = 500  # huggingface_hub batches its own paths-info calls by 500


@dataclass
class HfStore:
    repo: str = DEFAULT_DEV_REPO
    endpoint: str = DEFAULT_ENDPOINT
    env_file: Path = Path(".env")
    max_retries: int = 5
    backoff_s: float = 1.0
    max_wait_s: float = 60.0
    max_workers: int = 4
    name: str = "hf"

    @classmethod
    def from_options(
        cls, options: dict, repo: str | None = None, source: ConfigSource = DEFAULT_SOURCE
    ) -> HfStore:
        """Options: dev_repo, endpoint (default HF_ENDPOINT or huggingface.co), env_file,
        max_retries, backoff_s, max_wait_s, max_workers; ``repo`` (the public repo) overrides
        dev_repo. ``source`` names the config in error lines."""
        endpoint = options.get("endpoint") or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        store = cls(
            repo=repo or options.get("dev_repo", DEFAULT_DEV_REPO),
            endpoint=str(endpoint).rstrip("/"),
            env_file=Path(options.get("env_file", ".env")),
            max_retries=_number(options, "max_retries", 5, int, source),
            backoff_s=_number(options, "backoff_s", 1.0, float, source),
            max_wait_s=_number(options, "max_wait_s", 60.0, float, source),
            max_workers=max(1, _number(options, "max_workers", 4, int, source)),
        )
        if "/" not in store.repo:
            where = source.where("hf", "dev_repo" if repo is None else "public_repo")
            raise BenchError(f"{where}: {store.repo!r} is not a repo id (expected owner/name)")
        if not store.endpoint.startswith(("http://", "https://")):
            where = source.where("hf", "endpoint") if options.get("endpoint") else "HF_ENDPOINT"
            raise BenchError(f"{where}: {store.endpoint!r} is not an http(s) URL")
        return store

    # -- the Store protocol -------------------------------------------------------------------

    def url(self, folder: str) -> str:
        return dataset_url(self.repo, folder, self.endpoint)

    def link(self, folder: str, doc_dir: Path) -> str:
        """The Hub URL, from any document (SLM-Lab's tables link the Hub so)."""
        return self.url(folder)

    def repo_link(self, folder: str, path_in_repo: str) -> str:
        return self.url(folder)

    def upload(self, folder_path: Path) -> None:
        folder_path = Path(folder_path)
        if not folder_path.is_dir():
            raise BenchError(f"{folder_path}: run folder to upload does not exist")
        folder = check_folder_name(self.repo, folder_path.name)
        if not local_files(folder_path, ignore=[OPTIMIZER_GLOB]):
            raise BenchError(f"{folder_path}: run folder to upload has no files")
        self._upload(folder_path, f"data/{folder}", ignore=[OPTIMIZER_GLOB])

    def upload_tree(self, local_dir: Path, path_in_repo: str) -> int:
        local_dir = Path(local_dir)
        if not local_dir.is_dir():
            raise BenchError(f"{local_dir}: folder to upload does not exist")
        return self._upload(local_dir, check_path_in_repo(self.repo, path_in_repo))

    def upload_file(self, local: Path, path_in_repo: str) -> int:
        local = Path(local)
        if not local.is_file():
            raise BenchError(f"{local}: file to upload does not exist")
        path_in_repo = check_path_in_repo(self.repo, path_in_repo)
        api = self._api(token_required=True, action=f"upload of {path_in_repo}")
        remote = self._paths_info(api, "upload", [path_in_repo], create_missing=True)
        if _same_content(local, remote.get(path_in_repo)):
            return 0
        self._commit(api, {path_in_repo: local}, f"Upload {path_in_repo}")
        return 1

    def download(self, folder: str, dest_root: Path) -> Path:
        prefix = f"data/{check_folder_name(self.repo, folder)}"
        api = self._api(token_required=False)
        try:
            files = [path for path, _ in self._list_files(api, "download", prefix)]
            status: int | None = 404
        except RepositoryNotFoundError as error:  # some mirrors answer so for a missing path
            files, status = [], _status(error)
        if not files:
            raise BenchError(
                f"store hf {self.repo}: {prefix} not found (HTTP {status}, {self.url(folder)})"
            )
        dest = Path(dest_root) / "data" / folder
        # Files land in a hidden scratch folder; only a complete pull is renamed into place.
        with (
            staged_dir(dest) as staged,
            tempfile.TemporaryDirectory(
                dir=dest.parent, prefix=f".{folder}.", suffix=".download"
            ) as scratch,
        ):
            self._fetch_all(api, files, Path(scratch))
            for child in (Path(scratch) / prefix).iterdir():
                os.replace(child, staged / child.name)
        return dest

    def exists(self, folders: list[str]) -> dict[str, bool]:
        if not folders:
            return {}
        paths = [f"data/{check_folder_name(self.repo, folder)}" for folder in folders]
        api = self._api(token_required=False)
        found = self._paths_info(api, "link check", paths)
        return {
            folder: isinstance(found.get(path), RepoFolder)
            for folder, path in zip(folders, paths, strict=True)
        }

    # -- huggingface_hub calls ------------------------------------------------------------------

    def _api(self, token_required: bool, action: str = "") -> HfApi:
        try:
            token = hf_token(required=token_required, env_file=self.env_file)
        except BenchError:
            raise BenchError(
                f"store hf {self.repo}: {action} needs a Hugging Face token: {HOW_TO_PROVIDE}"
            ) from None
        return HfApi(endpoint=self.endpoint, token=token)

    def _paths_info(
        self, api: HfApi, action: str, paths: list[str], create_missing: bool = False
    ) -> dict[str, RepoFile | RepoFolder]:
        """Entries for those of ``paths`` that exist, PATHS_PER_CALL paths per call."""
        found: dict[str, RepoFile | RepoFolder] = {}
        for start in range(0, len(paths), PATHS_PER_CALL):
            chunk = paths[start : start + PATHS_PER_CALL]
            target = chunk[0] if len(chunk) == 1 else f"{len(chunk)} paths under data/"

            def call(chunk: list[str] = chunk) -> list[RepoFile | RepoFolder]:
                return api.get_paths_info(self.repo, chunk, repo_type=REPO_TYPE, revision=REVISION)

            try:
                entries = self._call(action, target, call, passthrough=(RepositoryNotFoundError,))
            except RepositoryNotFoundError as error:
                entries, message = None, self._describe(action, target, error, 1)
            if entries is None:
                if not create_missing:
                    raise BenchError(message)
                self._create_repo(api)
                return {}
            found.update((entry.path, entry) for entry in entries)
        return found

    def _list_files(self, api: HfApi, action: str, prefix: str) -> list[tuple[str, RepoFile]]:
        """``(path, entry)`` of every file under ``prefix``; empty when it does not exist.

        list_repo_tree retries 429/5xx itself, so no second backoff is stacked on it.
        """

        def call() -> list[tuple[str, RepoFile]]:
            try:
                entries = api.list_repo_tree(
                    self.repo, path_in_repo=prefix, recursive=True, repo_type=REPO_TYPE
                )
                return [(e.path, e) for e in entries if isinstance(e, RepoFile)]
            except RemoteEntryNotFoundError:
                return []

        return self._call(action, prefix, call, retry=False, passthrough=(RepositoryNotFoundError,))

    def _create_repo(self, api: HfApi) -> None:
        self._call(
            "create repo",
            self.repo,
            lambda: api.create_repo(self.repo, repo_type=REPO_TYPE, exist_ok=True),
        )

    def _upload(self, local_dir: Path, prefix: str, ignore: list[str] | None = None) -> int:
        """Commit the files of ``local_dir`` the repo does not already hold under ``prefix``."""
        api = self._api(token_required=True, action=f"upload of {prefix}")
        files = local_files(local_dir, ignore=ignore or [])
        try:
            remote = dict(self._list_files(api, "upload", prefix))
        except RepositoryNotFoundError:
            self._create_repo(api)
            remote = {}
        changed = {
            f"{prefix}/{rel}": path
            for rel, path in files.items()
            if not _same_content(path, remote.get(f"{prefix}/{rel}"))
        }
        if changed:
            self._commit(api, changed, f"Upload {prefix}", target=prefix)
        return len(changed)

    def _commit(
        self, api: HfApi, files: dict[str, Path], message: str, target: str | None = None
    ) -> None:
        if target is None or len(files) == 1:
            target = next(iter(files))
        elif len(files) > 1:
            target = f"{target} ({len(files)} files)"

        def call() -> None:
            # Fresh operations per attempt: the library marks them as used after a commit.
            operations = [
                CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local))
                for path, local in files.items()
            ]
            api.create_commit(
                self.repo,
                operations=operations,
                commit_message=message,
                repo_type=REPO_TYPE,
                revision=REVISION,
            )

        self._call("upload", target, call)

    def _fetch_all(self, api: HfApi, files: list[str], local_dir: Path) -> None:
        """Download ``files`` into ``local_dir`` (hf_hub_download retries 429/5xx itself)."""

        def fetch(path: str) -> None:
            self._call(
                "download",
                path,
                lambda: hf_hub_download(
                    self.repo,
                    filename=path,
                    repo_type=REPO_TYPE,
                    revision=REVISION,
                    local_dir=local_dir,
                    endpoint=self.endpoint,
                    token=api.token,
                ),
                retry=False,
            )

        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(files))) as pool:
            futures = [pool.submit(fetch, path) for path in files]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    # -- bounded backoff and one-line errors -------------------------------------------------------

    def _call(
        self,
        action: str,
        target: str,
        fn: Callable[[], T],
        retry: bool = True,
        passthrough: tuple[type[BaseException], ...] = (),
    ) -> T:
        """Run ``fn``, retrying transient failures with bounded backoff; remote failures become
        one BenchError line. ``passthrough`` errors are re-raised for the caller to handle."""
        tries = 0
        while True:
            tries += 1
            try:
                return fn()
            except BenchError:
                raise
            except passthrough:
                raise
            except REMOTE_ERRORS as error:
                if retry and tries <= self.max_retries and _is_transient(error):
                    time.sleep(self._wait(tries, error))
                    continue
                message = self._describe(action, target, error, tries)
            # Raised outside the handler: the library's error (whose request object holds the
            # Authorization header) is not even reachable as __context__.
            raise BenchError(message)

    def _wait(self, tries: int, error: BaseException) -> float:
        """Exponential backoff, at least the server's ``Retry-After``, at most ``max_wait_s``."""
        wait = self.backoff_s * 2 ** (tries - 1)
        response = getattr(error, "response", None)
        retry_after = response.headers.get("Retry-After") if response is not None else None
        # An HTTP-date Retry-After is not a number: keep the exponential wait then.
        if retry_after is not None and retry_after.replace(".", "", 1).isdigit():
            wait = max(wait, float(retry_after))
        return min(wait, self.max_wait_s)

    def _describe(self, action: str, target: str, error: BaseException, tries: int) -> str:
        status = _status(error)
        after = f" after {tries} tries" if tries > 1 else ""
        if status is None:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            cause = f"{type(error).__name__}{': ' + detail[:200] if detail else ''}"
            return redact(f"store hf {self.repo}: {action} {target} failed{after}: {cause}")
        response = error.response  # type: ignore[attr-defined]
        reason = getattr(response, "reason_phrase", "") or ""
        request = getattr(response, "_request", None)  # unset on hand-built responses
        where = f" ({request.method} {request.url.path})" if request is not None else ""
        server = (getattr(error, "server_message", None) or "").strip().splitlines()
        said = f": {server[0][:200]}" if server else ""
        return redact(
            f"store hf {self.repo}: {action} {target} failed{after}: "
            f"HTTP {status} {reason}{where}{said}"
        )


_Number = TypeVar("_Number", int, float)


def _number(
    options: dict,
    key: str,
    default: float,
    kind: Callable[[float], _Number],
    source: ConfigSource,
) -> _Number:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        where = source.where("hf", key)
        raise BenchError(f"{where}: expected a non-negative number, got {value!r}")
    return kind(value)


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _is_transient(error: BaseException) -> bool:
    status = _status(error)
    return status in RETRY_STATUSES if status is not None else isinstance(error, TRANSIENT_ERRORS)


def _same_content(local: Path, remote: RepoFile | RepoFolder | None) -> bool:
    """Whether the repo's file ``remote`` already holds ``local``'s bytes (size, then hash)."""
    if not isinstance(remote, RepoFile):
        return False
    size = local.stat().st_size
    if remote.lfs is not None:
        return remote.lfs.size == size and _digest(local, hashlib.sha256()) == remote.lfs.sha256
    if remote.size != size:
        return False
    return _digest(local, hashlib.sha1(b"blob %d\0" % size)) == remote.blob_id


def _digest(path: Path, digest: hashlib._Hash) -> str:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
