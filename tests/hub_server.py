"""A small Hugging Face Hub-compatible HTTP server for tests and benchmarks.

No Hub server runs offline, so this stands in for ``https://huggingface.co``: it speaks enough of
the Hub's HTTP API for huggingface_hub's real client (2.x, with ``HF_HUB_DISABLE_XET=1`` so large
files go through plain LFS instead of Xet) to create repos, commit to them, list them and download
from them. Repos live in a temp folder. The response shapes were checked against the client code
of huggingface_hub 2.4.0 (``hf_api.py``, ``_commit_api.py``, ``lfs.py``, ``file_download.py``).

Endpoints honoured (``{kind}`` is ``datasets`` or ``models``; repo ids are ``org/name``):

- ``POST /api/repos/create``: create_repo; 409 with the repo url when it exists (``exist_ok``).
- ``POST /api/validate-yaml``: README.md metadata check (YAML front matter must parse to a mapping).
- ``GET /api/{kind}/{repo}`` and ``GET /api/{kind}/{repo}/revision/{rev}``: repo_info (``sha``,
  ``siblings`` listing every file, as the Hub does; sizes and blob ids with ``?blobs=true``).
- ``POST /api/{kind}/{repo}/preupload/{rev}``: upload mode per file (``lfs`` for binary samples or
  files of ``lfs_threshold`` bytes and more) and the remote ``oid``, which the client uses to skip
  unchanged files.
- ``POST /{kind}/{repo}.git/info/lfs/objects/batch`` (``datasets/`` prefix only for datasets) and
  ``PUT /lfs-objects/{kind}/{repo}/{sha256}``: LFS basic transfer; objects the repo already has
  get no upload action.
- ``POST /api/{kind}/{repo}/commit/{rev}``: NDJSON commit (``header``, ``file``, ``lfsFile``,
  ``deletedFile``, ``deletedFolder``); ``parentCommit`` must be the head (else 412).
- ``GET /api/{kind}/{repo}/tree/{rev}[/{path}]``: list_repo_tree, ``recursive``, paginated with a
  ``Link: <...>; rel="next"`` header (``tree_page_size`` entries per page, 1000 like the Hub).
- ``POST /api/{kind}/{repo}/paths-info/{rev}``: get_paths_info (form-encoded ``paths``); missing
  paths are left out.
- ``GET /api/{kind}/{repo}/commits/{rev}``: list_repo_commits.
- ``HEAD|GET /{kind}/{repo}/resolve/{rev}/{path}`` (no ``models/`` prefix for models): file
  download with ``ETag``, ``X-Repo-Commit``, ``Content-Length``, LFS ``X-Linked-Etag`` /
  ``X-Linked-Size``, and ``Range`` requests (206) so interrupted downloads resume.

Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``)
and a JSON ``{"error": ...}`` body. Faults can be injected for the next N requests (or forever)
whose ``"METHOD /path?query"`` matches a regex: an HTTP status (429 with ``Retry-After``, 5xx,
404), a body cut short with the connection closed (``truncate``), or a body that stalls until
:meth:`HubServer.release` (``stall``). Every request is logged (method, path, status, bytes in and
out, the Authorization header) for assertions and benchmarks. Not implemented: auth checks,
branches other than those created by commits, pull requests, Xet, multipart LFS, model/space
creation options.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores text files of 10 MB and more in LFS
TREE_PAGE_SIZE = 1000  # the Hub's page size for non-expanded tree listings


def git_blob_oid(content: bytes) -> str:
    """The git blob sha1 the Hub reports as ``oid`` for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


