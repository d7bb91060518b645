"""Loopback stand-ins for the two services the dataset tools talk to, and the shared data.

* `fake_hub`: answers like the Hugging Face hub's ``/datasets/<repo>/resolve/<rev>/<path>``
  (HEAD and ranged GET, X-Repo-Commit, X-Linked-Etag = sha256, X-Linked-Size, gated-repo and
  bad-token errors with the hub's X-Error-Code headers), with a switch to cut a body short.
* `fake_llm`: an OpenAI-compatible ``/v1/chat/completions`` whose replies a test scripts.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

GOOD_TOKEN = "hf_good"
NO_ACCESS_TOKEN = "hf_no_access"
COMMIT = "a" * 40


def shared_data_dir() -> Path:
    """The published CT-SpatialVQA files: <repo>/../shared/data/ct-spatialvqa, or $CTBENCH_SHARED
    (the shared folder or the ct-spatialvqa folder itself)."""
    base = os.environ.get("CTBENCH_SHARED")
    root = Path(base) if base else Path(__file__).resolve().parents[3] / "shared"
    for candidate in (root, root / "data" / "ct-spatialvqa", root / "ct-spatialvqa"):
        if (candidate / "qa_pairs.json").is_file():
            return candidate
    return root / "data" / "ct-spatialvqa"


@pytest.fixture(scope="session")
def published_dir() -> Path:
    path = shared_data_dir()
    if not (path / "qa_pairs.json").is_file():
        pytest.skip(
            f"needs the published CT-SpatialVQA files (qa_pairs*.json) in {path}; "
            "set CTBENCH_SHARED to the folder holding data/ct-spatialvqa"
        )
    return path


class _Server:
    def __init__(self, handler_cls):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeHub:
    """Files by repo path; `cut_after` = {path: n} ends the next GET of `path` after n bytes."""

    good_token = GOOD_TOKEN
    no_access_token = NO_ACCESS_TOKEN

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.gated = True
        self.redirect = False  # answer like the hub for LFS files: 302 to a CDN URL
        self.server: _Server | None = None

    def add(self, repo_path: str, data: bytes) -> None:
        self.files[repo_path] = data

    @property
    def endpoint(self) -> str:
        return self.server.url


def _hub_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _error(self, status: int, code: str | None, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            hub.requests.append((self.command, self.path, dict(self.headers)))
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").strip() if auth else None
            if token not in (None, GOOD_TOKEN, NO_ACCESS_TOKEN):
                return self._error(401, None, "Invalid credentials in Authorization header")
            if hub.gated and token != GOOD_TOKEN:
                return self._error(403 if token else 401, "GatedRepo", "Access to dataset is restricted.")
            prefix = "/datasets/ibrahimhamamci/CT-RATE/resolve/main/"
            if self.path.startswith("/cdn/"):
                return self._send_file(self.path[len("/cdn/"):])
            if not self.path.startswith(prefix):
                return self._error(404, "RepoNotFound", "Repository not found")
            repo_path = self.path[len(prefix):]
            data = hub.files.get(repo_path)
            if data is None:
                return self._error(404, "EntryNotFound", f"{repo_path} does not exist")
            if hub.redirect:
                self.send_response(302)
                self.send_header("Location", f"{hub.endpoint}/cdn/{repo_path}")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self._send_file(repo_path)

        def _send_file(self, repo_path: str) -> None:
            data = hub.files[repo_path]
            start = 0
            rng = self.headers.get("Range")
            if rng and self.command == "GET":
                start = int(rng.split("=")[1].split("-")[0])
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
            self.send_header("X-Linked-Etag", '"' + hashlib.sha256(data).hexdigest() + '"')
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", str(len(body)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if self.command == "HEAD":
                return
            cut = hub.cut_after.pop(repo_path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        do_GET = _serve
        do_HEAD = _serve

    return Handler


@pytest.fixture
def fake_hub():
    hub = FakeHub()
    hub.server = _Server(_hub_handler(hub))
    try:
        yield hub
    finally:
        hub.server.close()


class FakeLLM:
    """Replies come from `reply(messages) -> str`; every request body is kept in `requests`."""

    def __init__(self):
        self.requests: list[dict] = []
        self.reply = lambda messages: "[]"
        self.status = 200
        self.server: _Server | None = None

    @property
    def base_url(self) -> str:
        return self.server.url + "/v1"


def _llm_handler(llm: FakeLLM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            llm.requests.append(body)
            if llm.status != 200:
                payload = {"error": {"message": "scripted failure", "type": "server_error"}}
                status = llm.status
            else:
                content = llm.reply(body.get("messages", []))
                payload = {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                }
                status = 200
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@pytest.fixture
def fake_llm():
    llm = FakeLLM()
    llm.server = _Server(_llm_handler(llm))
    try:
        yield llm
    finally:
        llm.server.close()
