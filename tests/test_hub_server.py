"""The local Hub test server's own contract: the headers and error codes the Hub clients rely on."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request

import pytest
from hub_server import LocalHub, git_blob_oid

TOKEN = "hf_owner"


@pytest.fixture
def hub():
    with LocalHub(tokens={TOKEN: "owner"}) as server:
        yield server


def call(hub: LocalHub, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN,
         content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(hub.url + path, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def commit(hub: LocalHub, repo_id: str, files: dict[str, bytes], lfs: dict[str, bytes] | None = None) -> str:
    lines = [{"key": "header", "value": {"summary": "test commit", "description": ""}}]
    lines += [{"key": "file", "value": {"path": p, "content": base64.b64encode(c).decode(), "encoding": "base64"}}
              for p, c in files.items()]
    for path, content in (lfs or {}).items():
        oid = hashlib.sha256(content).hexdigest()
        assert call(hub, "PUT", f"/lfs-storage/{oid}", content, token=None)[0] == 200
        lines.append({"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": len(content)}})
    ndjson = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, _, body = call(hub, "POST", f"/api/models/{repo_id}/commit/main", ndjson,
                           content_type="application/x-ndjson")
    assert status == 200, body
    return json.loads(body)["commitOid"]


def test_resolve_headers_and_error_codes(hub):
    assert call(hub, "POST", "/api/repos/create", json.dumps({"name": "m", "type": "model"}).encode())[0] == 200
    weights = b"\x00\x01binary weights"
    head = commit(hub, "owner/m", {"config.json": b"{}"}, lfs={"model.safetensors": weights})

    status, headers, _ = call(hub, "HEAD", "/owner/m/resolve/main/config.json", token=None)
    assert status == 200 and headers["X-Repo-Commit"] == head
    assert headers["ETag"] == f'"{git_blob_oid(b"{}")}"' and headers["Content-Length"] == "2"
    status, headers, body = call(hub, "GET", f"/owner/m/resolve/{head}/model.safetensors", token=None)
    assert body == weights
    assert headers["X-Linked-Etag"] == f'"{hashlib.sha256(weights).hexdigest()}"'
    assert headers["X-Linked-Size"] == str(len(weights))

    status, headers, _ = call(hub, "HEAD", "/owner/m/resolve/main/missing.json")
    assert (status, headers["X-Error-Code"], headers["X-Repo-Commit"]) == (404, "EntryNotFound", head)
    status, headers, _ = call(hub, "HEAD", "/owner/m/resolve/no-such-branch/config.json")
    assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
    status, headers, _ = call(hub, "HEAD", "/owner/nothing/resolve/main/config.json")
    assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound")
    status, headers, _ = call(hub, "HEAD", "/owner/m/resolve/main/config.json", token="hf_wrong")
    assert status == 401 and headers["X-Error-Message"] == "Invalid credentials in Authorization header"
    hub.assert_all_served()


def test_existing_repo_conflict_and_commit_checks(hub):
    payload = json.dumps({"name": "m"}).encode()
    assert call(hub, "POST", "/api/repos/create", payload)[0] == 200
    status, _, body = call(hub, "POST", "/api/repos/create", payload)
    assert status == 409 and json.loads(body)["url"] == f"{hub.url}/owner/m"
    status, _, body = call(hub, "POST", "/api/models/owner/m/commit/main", b'{"key": "header", "value": {}}\n'
                           b'{"key": "lfsFile", "value": {"path": "w", "algo": "sha256", "oid": "00", "size": 1}}\n')
    assert status == 422 and b"never uploaded" in body
    assert call(hub, "PUT", f"/lfs-storage/{'0' * 64}", b"not that content", token=None)[0] == 400
    assert len(hub.commits("owner/m")) == 1
    hub.assert_all_served()


def test_unimplemented_requests_are_recorded_and_fail(hub):
    assert call(hub, "GET", "/api/datasets/owner/d")[0] == 501
    assert call(hub, "GET", "/api/models/owner/m?expand=downloads")[0] == 501
    assert len(hub.unserved) == 2
    with pytest.raises(AssertionError, match="does not serve"):
        hub.assert_all_served()
