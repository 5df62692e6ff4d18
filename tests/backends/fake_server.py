"""A small real HTTP server on 127.0.0.1 that misbehaves on purpose, for the OpenAI-compatible backend tests.

Each test gets its own path prefix (``/<scenario>-<id>/v1``) so counters never leak between tests. Scenarios:
flaky (500 twice, then 200), down (always 500), ratelimit (429 with Retry-After: 1 once), slow (sleeps past the
client timeout), html (200 with an HTML page), nochoices (200 JSON without choices), noschema (400 when
response_format is sent), echoauth (500 echoing the Authorization header), deny (401 echoing it), nousage (200
without usage), thinking (a MedGemma-style thinking block), loop (a reply cut off inside a repetition loop),
vision (200 only when a user message carries an ``image_url`` part whose URL is a base64 data URL, else 400, as a
vision server refuses a request whose image it cannot read).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def completion(content: str, *, finish: str = "stop", usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    return body


def data_url_images(body: dict[str, Any]) -> list[str]:
    """The ``data:`` URLs of the image_url parts in the request's user messages, in order."""
    urls: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for part in content:
            image = part.get("image_url") if isinstance(part, dict) and part.get("type") == "image_url" else None
            url = image.get("url") if isinstance(image, dict) else None
            if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
                urls.append(url)
    return urls


class FakeOpenAIServer:
    """Threaded stdlib server; `requests[prefix]` holds (headers, json body) of every request received."""

    def __init__(self) -> None:
        self.requests: dict[str, list[tuple[dict[str, str], dict[str, Any]]]] = defaultdict(list)
        self.slow_seconds = 3.0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                body = json.loads(raw or b"{}")
                prefix = self.path.split("/")[1]
                with owner._lock:
                    owner.requests[prefix].append((dict(self.headers), body))
                    count = len(owner.requests[prefix])
                owner.respond(self, prefix.rsplit("-", 1)[0], count, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, scenario: str, test_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}-{test_id}/v1"

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", content_type)
        handler.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def respond(self, h: BaseHTTPRequestHandler, scenario: str, count: int, body: dict[str, Any]) -> None:
        send = self._send
        auth = h.headers.get("authorization", "")
        if scenario == "flaky":
            if count <= 2:
                send(h, 500, {"error": "warming up"})
            else:
                send(h, 200, completion("recovered"))
        elif scenario == "down":
            send(h, 503, {"error": "overloaded"})
        elif scenario == "ratelimit":
            if count == 1:
                send(h, 429, {"error": "slow down"}, headers={"Retry-After": "1"})
            else:
                send(h, 200, completion("after waiting"))
        elif scenario == "slow":
            time.sleep(self.slow_seconds)
            try:
                send(h, 200, completion("too late"))
            except OSError:
                pass  # the client gave up and closed the socket, as it should
        elif scenario == "html":
            send(
                h,
                200,
                "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>",
                content_type="text/html",
            )
        elif scenario == "nochoices":
            send(h, 200, {"object": "chat.completion", "choices": []})
        elif scenario == "noschema":
            if "response_format" in body:
                send(h, 400, {"error": {"message": "response_format json_schema is not supported by this server"}})
            else:
                send(h, 200, completion('{"answer": "yes"}'))
        elif scenario == "echoauth":
            send(h, 500, {"error": f"internal error; you sent {auth}"})
        elif scenario == "deny":
            send(h, 401, {"error": f"invalid key: {auth}"})
        elif scenario == "nousage":
            send(h, 200, completion("twelve characters", usage=False))
        elif scenario == "thinking":
            send(h, 200, completion("<unused94>thought\nThe patient is tachycardic.<unused95>Order an ECG."))
        elif scenario == "vision":
            count_images = len(data_url_images(body))
            if count_images:
                send(h, 200, completion(f"I see {count_images} image(s)."))
            else:
                send(h, 400, {"error": {"message": "expected an image_url part with a data: URL in a user message"}})
        elif scenario == "loop":
            send(h, 200, completion("Start. " + "I am sorry for that. " * 12, finish="length"))
        else:
            send(h, 404, {"error": f"unknown scenario {scenario}"})
