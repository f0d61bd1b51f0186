"""A small Hugging Face Hub-compatible HTTP server, for testing pushes and pulls without the internet.

It speaks the subset of the Hub's HTTP protocol that `huggingface_hub` (2.x, with `HF_HUB_DISABLE_XET=1`)
and transformers use to create a model repo, commit files to it (regular files inline, large or binary ones
through the git-LFS batch API), and download them again (`HEAD`/`GET .../resolve/...`). Repositories live in
memory as a chain of commits; every commit is a full snapshot `{path: blob}`.

Anything outside that subset (another repo type, xet, pull requests, an unknown query parameter, a Range
request, ...) is answered `501` *and* recorded in `LocalHub.unserved`; tests assert that list is empty, so a
test cannot pass on a code path the fixture never served.

Usage::

    with LocalHub(tokens={"hf_secret": "tester"}) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_secret", "HF_HUB_DISABLE_XET": "1"}
        ...  # run the client in a subprocess with `env`
        hub.assert_all_served()
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

# The real Hub stores a file in LFS when its name matches .gitattributes or when it looks binary or is big;
# the client then uploads it through the LFS batch API instead of inline in the commit.
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
# What the Hub puts in a new repo's first commit (abridged to the patterns this project produces).
INITIAL_GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
)
_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_REV = r"(?P<rev>[^/]+)"  # revisions arrive URL-quoted ("refs%2Fpr%2F1"), so one path segment


def git_blob_oid(content: bytes) -> str:
    """Git's object id for a blob: sha1 of `b"blob <size>\\0" + content` (what the Hub calls a file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class Blob:
    """One file version. LFS files are addressed by the sha256 of their content; git stores a pointer."""

    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        spec = "version https://git-lfs.github.com/spec/v1"
        return f"{spec}\noid sha256:{self.sha256}\nsize {len(self.content)}\n".encode()

    @property
    def oid(self) -> str:
        """The git object id: of the content for a regular file, of the LFS pointer for an LFS file."""
        return git_blob_oid(self.pointer if self.lfs else self.content)

    def entry(self, path: str) -> dict:
        """This file as the tree API describes it."""
        info: dict = {"type": "file", "path": path, "size": len(self.content), "oid": self.oid}
        if self.lfs:
            info["lfs"] = {"oid": self.sha256, "size": len(self.content), "pointerSize": len(self.pointer)}
        return info


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    summary: str
    files: dict[str, Blob]
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch name or a full commit oid names, or None."""
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)


class HubError(Exception):
    """An error answer in the Hub's shape: status, message, and the `X-Error-Code` the client maps to errors."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class Unserved(Exception):
    """The request is outside what this fixture implements."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    base_url: str

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as e:
            raise HubError(400, f"request body is not JSON: {e}") from e

    def flag(self, name: str) -> bool:
        return self.query.get(name, ["false"])[-1].lower() in ("1", "true")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        headers = {"Content-Type": "application/json", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), headers)


class LocalHub:
    """An in-memory Hub on 127.0.0.1 (a free port), serving from a daemon thread until `close()`.

    `tokens` maps each accepted access token to its user name; a user may write only under its own namespace.
    `requests` logs every `(method, path, status)`; `unserved` lists the requests the fixture could not serve.
    """

    def __init__(self, tokens: dict[str, str]):
        self.tokens = dict(tokens)
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content; shared by all repos, as on the Hub
        self.requests: list[tuple[str, str, int]] = []
        self.unserved: list[str] = []
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern, Callable[..., Response], frozenset[str]]] = []
        for method, pattern, handler, params in (
            ("GET", r"/api/whoami-v2", self._whoami, ()),
            ("GET", r"/api/agent-harnesses", self._agent_harnesses, ()),
            ("POST", r"/api/repos/create", self._create_repo, ()),
            ("POST", r"/api/validate-yaml", self._validate_yaml, ()),
            ("GET", rf"/api/models/{_REPO}", self._model_info, ()),
            ("GET", rf"/api/models/{_REPO}/revision/{_REV}", self._model_info, ()),
            ("POST", rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", self._create_branch, ()),
            ("POST", rf"/api/models/{_REPO}/preupload/{_REV}", self._preupload, ()),
            ("POST", rf"/api/models/{_REPO}/commit/{_REV}", self._commit, ()),
            ("GET", rf"/api/models/{_REPO}/tree/{_REV}(?:/(?P<path>.+))?", self._tree,
             ("recursive", "expand")),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", self._lfs_batch, ()),
            ("PUT", r"/lfs-storage/(?P<oid>[0-9a-f]{64})", self._lfs_put, ()),
            ("POST", r"/lfs-storage/verify", self._lfs_verify, ()),
            ("HEAD", rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)", self._resolve, ()),
            ("GET", rf"/{_REPO}/resolve/{_REV}/(?P<path>.+)", self._resolve, ()),
        ):
            self._routes.append((method, re.compile(pattern + "$"), handler, frozenset(params)))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hub", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LocalHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def assert_all_served(self) -> None:
        """Fail when any request reached a path or parameter this fixture does not implement."""
        assert not self.unserved, "the client used Hub APIs the test server does not serve:\n" + "\n".join(
            self.unserved
        )

    def commits(self, repo_id: str, branch: str = "main") -> list[Commit]:
        """The history of `branch`, newest first."""
        repo = self.repos[repo_id]
        history, commit = [], repo.resolve(branch)
        while commit is not None:
            history.append(commit)
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return history

    # ---- dispatch -------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Route one request; errors become Hub-shaped error answers, unknown requests 501 + `unserved`."""
        for method, pattern, handler, params in self._routes:
            match = pattern.match(request.path)
            if method != request.method or match is None:
                continue
            try:
                if unknown := set(request.query) - params:
                    raise Unserved(f"query parameters {sorted(unknown)}")
                if "range" in request.headers:
                    raise Unserved("Range requests")
                if "chunked" in request.headers.get("transfer-encoding", ""):
                    raise Unserved("chunked request bodies")
                args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                with self._lock:
                    return handler(request, **args)
            except HubError as e:
                return _error_response(e)
            except Unserved as e:
                return self._unserved(request, str(e))
        return self._unserved(request, "no such route")

    def _unserved(self, request: Request, why: str) -> Response:
        self.unserved.append(f"{request.method} {request.path}?{request.query} ({why})")
        return _error_response(HubError(501, f"the local test hub does not serve this request ({why})"))

    # ---- auth and lookup ------------------------------------------------------------------------------

    def _user(self, request: Request, required: bool) -> str | None:
        """The user behind the bearer token; a token that is present but unknown is always a 401."""
        auth = request.headers.get("authorization", "")
        if not auth:
            if required:
                raise HubError(401, "You must be authenticated to do this: pass a token")
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.tokens[token]

    def _repo(self, request: Request, repo_id: str, write: bool = False) -> Repo:
        user = self._user(request, required=write)
        repo = self.repos.get(repo_id)
        # Private repos are invisible to others: the Hub answers "not found", never "forbidden".
        if repo is None or (repo.private and repo_id.split("/")[0] != user):
            raise HubError(404, f"Repository {repo_id} not found", code="RepoNotFound")
        if write and repo_id.split("/")[0] != user:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")
        return repo

    @staticmethod
    def _commit_of(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return commit

    # ---- account and repos ----------------------------------------------------------------------------

    def _whoami(self, request: Request) -> Response:
        user = self._user(request, required=True)
        return Response.of_json({
            "type": "user", "name": user, "fullname": user, "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test token", "role": "write"}},
        })

    @staticmethod
    def _agent_harnesses(request: Request) -> Response:
        # huggingface_hub fetches this registry to describe the caller in its user agent; none is known here.
        return Response.of_json({"standardEnvVars": [], "harnesses": {}})

    def _create_repo(self, request: Request) -> Response:
        user = self._user(request, required=True)
        payload = request.json()
        if payload.get("type", "model") != "model":
            raise Unserved(f"repo type {payload['type']!r}")
        namespace = payload.get("organization") or user
        repo_id = f"{namespace}/{payload['name']}"
        if namespace != user:
            raise HubError(403, f"You don't have the rights to create a model under namespace {namespace}")
        url = f"{request.base_url}/{repo_id}"
        if repo_id in self.repos:
            return Response.of_json({"error": "You already created this model repo", "url": url}, status=409)
        repo = Repo(repo_id, private=payload.get("visibility") == "private")
        self.repos[repo_id] = repo
        initial = {".gitattributes": Blob(INITIAL_GITATTRIBUTES, lfs=False)}
        self._add_commit(repo, "main", None, "initial commit", initial)
        return Response.of_json({"url": url, "name": repo_id})

    def _create_branch(self, request: Request, repo: str, branch: str) -> Response:
        target = self._repo(request, repo, write=True)
        if branch in target.branches:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        start = self._commit_of(target, request.json().get("startingPoint", "main"))
        target.branches[branch] = start.oid
        return Response.of_json({})

    def _model_info(self, request: Request, repo: str, rev: str = "main") -> Response:
        target = self._repo(request, repo)
        commit = self._commit_of(target, rev)
        return Response.of_json({
            "id": repo, "modelId": repo, "author": repo.split("/")[0], "sha": commit.oid,
            "private": target.private, "lastModified": commit.date,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        })

    # ---- commits --------------------------------------------------------------------------------------

    @staticmethod
    def _validate_yaml(request: Request) -> Response:
        content = request.json().get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, flags=re.DOTALL)
        if match is None:
            return Response.of_json({"errors": [], "warnings": [{"message": "no YAML metadata"}]})
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as e:
            return Response.of_json({"errors": [{"message": f"invalid YAML: {e}"}]}, status=400)
        if not isinstance(metadata, dict):
            return Response.of_json({"errors": [{"message": "metadata must be a YAML mapping"}]}, status=400)
        return Response.of_json({"errors": [], "warnings": []})

    def _preupload(self, request: Request, repo: str, rev: str) -> Response:
        if request.query:
            raise Unserved("pull requests")
        commit = self._commit_of(self._repo(request, repo, write=True), rev)
        answers = []
        for file in request.json()["files"]:
            sample = base64.b64decode(file["sample"])
            mode = "lfs" if b"\0" in sample or file["size"] >= LFS_SIZE_THRESHOLD else "regular"
            existing = commit.files.get(file["path"])
            # The client compares this oid with its own to skip unchanged files: sha256 for LFS, git sha1 else.
            oid = None
            if existing is not None:
                oid = existing.sha256 if mode == "lfs" else git_blob_oid(existing.content)
            answers.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return Response.of_json({"files": answers, "commitOid": commit.oid})

    def _commit(self, request: Request, repo: str, rev: str) -> Response:
        if request.query:
            raise Unserved("pull requests / hot reload")
        target = self._repo(request, repo, write=True)
        parent = self._commit_of(target, rev)
        if rev not in target.branches:
            raise HubError(400, f"Can only commit to a branch, not to {rev}")
        lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        if header.get("parentCommit") not in (None, parent.oid):
            raise HubError(412, f"parent commit {header['parentCommit']} is not the head of {rev}")
        files = dict(parent.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise Unserved(f"file encoding {value.get('encoding')!r}")
                files[value["path"]] = Blob(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.lfs_objects.get(value["oid"])
                if content is None or value.get("algo") != "sha256":
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = Blob(content, lfs=True)
            else:
                raise Unserved(f"commit operation {key!r}")
        summary = header.get("summary", "")
        commit = self._add_commit(target, rev, parent.oid, summary, files)
        return Response.of_json({"success": True, "commitOid": commit.oid, "pullRequestUrl": None,
                                 "commitUrl": f"{request.base_url}/{repo}/commit/{commit.oid}"})

    @staticmethod
    def _add_commit(
        repo: Repo, branch: str, parent: str | None, summary: str, files: dict[str, Blob]
    ) -> Commit:
        tree = sorted((path, blob.oid) for path, blob in files.items())
        oid = hashlib.sha1(json.dumps([parent, branch, summary, tree]).encode()).hexdigest()
        commit = Commit(oid, parent, summary, files, datetime.now(UTC).isoformat().replace("+00:00", "Z"))
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    # ---- git-LFS ----------------------------------------------------------------------------------------

    def _lfs_batch(self, request: Request, repo: str) -> Response:
        self._repo(request, repo, write=True)
        payload = request.json()
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise Unserved(f"LFS batch {payload.get('operation')!r} over {payload.get('transfers')}")
        objects = []
        for obj in payload["objects"]:
            answer = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if self.lfs_objects.get(obj["oid"]) is None:  # already stored objects need no upload
                answer["actions"] = {
                    "upload": {"href": f"{request.base_url}/lfs-storage/{obj['oid']}"},
                    "verify": {"href": f"{request.base_url}/lfs-storage/verify"},
                }
            objects.append(answer)
        return Response.of_json({"transfer": "basic", "objects": objects},
                                headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_put(self, request: Request, oid: str) -> Response:
        if hashlib.sha256(request.body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not hash to {oid}")
        self.lfs_objects[oid] = request.body
        return Response()

    def _lfs_verify(self, request: Request) -> Response:
        payload = request.json()
        content = self.lfs_objects.get(payload["oid"])
        if content is None or len(content) != payload["size"]:
            raise HubError(404, f"LFS object {payload['oid']} of size {payload['size']} is not stored")
        return Response.of_json({})

    # ---- reading files ----------------------------------------------------------------------------------

    def _tree(self, request: Request, repo: str, rev: str, path: str = "") -> Response:
        if request.flag("expand"):
            raise Unserved("expanded tree listings")
        commit = self._commit_of(self._repo(request, repo), rev)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        listed = {name: blob for name, blob in sorted(commit.files.items()) if name.startswith(prefix)}
        if prefix and not listed:
            raise HubError(404, f"{path} does not exist on {rev}", code="EntryNotFound", commit=commit.oid)
        return Response.of_json(_tree_entries(listed, prefix, request.flag("recursive")))

    def _resolve(self, request: Request, repo: str, rev: str, path: str) -> Response:
        commit = self._commit_of(self._repo(request, repo), rev)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"{path} does not exist on {rev}", code="EntryNotFound", commit=commit.oid)
        headers = {"X-Repo-Commit": commit.oid, "Content-Type": "application/octet-stream",
                   "ETag": f'"{blob.sha256 if blob.lfs else blob.oid}"'}
        if blob.lfs:  # the Hub describes the LFS object itself, not the pointer git stores
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.content))})
        return Response(200, blob.content, headers)


