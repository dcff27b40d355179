"""A small OpenAI-compatible chat server on 127.0.0.1 for tests.

It speaks the parts of the API Lore uses: `GET /v1/models` and `POST /v1/chat/completions`, plain
or streamed as server-sent events, with OpenAI-style error bodies. What it answers comes from a
`reply` function of the request body, so a test can echo, loop, or wrap a real model.

    with OpenAIServer(reply=lambda body: "Hello there") as server:
        model = OpenAIModel(server.url, "lore")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = Callable[[dict[str, Any]], str]

# Fields of a chat completion request that OpenAI itself accepts; `strict` servers refuse others.
_OPENAI_FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stream",
    "stop",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
    "stream_options",
}


def echo_last_message(body: dict[str, Any]) -> str:
    """The default reply: repeats the last message's content."""
    return f"You said: {body['messages'][-1]['content']}"


class OpenAIServer:
    """Serves `reply(body)` as a chat completion for each model in `models`.

    `api_key`: when set, requests without `Authorization: Bearer <api_key>` get 401.
    `strict`: refuse fields the OpenAI API does not know (e.g. `repetition_penalty`) with 400.
    `context_window`: reported as vLLM's `max_model_len` in /v1/models.
    `piece_delay`: seconds between streamed pieces.
    Every request received is kept in `requests` (method, path, headers, body).
    """

    def __init__(
        self,
        reply: Reply = echo_last_message,
        *,
        models: Iterable[str] = ("lore",),
        api_key: str | None = None,
        strict: bool = False,
        context_window: int = 8192,
        piece_delay: float = 0.0,
    ) -> None:
        self.reply = reply
        self.models = list(models)
        self.api_key = api_key
        self.strict = strict
        self.context_window = context_window
        self.piece_delay = piece_delay
        self.requests: list[dict[str, Any]] = []
        self._failure: tuple[int, str] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL clients are configured with (ends in /v1)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The bodies of the chat completion requests received, in order."""
        return [request["body"] for request in self.requests if request["path"] == "/v1/chat/completions"]

    def fail_with(self, status: int | None, message: str = "") -> None:
        """Answer every request with HTTP `status` and an OpenAI-style error (None: stop failing)."""
        self._failure = None if status is None else (status, message)

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        body = _read_body(handler) if method == "POST" else {}
        self.requests.append({"method": method, "path": handler.path, "headers": dict(handler.headers), "body": body})
        if self._failure is not None:
            _send_error(handler, *self._failure)
        elif self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            _send_error(handler, 401, "Incorrect API key provided.")
        elif method == "GET" and handler.path == "/v1/models":
            _send_json(
                handler,
                200,
                {"object": "list", "data": [self._model_entry(name) for name in self.models]},
            )
        elif method == "POST" and handler.path == "/v1/chat/completions":
            self._complete(handler, body)
        else:
            _send_error(handler, 404, f"no route {method} {handler.path}")

    def _model_entry(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "owned_by": "lore-tests",
            "max_model_len": self.context_window,
        }

    def _complete(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        unknown = sorted(set(body) - _OPENAI_FIELDS)
        if self.strict and unknown:
            _send_error(handler, 400, f"Unrecognized request argument supplied: {', '.join(unknown)}")
            return
        if body.get("model") not in self.models:
            _send_error(handler, 404, f"The model `{body.get('model')}` does not exist.")
            return
        text = self.reply(body)
        for stop in body.get("stop") or []:
            text = text.split(stop)[0]
        pieces = _pieces(text)[: body.get("max_tokens") or None]
        if body.get("stream"):
            self._stream(handler, body["model"], pieces)
        else:
            _send_json(
                handler,
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(pieces)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"completion_tokens": len(pieces)},
                },
            )

    def _stream(self, handler: BaseHTTPRequestHandler, model: str, pieces: list[str]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        deltas = [{"role": "assistant", "content": ""}] + [{"content": piece} for piece in pieces]
        try:
            for delta in deltas:
                _send_event(handler, model, delta, None)
                time.sleep(self.piece_delay)
            _send_event(handler, model, {}, "stop")
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading, as clients may


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.answer(self, "GET")

        def do_POST(self) -> None:
            server.answer(self, "POST")

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return Handler


def _pieces(text: str) -> list[str]:
    """Split text into word-sized pieces, each with its leading whitespace, like BPE tokens."""
    pieces: list[str] = []
    for index, word in enumerate(text.split(" ")):
        pieces.append(word if index == 0 else " " + word)
    return [piece for piece in pieces if piece]


def _read_body(handler: BaseHTTPRequestHandler) -> dict[str, Any]:
    length = int(handler.headers.get("Content-Length") or 0)
    return json.loads(handler.rfile.read(length) or b"{}")


def _send_json(handler: BaseHTTPRequestHandler, status: int, data: dict[str, Any]) -> None:
    raw = json.dumps(data).encode("utf-8")
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


def _send_error(handler: BaseHTTPRequestHandler, status: int, message: str) -> None:
    _send_json(
        handler,
        status,
        {"error": {"message": message, "type": "invalid_request_error", "code": status}},
    )


def _send_event(handler: BaseHTTPRequestHandler, model: str, delta: dict[str, Any], finish: str | None) -> None:
    chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
    handler.wfile.flush()
