"""The openai backend against a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.errors import BusyError, ModelEndpointError
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.openai_backend import DEFAULT_CONTEXT_WINDOW, OpenAIModel
from bot.model.tokens import ChatTokenizer, estimate_tokens
from tests.support.openai_server import OpenAIServer

QUESTION = [
    ChatMessage("system", "You are Lore."),
    ChatMessage("user", "Where is the Berlin office?"),
]
ANSWER = "The Berlin office is at Torstrasse 1 [1]."


@pytest.fixture()
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(reply=lambda body: ANSWER, models=["lore", "acme-v2"], api_key="sk-test-secret") as running:
        yield running


@pytest.fixture()
def model(server: OpenAIServer) -> Iterator[OpenAIModel]:
    client = OpenAIModel(server.url, "lore", api_key=SecretStr("sk-test-secret"), timeout_seconds=10)
    yield client
    client.close()


def test_streams_the_answer_in_pieces(model: OpenAIModel, server: OpenAIServer) -> None:
    pieces = list(model.stream(QUESTION, GenerationSettings(max_new_tokens=50, temperature=0.0)))
    assert len(pieces) > 3
    assert "".join(pieces) == ANSWER
    body = server.chat_requests[-1]
    assert body["stream"] is True
    assert body["model"] == "lore"
    assert body["messages"] == [
        {"role": "system", "content": "You are Lore."},
        {"role": "user", "content": "Where is the Berlin office?"},
    ]
    assert body["max_tokens"] == 50
    assert body["repetition_penalty"] == 1.2
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer sk-test-secret"


def test_generate_uses_one_plain_request(model: OpenAIModel, server: OpenAIServer) -> None:
    assert model.generate(QUESTION) == ANSWER
    assert server.chat_requests[-1]["stream"] is False


def test_adapter_name_is_the_model_field(model: OpenAIModel, server: OpenAIServer) -> None:
    model.use_adapter("acme-v2")
    assert model.adapter == "acme-v2"
    assert model.name == "lore"
    model.generate(QUESTION)
    list(model.stream(QUESTION))
    model.use_adapter(None)
    assert model.adapter is None
    model.generate(QUESTION)
    assert [body["model"] for body in server.chat_requests] == ["acme-v2", "acme-v2", "lore"]


def test_stop_strings_are_sent_and_applied(model: OpenAIModel, server: OpenAIServer) -> None:
    server.reply = lambda body: "Answer: yes.\nQuestion: and then?"
    settings = GenerationSettings(stop=("\nQuestion:", "a", "b", "c", "zzz"))
    assert "".join(model.stream(QUESTION, settings)) == "Answer: yes."
    assert server.chat_requests[-1]["stop"] == ["\nQuestion:", "a", "b", "c"]  # the API takes 4
    server.reply = lambda body: "one two zzz three"  # the fifth is applied here
    assert model.generate(QUESTION, settings) == "one two "


def test_a_looping_answer_is_cut_off(model: OpenAIModel, server: OpenAIServer) -> None:
    server.reply = lambda body: "Please ask HR. " + "Ask the team lead about it. " * 20
    text = "".join(model.stream(QUESTION, GenerationSettings(max_new_tokens=500, stop_on_repeated_ngram=4)))
    assert text.startswith("Please ask HR. Ask the team lead about it. Ask the team lead")
    assert len(text) < 100


def test_strict_server_gets_requests_without_repetition_penalty(server: OpenAIServer) -> None:
    server.strict = True
    client = OpenAIModel(server.url, "lore", api_key="sk-test-secret")
    assert client.generate(QUESTION) == ANSWER
    assert "".join(client.stream(QUESTION)) == ANSWER
    bodies = server.chat_requests
    assert "repetition_penalty" in bodies[0]  # refused with 400
    assert all("repetition_penalty" not in body for body in bodies[1:])
    assert len(bodies) == 3


def test_unreachable_server_says_how_to_start_one() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens once closed
    client = OpenAIModel(f"http://127.0.0.1:{port}/v1", "lore", timeout_seconds=5)
    message = rf"cannot reach the model server at http://127\.0\.0\.1:{port}/v1: start it .*vllm serve.*llama-server.* or fix model\.openai_base_url"
    with pytest.raises(ModelEndpointError, match=message):
        list(client.stream(QUESTION))
    with pytest.raises(ModelEndpointError, match=message):
        client.generate(QUESTION)
    assert client.queue_depth == 0
    assert client.context_window == DEFAULT_CONTEXT_WINDOW


def test_server_error_is_explained(model: OpenAIModel, server: OpenAIServer) -> None:
    server.fail_with(500, "CUDA out of memory")
    with pytest.raises(
        ModelEndpointError,
        match=r"failed with HTTP 500 \(CUDA out of memory\): see the server's logs",
    ):
        list(model.stream(QUESTION))
    server.fail_with(503, "")
    with pytest.raises(ModelEndpointError, match="HTTP 503"):
        model.generate(QUESTION)
    server.fail_with(429, "Too many requests")
    with pytest.raises(BusyError, match="try again in a moment"):
        model.generate(QUESTION)
    server.fail_with(None)
    assert model.generate(QUESTION) == ANSWER


def test_wrong_key_and_unknown_model_are_explained(server: OpenAIServer) -> None:
    wrong = OpenAIModel(server.url, "lore", api_key=SecretStr("sk-wrong"))
    with pytest.raises(ModelEndpointError, match=r"refused the API key \(HTTP 401\).*model\.openai_api_key") as caught:
        wrong.generate(QUESTION)
    assert "sk-wrong" not in str(caught.value) and "sk-wrong" not in repr(wrong)
    client = OpenAIModel(server.url, "lore", api_key="sk-test-secret", adapter="acme-v9")
    with pytest.raises(ModelEndpointError, match=r"no model 'acme-v9'.*--lora-modules acme-v9=PATH"):
        list(client.stream(QUESTION))


def test_busy_when_the_queue_is_full(server: OpenAIServer) -> None:
    server.piece_delay = 0.05
    client = OpenAIModel(server.url, "lore", api_key="sk-test-secret", queue_size=1)
    first = client.stream(QUESTION)
    assert next(first)
    assert client.queue_depth == 1
    with pytest.raises(BusyError, match="busy with 1 questions"):
        next(client.stream(QUESTION))
    first.close()
    assert client.queue_depth == 0
    assert client.generate(QUESTION) == ANSWER


def test_context_window_and_token_counts(server: OpenAIServer, tmp_path: Path) -> None:
    server.context_window = 4096
    client = OpenAIModel(server.url, "lore", api_key="sk-test-secret")
    assert client.context_window == 4096
    assert client.count_tokens(QUESTION) == estimate_tokens(QUESTION)
    assert estimate_tokens([ChatMessage("user", "x" * 400)]) == 3 + 4 + 100
    assert OpenAIModel(server.url, "lore", context_window=2048).context_window == 2048


def test_exact_token_counts_with_the_base_models_tokenizer(server: OpenAIServer, tiny_folder: Path) -> None:
    tokenizer = ChatTokenizer.from_folder(tiny_folder)
    client = OpenAIModel(server.url, "lore", tokenizer=tokenizer)
    assert client.count_tokens(QUESTION) == len(tokenizer.encode_chat(QUESTION))
    assert client.count_tokens(QUESTION) != estimate_tokens(QUESTION)