@dataclass
class RequestRecord:
    method: str
    path: str  # raw path with query string
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    authorization: str | None = None

    @property
    def line(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    pattern: re.Pattern[str]
    status: int
    remaining: int | None  # None: every matching request, forever
    retry_after: str | None
    kind: str  # "status", "truncate" or "stall"
    message: str | None = None  # error text for "status" faults

    def take(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True


@dataclass
class HubError(Exception):
    status: int
    message: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class HubServer:
    """A Hub-compatible server on 127.0.0.1 (free port) storing repos under ``root``."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        tree_page_size: int = TREE_PAGE_SIZE,
        lfs_threshold: int = LFS_THRESHOLD,
    ):
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hub-"))
        self.tree_page_size = tree_page_size
        self.lfs_threshold = lfs_threshold
        self.requests: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> HubServer:
        handler = type("BoundHubHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- faults and the request log ------------------------------------------------------------

    def inject(
        self,
        pattern: str,
        status: int = 429,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        kind: str = "status",
        message: str | None = None,
    ) -> Fault:
        """Make the next ``times`` requests (None: all) matching ``pattern`` fail."""
        if kind not in ("status", "truncate", "stall"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(
            re.compile(pattern),
            status,
            times,
            None if retry_after is None else f"{retry_after:g}",
            kind,
            message,
        )
        with self._lock:
            if kind == "stall":
                self._release.clear()
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
        self.release()

    def release(self) -> None:
        """Let stalled responses go on (and fail: the stall fault closes the connection)."""
        self._release.set()

    def _fault_for(self, line: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.pattern.search(line) and fault.take():
                    return fault
        return None

    def matching(self, pattern: str | None = None) -> list[RequestRecord]:
        with self._lock:
            records = list(self.requests)
        if pattern is None:
            return records
        regex = re.compile(pattern)
        return [r for r in records if regex.search(r.line)]

    def count(self, pattern: str | None = None) -> int:
        return len(self.matching(pattern))

    def bytes_out(self, pattern: str | None = None) -> int:
        return sum(r.bytes_out for r in self.matching(pattern))

    def bytes_in(self, pattern: str | None = None) -> int:
        return sum(r.bytes_in for r in self.matching(pattern))

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- repo storage ----------------------------------------------------------------------------

    def _repo_dir(self, kind: str, repo_id: str) -> Path:
        return self.root / "repos" / kind / repo_id

    def _object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def _store_object(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        path = self._object_path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(content)
            tmp.replace(path)
        return sha256

    def wants_lfs(self, sample: bytes, size: int) -> bool:
        """The upload mode rule: binary content (a NUL in the first 512 bytes) or a large file."""
        return size >= self.lfs_threshold or b"\0" in sample[:512]

    def _has_lfs(self, kind: str, repo_id: str, sha256: str) -> bool:
        """LFS objects are kept per repo, as on the Hub: another repo's copy does not count."""
        return (self._repo_dir(kind, repo_id) / "lfs" / sha256).exists()

    def _add_lfs(self, kind: str, repo_id: str, content: bytes) -> str:
        sha256 = self._store_object(content)
        marker = self._repo_dir(kind, repo_id) / "lfs" / sha256
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return sha256

    def _refs(self, kind: str, repo_id: str) -> dict[str, str]:
        path = self._repo_dir(kind, repo_id) / "refs.json"
        if not path.exists():
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return json.loads(path.read_text())

    def _commit(self, kind: str, repo_id: str, commit_id: str) -> dict:
        return json.loads(
            (self._repo_dir(kind, repo_id) / "commits" / f"{commit_id}.json").read_text()
        )

    def _resolve(self, kind: str, repo_id: str, revision: str) -> dict:
        refs = self._refs(kind, repo_id)
        commit_id = refs.get(revision, revision)
        path = self._repo_dir(kind, repo_id) / "commits" / f"{commit_id}.json"
        if not re.fullmatch(r"[0-9a-f]{40}", commit_id) or not path.exists():
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self._commit(kind, repo_id, commit_id)

    def _write_commit(
        self, kind: str, repo_id: str, parent: str | None, files: dict, title: str, message: str
    ) -> str:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        body = json.dumps([parent, files, title, message, now, time.monotonic_ns()], sort_keys=True)
        commit_id = hashlib.sha1(body.encode()).hexdigest()
        record = {
            "id": commit_id,
            "parent": parent,
            "title": title,
            "message": message,
            "date": now,
            "files": files,
        }
        repo_dir = self._repo_dir(kind, repo_id)
        (repo_dir / "commits").mkdir(parents=True, exist_ok=True)
        (repo_dir / "commits" / f"{commit_id}.json").write_text(json.dumps(record))
        refs_path = repo_dir / "refs.json"
        refs = json.loads(refs_path.read_text()) if refs_path.exists() else {}
        refs["main"] = commit_id
        tmp = refs_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(refs))
        tmp.replace(refs_path)
        return commit_id

    def _file_entry(self, content: bytes, as_lfs: bool) -> dict:
        sha256 = self._store_object(content)
        if as_lfs:
            pointer = lfs_pointer(sha256, len(content))
            return {
                "sha256": sha256,
                "size": len(content),
                "oid": git_blob_oid(pointer),
                "lfs": True,
            }
        return {"sha256": sha256, "size": len(content), "oid": git_blob_oid(content), "lfs": False}

    def create_repo(self, repo_id: str, repo_type: str = "dataset") -> bool:
        """Create ``repo_id`` with the Hub's initial commit; False if it already exists."""
        kind = f"{repo_type}s"
        with self._lock:
            if (self._repo_dir(kind, repo_id) / "refs.json").exists():
                return False
            attributes = b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
            files = {".gitattributes": self._file_entry(attributes, as_lfs=False)}
            self._write_commit(kind, repo_id, None, files, "initial commit", "")
            return True

    def head(self, repo_id: str, repo_type: str = "dataset") -> str:
        return self._refs(f"{repo_type}s", repo_id)["main"]

    def commit_count(self, repo_id: str, repo_type: str = "dataset") -> int:
        """Commits on ``main`` (the initial commit included)."""
        kind = f"{repo_type}s"
        with self._lock:
            commit, count = self._resolve(kind, repo_id, "main"), 1
            while commit["parent"]:
                commit, count = self._commit(kind, repo_id, commit["parent"]), count + 1
            return count

    def files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        """Every file at the head of ``main``: path -> content."""
        with self._lock:
            commit = self._resolve(f"{repo_type}s", repo_id, "main")
            return {
                path: self._object_path(entry["sha256"]).read_bytes()
                for path, entry in commit["files"].items()
            }

    def seed(self, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset") -> str:
        """Create ``repo_id`` if needed and commit ``files`` directly (fixtures, benchmarks)."""
        kind = f"{repo_type}s"
        self.create_repo(repo_id, repo_type)
        with self._lock:
            head = self._resolve(kind, repo_id, "main")
            tree = dict(head["files"])
            for path, content in files.items():
                as_lfs = self.wants_lfs(content[:512], len(content))
                if as_lfs:
                    self._add_lfs(kind, repo_id, content)
                tree[path] = self._file_entry(content, as_lfs=as_lfs)
            return self._write_commit(kind, repo_id, head["id"], tree, "seed", "")

    # -- tree helpers ------------------------------------------------------------------------------

    @staticmethod
    def _dirs(files: dict) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}

    def _entry(self, path: str, files: dict) -> dict | None:
        if path in files:
            f = files[path]
            entry = {"type": "file", "oid": f["oid"], "size": f["size"], "path": path}
            if f["lfs"]:
                pointer = lfs_pointer(f["sha256"], f["size"])
                entry["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": len(pointer)}
            return entry
        prefix = path + "/"
        children = sorted(p for p in files if p.startswith(prefix))
        if not children:
            return None
        tree_oid = hashlib.sha1("".join(files[c]["oid"] + c for c in children).encode()).hexdigest()
        return {"type": "directory", "oid": tree_oid, "size": 0, "path": path}

    def _list_tree(self, files: dict, path: str, recursive: bool) -> list[dict]:
        prefix = f"{path}/" if path else ""
        if path and self._entry(path, files) is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        names = sorted(p for p in set(files) | self._dirs(files) if p.startswith(prefix))
        if not recursive:
            names = [p for p in names if "/" not in p[len(prefix) :]]
        return [entry for p in names if (entry := self._entry(p, files)) is not None]


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "hub-server"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep tests quiet
        pass

    # Every method goes through one dispatcher so faults and the log see every request.
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        record = RequestRecord(
            self.command, self.path, authorization=self.headers.get("Authorization")
        )
        body = self._read_body()
        record.bytes_in = len(body)
        with self.hub._lock:
            self.hub.requests.append(record)
        fault = self.hub._fault_for(record.line)
        try:
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                message = fault.message or f"injected fault {fault.status}"
                raise HubError(fault.status, message, headers=headers)
            status, headers, payload = self._route(body)
        except HubError as error:
            headers = {"Content-Type": "application/json", **error.headers}
            if error.code:
                headers["X-Error-Code"] = error.code
            status, payload = error.status, json.dumps({"error": error.message}).encode()
        if fault is not None and fault.kind in ("truncate", "stall") and status < 300:
            self._send_cut(record, status, headers, payload, stall=fault.kind == "stall")
            return
        self._send(record, status, headers, payload)

    def _send(self, record: RequestRecord, status: int, headers: dict, payload: bytes) -> None:
        # The record is complete before the client can see the response (no race with readers).
        record.status = status
        record.bytes_out = 0 if self.command == "HEAD" else len(payload)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_cut(
        self, record: RequestRecord, status: int, headers: dict, payload: bytes, stall: bool
    ) -> None:
        """Announce the full body, send half of it, then (after a stall) drop the connection."""
        half = b"" if self.command == "HEAD" else payload[: len(payload) // 2]
        record.status, record.bytes_out = status, len(half)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if half:
            self.wfile.write(half)
            self.wfile.flush()
            if stall:
                self.hub._release.wait()
        self.close_connection = True
        self.connection.shutdown(2)

    # -- routing -----------------------------------------------------------------------------------

    def _route(self, body: bytes) -> tuple[int, dict, bytes]:
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        method = self.command
        repo = r"(?P<kind>datasets|models|spaces)/(?P<repo>[^/]+/[^/]+?)"
        routes = [
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("GET", rf"/api/{repo}(?:/revision/(?P<rev>[^/]+))?", self._repo_info),
            ("POST", rf"/api/{repo}/preupload/(?P<rev>[^/]+)", self._preupload),
            ("POST", rf"/api/{repo}/commit/(?P<rev>[^/]+)", self._commit_route),
            ("GET", rf"/api/{repo}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", self._tree),
            ("POST", rf"/api/{repo}/paths-info/(?P<rev>[^/]+)", self._paths_info),
            ("GET", rf"/api/{repo}/commits/(?P<rev>[^/]+)", self._commits),
            (
                "POST",
                r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+?)\.git/info/lfs/objects/batch",
                self._lfs_batch,
            ),  # noqa: E501
            ("PUT", rf"/lfs-objects/{repo}/(?P<oid>[0-9a-f]{{64}})", self._lfs_put),
            (
                "GET|HEAD",
                r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)",
                self._resolve_file,
            ),  # noqa: E501
            (
                "GET|HEAD",
                r"/(?:(?P<kind>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/(?:tree|blob)/(?P<rev>[^/]+)(?:/(?P<path>.*))?",
                self._browse,
            ),  # noqa: E501
        ]
        for methods, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and method in methods.split("|"):
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                if "kind" not in args and "repo" in args:
                    args["kind"] = "models"
                with self.hub._lock:
                    return handler(body=body, query=query, **args)
        raise HubError(404, f"no route for {method} {path}")

    def _json(self, data: object, status: int = 200, headers: dict | None = None):
        return (
            status,
            {"Content-Type": "application/json", **(headers or {})},
            json.dumps(data).encode(),
        )

    def _repo_url(self, kind: str, repo: str) -> str:
        prefix = "" if kind == "models" else f"{kind}/"
        return f"{self.hub.url}/{prefix}{repo}"

    def _create_repo(self, body: bytes, query: dict):
        payload = json.loads(body)
        repo_type = payload.get("type") or "model"
        repo_id = (
            f"{payload['organization']}/{payload['name']}"
            if payload.get("organization")
            else payload["name"]
        )
        if "/" not in repo_id:
            raise HubError(400, "this server needs org/name repo ids")
        url = self._repo_url(f"{repo_type}s", repo_id)
        if not self.hub.create_repo(repo_id, repo_type):
            return self._json(
                {"error": f"You already created this {repo_type} repo", "url": url}, 409
            )
        return self._json({"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, body: bytes, query: dict):
        content = json.loads(body).get("content", "")
        match = re.match(r"\s*---\n(.*?)\n---", content, flags=re.S)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as error:
                return self._json({"errors": [{"message": f"invalid YAML: {error}"}]}, 400)
            if data is not None and not isinstance(data, dict):
                return self._json({"errors": [{"message": "metadata must be a mapping"}]}, 400)
        return self._json({"errors": [], "warnings": []})

    def _repo_info(self, body: bytes, query: dict, kind: str, repo: str, rev: str = "main"):
        commit = self.hub._resolve(kind, repo, rev)
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(commit["files"]):
            sibling: dict = {"rfilename": path}
            if blobs:
                entry = self.hub._entry(path, commit["files"])
                sibling.update(size=entry["size"], blobId=entry["oid"])
                if "lfs" in entry:
                    sibling["lfs"] = {"sha256": entry["lfs"]["oid"], "size": entry["size"],
                                      "pointerSize": entry["lfs"]["pointerSize"]}  # fmt: skip
            siblings.append(sibling)
        return self._json(
            {
                "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
                "id": repo,
                "author": repo.split("/")[0],
                "sha": commit["id"],
                "lastModified": commit["date"],
                "createdAt": commit["date"],
                "private": False,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        )

    def _preupload(self, body: bytes, query: dict, kind: str, repo: str, rev: str):
        head = self.hub._resolve(kind, repo, rev)
        files = head["files"]
        answers = []
        for item in json.loads(body)["files"]:
            lfs = self.hub.wants_lfs(base64.b64decode(item["sample"]), item["size"])
            answer = {"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                      "shouldIgnore": False}  # fmt: skip
            remote = files.get(item["path"])
            if remote is not None:
                answer["oid"] = remote["sha256"] if remote["lfs"] else remote["oid"]
            answers.append(answer)
        return self._json({"files": answers, "commitOid": head["id"]})

    def _lfs_batch(self, body: bytes, query: dict, kind: str, repo: str):
        self.hub._refs(kind, repo)
        request = json.loads(body)
        objects = []
        for obj in request["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not self.hub._has_lfs(kind, repo, obj["oid"]):
                href = f"{self.hub.url}/lfs-objects/{kind}/{repo}/{obj['oid']}"
                answer["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(answer)
        return self._json({"transfer": "basic", "objects": objects})

    def _lfs_put(self, body: bytes, query: dict, kind: str, repo: str, oid: str):
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "content does not match the LFS oid")
        self.hub._add_lfs(kind, repo, body)
        return 200, {}, b""

    def _commit_route(self, body: bytes, query: dict, kind: str, repo: str, rev: str):
        head = self.hub._resolve(kind, repo, rev)
        files = dict(head["files"])
        title, message = "", ""
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                title, message = value.get("summary", ""), value.get("description", "")
                parent = value.get("parentCommit")
                if parent is not None and parent != head["id"]:
                    raise HubError(
                        412, "A commit has happened since. Please refresh and try again."
                    )
            elif key == "file":
                content = base64.b64decode(value["content"])
                files[value["path"]] = self.hub._file_entry(content, as_lfs=False)
            elif key == "lfsFile":
                obj = self.hub._object_path(value["oid"])
                if not self.hub._has_lfs(kind, repo, value["oid"]):
                    raise HubError(422, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = self.hub._file_entry(obj.read_bytes(), as_lfs=True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        commit_id = self.hub._write_commit(kind, repo, head["id"], files, title, message)
        return self._json(
            {
                "success": True,
                "commitOid": commit_id,
                "commitUrl": f"{self._repo_url(kind, repo)}/commit/{commit_id}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _tree(self, body: bytes, query: dict, kind: str, repo: str, rev: str, path: str = ""):
        commit = self.hub._resolve(kind, repo, rev)
        recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
        entries = self.hub._list_tree(commit["files"], path.strip("/"), recursive)
        cursor = int(query.get("cursor", ["0"])[0])
        page = entries[cursor : cursor + self.hub.tree_page_size]
        headers = {}
        if cursor + self.hub.tree_page_size < len(entries):
            split = urlsplit(self.path)
            next_query = (
                f"recursive={str(recursive).lower()}&cursor={cursor + self.hub.tree_page_size}"
            )
            headers["Link"] = f'<{self.hub.url}{split.path}?{next_query}>; rel="next"'
        return self._json(page, headers=headers)

    def _browse(self, body: bytes, query: dict, kind: str, repo: str, rev: str, path: str = ""):
        """The Hub's web page of a folder or file (the links tables show): 200 when the path
        exists at ``rev``, 404 otherwise, as huggingface.co answers."""
        files = self.hub._resolve(kind, repo, rev)["files"]
        if self.hub._entry(path.strip("/"), files) is None and path.strip("/"):
            raise HubError(404, f"{repo}: {path} not found at {rev}")
        return 200, {"Content-Type": "text/html"}, f"<h1>{repo}/{path}</h1>".encode()

    def _paths_info(self, body: bytes, query: dict, kind: str, repo: str, rev: str):
        files = self.hub._resolve(kind, repo, rev)["files"]
        form = parse_qs(body.decode())
        entries = [self.hub._entry(p.strip("/"), files) for p in form.get("paths", [])]
        return self._json([e for e in entries if e is not None])

    def _commits(self, body: bytes, query: dict, kind: str, repo: str, rev: str):
        commit, items = self.hub._resolve(kind, repo, rev), []
        while True:
            items.append(
                {
                    "id": commit["id"],
                    "title": commit["title"],
                    "message": commit["message"],
                    "authors": [{"user": "hub-server"}],
                    "date": commit["date"],
                }
            )
            if not commit["parent"]:
                return self._json(items)
            commit = self.hub._commit(kind, repo, commit["parent"])

    def _resolve_file(self, body: bytes, query: dict, kind: str, repo: str, rev: str, path: str):
        commit = self.hub._resolve(kind, repo, rev)
        entry = commit["files"].get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound",
                           {"X-Repo-Commit": commit["id"]})  # fmt: skip
        content = self.hub._object_path(entry["sha256"]).read_bytes()
        etag = entry["sha256"] if entry["lfs"] else entry["oid"]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit["id"],
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{quote(path.split("/")[-1])}"',
        }
        if entry["lfs"]:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry["size"])})
        status = 200
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if wanted and wanted.group(1):
            start = int(wanted.group(1))
            end = int(wanted.group(2)) if wanted.group(2) else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        headers["Content-Length"] = str(len(content))
        return status, headers, content