def _tree_entries(files: dict[str, Blob], prefix: str, recursive: bool) -> list[dict]:
    """The tree API's listing of the folder `prefix` holding `files`: its subfolders (`"type": "directory"`) and
    files, and with `recursive` everything below them too (a sentence-transformers model has module folders)."""
    entries, folders = [], set()
    for name, blob in files.items():
        parts = name[len(prefix):].split("/")
        for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
            folder = prefix + "/".join(parts[:depth])
            if folder not in folders:
                folders.add(folder)
                inside = sorted((n, b.oid) for n, b in files.items() if n.startswith(folder + "/"))
                # a stable stand-in for git's tree id: the Hub's clients only compare it
                entries.append({"type": "directory", "path": folder, "size": 0,
                                "oid": git_blob_oid(json.dumps(inside).encode())})
        if recursive or len(parts) == 1:
            entries.append(blob.entry(name))
    return entries


def _error_response(error: HubError) -> Response:
    headers = {"X-Error-Message": error.message}
    if error.code:
        headers["X-Error-Code"] = error.code
    if error.commit:
        headers["X-Repo-Commit"] = error.commit
    return Response.of_json({"error": error.message}, status=error.status, headers=headers)


def _handler_class(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            request = Request(
                method=self.command, path=url.path, query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()}, body=self._read_body(),
                base_url=f"http://{self.headers.get('Host', hub.url.removeprefix('http://'))}",
            )
            response = hub.handle(request)
            hub.requests.append((request.method, url.path, response.status))
            self.send_response(response.status, HTTPStatus(response.status).phrase)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        def _read_body(self) -> bytes:
            # The client sends sized bodies; a chunked one would be misread, so it is refused (see `handle`).
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            """Silence the per-request stderr line; `hub.requests` keeps the log."""

    return Handler
