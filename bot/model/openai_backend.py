"""The `openai` backend: any OpenAI-compatible chat endpoint (vLLM, llama.cpp, Ollama, hosted).

Plain httpx, no SDK: one POST to `/chat/completions`, streamed as server-sent events. An adapter
is just another model name on such a server (vLLM serves LoRA adapters by name with
`--enable-lora --lora-modules NAME=PATH`), so `use_adapter` only changes the `model` field.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from bot.errors import BusyError, ModelEndpointError
from bot.model.adapters import normalize_adapter
from bot.model.admission import RequestGate
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.streaming import RepeatGuard, StopScanner
from bot.model.tokens import ChatTokenizer, estimate_tokens

log = logging.getLogger(__name__)

# Used when the server does not say how long its context is (vLLM and llama.cpp do).
DEFAULT_CONTEXT_WINDOW = 8192
# The OpenAI API accepts at most 4 stop strings; the rest are applied here.
_MAX_SERVER_STOPS = 4
_PROBE_TIMEOUT_SECONDS = 5.0


class OpenAIModel:
    """A chat model behind an OpenAI-compatible HTTP endpoint; implements `bot.model.base.Model`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: SecretStr | str = "",
        adapter: str | None = None,
        timeout_seconds: float = 120.0,
        queue_size: int = 32,
        defaults: GenerationSettings | None = None,
        tokenizer: ChatTokenizer | None = None,
        context_window: int | None = None,
    ) -> None:
        """Talk to `base_url` (ending in /v1) as model `model`.

        `tokenizer` makes `count_tokens` exact; without it the count is an estimate of about
        4 characters per token. `context_window` overrides what the server reports.
        """
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._served = normalize_adapter(adapter) or model
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
        )
        self._timeout = timeout_seconds
        self._gate = RequestGate(queue_size)
        self._defaults = defaults or GenerationSettings()
        self._tokenizer = tokenizer
        self._context_window = context_window
        # vLLM takes `repetition_penalty`; strict servers (OpenAI itself) refuse unknown fields.
        self._send_repetition_penalty = True

    def __repr__(self) -> str:  # never shows the API key
        return f"OpenAIModel({self._base_url!r}, model={self._served!r})"

    @property
    def name(self) -> str:
        """The base model's name on the server (model.openai_model)."""
        return self._model

    @property
    def adapter(self) -> str | None:
        """The adapter's model name while one is in use, else None."""
        return None if self._served == self._model else self._served

    @property
    def context_window(self) -> int:
        """The served model's context length as the server reports it, else 8192."""
        if self._context_window is None:
            self._context_window = self._discover_context_window()
        return self._context_window

    @property
    def queue_depth(self) -> int:
        """Requests in flight now (for /healthz)."""
        return self._gate.depth

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Exact with the base model's tokenizer when configured, else an estimate."""
        if self._tokenizer is not None:
            return len(self._tokenizer.encode_chat(messages))
        return estimate_tokens(messages)

    def use_adapter(self, name: str | None) -> None:
        """Send requests to the model named `name` from now on (None or "base": the base model)."""
        self._served = normalize_adapter(name) or self._model

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        """Yield the answer as the server streams it.

        BusyError comes before the first piece when `queue_size` requests are in flight. The loop
        guard counts words here, as the server's tokens are not visible: a run of
        `stop_on_repeated_ngram` words seen before ends the answer.
        """
        settings = settings or self._defaults
        self._gate.enter()
        try:
            scanner = StopScanner(settings.stop)
            repeats = RepeatGuard(settings.stop_on_repeated_ngram)
            words = _WordSplitter()
            with self._post(messages, settings, stream=True) as response:
                for delta in _sse_deltas(response, self._base_url):
                    text = scanner.feed(delta)
                    if text:
                        yield text
                    if scanner.stopped or any(repeats.add(word) for word in words.feed(delta)):
                        return  # closing the response tells the server to stop generating
            rest = scanner.flush()
            if rest:
                yield rest
        finally:
            self._gate.leave()

    def generate(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> str:
        """The whole answer in one non-streaming request."""
        settings = settings or self._defaults
        self._gate.enter()
        try:
            with self._post(messages, settings, stream=False) as response:
                try:
                    text = response.read().decode("utf-8", errors="replace")
                    content = json.loads(text)["choices"][0]["message"]["content"] or ""
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from exc
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    raise ModelEndpointError(
                        f"the model server at {self._base_url} sent an answer that is not an "
                        f"OpenAI chat completion: {text[:200]!r}"
                    ) from exc
        finally:
            self._gate.leave()
        scanner = StopScanner(settings.stop)
        return scanner.feed(content) + scanner.flush()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    @contextlib.contextmanager
    def _post(
        self, messages: Sequence[ChatMessage], settings: GenerationSettings, *, stream: bool
    ) -> Iterator[httpx.Response]:
        if not messages:
            raise ValueError("a prompt needs at least one message")
        body: dict[str, Any] = {
            "model": self._served,
            "messages": [{"role": message.role, "content": message.content} for message in messages],
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "stream": stream,
        }
        if settings.stop:
            body["stop"] = list(settings.stop[:_MAX_SERVER_STOPS])
        if self._send_repetition_penalty and settings.repetition_penalty != 1.0:
            body["repetition_penalty"] = settings.repetition_penalty
        response = self._open(body)
        try:
            yield response
        finally:
            response.close()

    def _open(self, body: dict[str, Any]) -> httpx.Response:
        """Send the request; return the open response on success, else raise a clear error."""
        response = self._send(body)
        if response.is_success:
            return response
        detail = _read_detail(response)
        if response.status_code in (400, 422) and "repetition_penalty" in detail:
            # A strict server refuses the field; ask again without it, and from now on.
            log.info("%s does not take repetition_penalty; sending requests without it", self._base_url)
            self._send_repetition_penalty = False
            body = {key: value for key, value in body.items() if key != "repetition_penalty"}
            response = self._send(body)
            if response.is_success:
                return response
            detail = _read_detail(response)
        raise self._status_error(response.status_code, detail, body["model"])

    def _send(self, body: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request("POST", f"{self._base_url}/chat/completions", json=body)
        try:
            return self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def _transport_error(self, exc: httpx.HTTPError) -> ModelEndpointError:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ModelEndpointError(
                f"cannot reach the model server at {self._base_url}: start it (e.g. `vllm serve "
                "MODEL` or `llama-server -m MODEL.gguf`) or fix model.openai_base_url"
            )
        if isinstance(exc, httpx.TimeoutException):
            return ModelEndpointError(
                f"the model server at {self._base_url} did not answer within {self._timeout:g} s: "
                "it may be overloaded; raise model.request_timeout_seconds or give it more capacity"
            )
        return ModelEndpointError(
            f"the connection to the model server at {self._base_url} failed ({type(exc).__name__}: "
            f"{exc}): check that it is running and see its logs"
        )

    def _status_error(self, status: int, detail: str, model: str) -> ModelEndpointError | BusyError:
        said = f" ({detail})" if detail else ""
        where = f"the model server at {self._base_url}"
        if status in (401, 403):
            return ModelEndpointError(
                f"{where} refused the API key (HTTP {status}){said}: set model.openai_api_key "
                "(LORE_MODEL__OPENAI_API_KEY) to a key it accepts"
            )
        if status == 404:
            return ModelEndpointError(
                f"{where} has no model {model!r} at /chat/completions (HTTP 404){said}: set "
                f"model.openai_model to a model it serves (GET {self._base_url}/models lists them; "
                f"an adapter must be served by name, e.g. vLLM `--enable-lora --lora-modules "
                f"{model}=PATH`) and check that model.openai_base_url ends in /v1"
            )
        if status == 429:
            return BusyError(f"{where} is busy (HTTP 429){said}; try again in a moment")
        if status >= 500:
            return ModelEndpointError(f"{where} failed with HTTP {status}{said}: see the server's logs")
        return ModelEndpointError(f"{where} refused the request with HTTP {status}{said}")

    def _discover_context_window(self) -> int:
        try:
            response = self._client.get(f"{self._base_url}/models", timeout=_PROBE_TIMEOUT_SECONDS)
            entries = response.json().get("data", []) if response.is_success else []
        except (httpx.HTTPError, ValueError, AttributeError):
            entries = []
        for entry in entries:
            if isinstance(entry, dict) and entry.get("id") == self._served:
                length = (
                    entry.get("max_model_len")
                    or entry.get("context_length")
                    or (entry.get("meta") or {}).get("n_ctx_train")
                )
                if isinstance(length, int) and length > 0:
                    return length
        log.info(
            "%s does not report a context length for %s; assuming %d",
            self._base_url,
            self._served,
            DEFAULT_CONTEXT_WINDOW,
        )
        return DEFAULT_CONTEXT_WINDOW


def _sse_deltas(response: httpx.Response, base_url: str) -> Iterator[str]:
    """The text pieces of a streamed chat completion."""
    try:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # comments, event names and the blank lines between events
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except ValueError as exc:
                raise ModelEndpointError(
                    f"the model server at {base_url} streamed something that is not JSON: {data[:200]!r}"
                ) from exc
            if "error" in event:
                raise ModelEndpointError(
                    f"the model server at {base_url} failed while answering: {_error_detail(data.encode())}"
                )
            for choice in event.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield content
    except httpx.HTTPError as exc:
        raise ModelEndpointError(
            f"the model server at {base_url} stopped sending the answer ({type(exc).__name__}): "
            "check that it is still running and see its logs"
        ) from exc


def _read_detail(response: httpx.Response) -> str:
    try:
        return _error_detail(response.read())
    except httpx.HTTPError:
        return ""
    finally:
        response.close()


def _error_detail(raw: bytes) -> str:
    """The message in an OpenAI-style error body, or the start of the body."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:200]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)[:200]
        return str(error)[:200]
    return text[:200]


class _WordSplitter:
    """Splits streamed text into whole words; a word is complete once whitespace follows it."""

    def __init__(self) -> None:
        self._partial = ""

    def feed(self, text: str) -> list[str]:
        parts = re.split(r"\s+", self._partial + text)
        self._partial = parts.pop()
        return [part for part in parts if part]
