"""A loopback HTTP server that speaks the OpenAI chat-completions and Gemini generateContent wire
formats, so the real SDK clients can be tested (and judge throughput measured) offline.

    with FakeLLMServer(responder) as server:
        LLMConfig(backend="openai", model="m", base_url=server.openai_base_url)
        LLMConfig(backend="gemini", model="m", base_url=server.gemini_base_url)

`responder(request)` gets a `FakeRequest` (api, model, system, user, n, the decoded request body,
and for OpenAI the image parts and bearer key) and returns a `FakeReply` (status, text, delay_s, retry_after, and the
finish_reason / refusal a provider sets). Binds 127.0.0.1 only.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class FakeRequest:
    api: str  # "openai" | "gemini"
    model: str
    system: str
    user: str
    n: int  # 1-based arrival number
    image_urls: tuple[str, ...] = ()  # OpenAI image_url parts, in message order
    api_key: str = ""  # the bearer token sent
    body: dict = field(default_factory=dict, compare=False)  # the request's JSON body, as received

    def images(self) -> list[tuple[str, bytes]]:
        """(media type, bytes) of each image, decoded from its data: URI (ValueError for any other URL)."""
        decoded = []
        for url in self.image_urls:
            head, sep, payload = url.partition(",")
            if not (sep and head.startswith("data:") and head.endswith(";base64")):
                raise ValueError(f"image_url is not a base64 data: URI: {url[:60]!r}")
            decoded.append((head[len("data:"):-len(";base64")], base64.b64decode(payload, validate=True)))
        return decoded


@dataclass(frozen=True)
class FakeReply:
    text: str = ""
    status: int = 200
    delay_s: float = 0.0
    retry_after: float | None = None
    finish_reason: str = "stop"
    refusal: str | None = None  # OpenAI: the message's refusal (its content is then null)


Responder = Callable[[FakeRequest], FakeReply]
_GEMINI_PATH = re.compile(r"^/(?P<ver>v1[a-z0-9]*)/models/(?P<model>[^:]+):generateContent$")


class FakeLLMServer:
    def __init__(self, responder: Responder, host: str = "127.0.0.1"):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake LLM server binds loopback only")
        self.responder = responder
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body in one segment: no 40 ms delayed-ACK stall
            wbufsize = 1 << 16

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                path = self.path.split("?", 1)[0]
                if path.endswith("/chat/completions"):
                    key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                    req = server._record("openai", body.get("model", ""), *_openai_text(body),
                                         image_urls=_openai_images(body), api_key=key, body=body)
                elif (m := _GEMINI_PATH.match(path)) is not None:
                    req = server._record("gemini", m["model"], *_gemini_text(body), body=body)
                else:
                    return self._send(404, {"error": {"message": f"no route {path}"}})
                reply = server.responder(req)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    payload = {"error": {"code": reply.status, "message": reply.text or "fake error",
                                         "status": "RESOURCE_EXHAUSTED" if reply.status == 429 else "INTERNAL"}}
                    headers = {"retry-after": str(reply.retry_after)} if reply.retry_after is not None else {}
                    return self._send(reply.status, payload, headers)
                if req.api == "openai":
                    payload = {"id": f"chatcmpl-{req.n}", "object": "chat.completion", "created": 0,
                               "model": req.model, "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                               "message": {"role": "assistant", "refusal": reply.refusal,
                                           "content": None if reply.refusal else reply.text}}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                else:
                    payload = {"candidates": [{"content": {"role": "model", "parts": [{"text": reply.text}]},
                                               "finishReason": "STOP", "index": 0}],
                               "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1,
                                                 "totalTokenCount": 2}, "modelVersion": req.model}
                self._send(200, payload)

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _record(self, api: str, model: str, system: str, user: str, **extra) -> FakeRequest:
        with self._lock:
            req = FakeRequest(api, model, system, user, len(self.requests) + 1, **extra)
            self.requests.append(req)
        return req

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def gemini_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _openai_text(body: dict) -> tuple[str, str]:
    system: list[str] = []
    user: list[str] = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        (system if msg.get("role") == "system" else user).append(str(content or ""))
    return "\n".join(system), "\n".join(user)


def _openai_images(body: dict) -> tuple[str, ...]:
    urls = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    image = part.get("image_url")
                    urls.append(image.get("url", "") if isinstance(image, dict) else str(image))
    return tuple(urls)


def _gemini_text(body: dict) -> tuple[str, str]:
    def texts(content) -> str:
        return "".join(p.get("text", "") for p in (content or {}).get("parts", []))

    system = texts(body.get("systemInstruction") or body.get("system_instruction"))
    user = "\n".join(texts(c) for c in body.get("contents", []))
    return system, user
