"""The local backend on the tiny random model: streaming, loop guards, queueing, threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from bot.errors import BusyError, ConfigurationError, ModelNotFoundError
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.local import LocalModel
from tests.support.tiny_model import build_tiny_model

QUESTION = [
    ChatMessage("system", "You are Lore."),
    ChatMessage("user", "How many vacation days do I get?"),
]
PLAIN = GenerationSettings(max_new_tokens=24, repetition_penalty=1.0, stop_on_repeated_ngram=0)


def reference_ids(
    folder: Path, messages: list[ChatMessage], max_new_tokens: int, repetition_penalty: float
) -> list[int]:
    """The token ids plain transformers generates for the same prompt."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    inputs = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=repetition_penalty,
        )
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def reference_answer(folder: Path, messages: list[ChatMessage], max_new_tokens: int, repetition_penalty: float) -> str:
    """What plain transformers generates for the same prompt, decoded in one go."""
    ids = reference_ids(folder, messages, max_new_tokens, repetition_penalty)
    return AutoTokenizer.from_pretrained(folder).decode(ids, skip_special_tokens=True)


def test_stream_yields_pieces_that_join_to_what_transformers_generates(
    tiny_model: LocalModel, tiny_folder: Path
) -> None:
    pieces = list(tiny_model.stream(QUESTION, GenerationSettings(max_new_tokens=24, stop_on_repeated_ngram=0)))
    assert len(pieces) > 5  # incremental, not one block
    assert all(pieces)
    assert "".join(pieces) == reference_answer(tiny_folder, QUESTION, 24, 1.2)
    assert tiny_model.generate(QUESTION, GenerationSettings(max_new_tokens=24, stop_on_repeated_ngram=0)) == "".join(
        pieces
    )


def test_defaults_apply_when_a_request_brings_no_settings(tiny_folder: Path) -> None:
    with LocalModel(tiny_folder, defaults=GenerationSettings(max_new_tokens=5, stop_on_repeated_ngram=0)) as model:
        assert model.generate(QUESTION) == reference_answer(tiny_folder, QUESTION, 5, 1.2)


def test_properties(tiny_model: LocalModel, tiny_folder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    expected = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in QUESTION],
        add_generation_prompt=True,
        return_dict=True,
    )["input_ids"]
    assert tiny_model.count_tokens(QUESTION) == len(expected)
    assert tiny_model.count_tokens(QUESTION + [ChatMessage("assistant", "Twenty five days.")]) > len(expected)
    assert tiny_model.context_window == 8192
    assert tiny_model.name == "tiny"
    assert tiny_model.adapter is None
    assert tiny_model.device == "cpu"
    assert tiny_model.queue_depth == 0


def test_stop_string_ends_the_answer_before_it(tiny_model: LocalModel) -> None:
    full = tiny_model.generate(QUESTION, PLAIN)
    words = full.split()
    stop = words[len(words) // 2]
    cut = tiny_model.generate(QUESTION, GenerationSettings(**{**PLAIN.__dict__, "stop": (stop,)}))
    assert cut == full[: full.index(stop)]


def echo_model(folder: Path) -> Path:
    """A tiny model whose layers add nothing, so each token predicts itself: it loops at once."""
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    model.save_pretrained(folder)
    return folder


def first_repeat_end(ids: list[int], size: int) -> int:
    for end in range(size, len(ids) + 1):
        gram = ids[end - size : end]
        if any(ids[start : start + size] == gram for start in range(end - size)):
            return end
    raise AssertionError("no repeat")


def test_repeated_ngram_stops_a_loop(tmp_path: Path) -> None:
    folder = echo_model(build_tiny_model(tmp_path / "echo"))
    question = [ChatMessage("user", "Tell me about the office in Berlin")]
    free = GenerationSettings(max_new_tokens=30, repetition_penalty=1.0, stop_on_repeated_ngram=0)
    with LocalModel(folder) as model:
        looping = model.generate(question, free)
        guarded = model.generate(question, GenerationSettings(**{**free.__dict__, "stop_on_repeated_ngram": 4}))
    ids = reference_ids(folder, question, 30, 1.0)
    assert len(ids) == 30 and len(set(ids)) < 5, "the echo model should loop until max_new_tokens"
    assert looping == AutoTokenizer.from_pretrained(folder).decode(ids, skip_special_tokens=True)
    assert guarded == AutoTokenizer.from_pretrained(folder).decode(
        ids[: first_repeat_end(ids, 4)], skip_special_tokens=True
    )
    assert len(guarded) < len(looping)


def test_full_queue_refuses_with_busy_error(tiny_folder: Path) -> None:
    slow = GenerationSettings(max_new_tokens=400, stop_on_repeated_ngram=0)
    with LocalModel(tiny_folder, queue_size=2) as model:
        first = model.stream(QUESTION, slow)
        second = model.stream(QUESTION, slow)
        assert model.queue_depth == 2
        with pytest.raises(BusyError, match="busy with 2 questions; try again in a moment"):
            model.stream(QUESTION, slow)
        first.close()
        second.close()
        deadline = time.monotonic() + 30
        while model.queue_depth and time.monotonic() < deadline:
            time.sleep(0.01)
        assert model.queue_depth == 0
        assert model.generate(QUESTION, PLAIN)  # admitted again once the others are done


def test_abandoning_a_stream_stops_its_generation(tiny_folder: Path) -> None:
    with LocalModel(tiny_folder) as model:
        long = model.stream(QUESTION, GenerationSettings(max_new_tokens=4000, stop_on_repeated_ngram=0))
        next(long)
        long.close()
        started = time.monotonic()
        model.generate(QUESTION, GenerationSettings(max_new_tokens=2))
        # 4000 tokens take minutes; the next request running in seconds shows the first stopped.
        assert time.monotonic() - started < 20


def test_concurrent_callers_all_get_their_own_complete_answer(tiny_model: LocalModel) -> None:
    questions = [[ChatMessage("user", f"Question number {n}?")] for n in range(6)]
    expected = [tiny_model.generate(question, PLAIN) for question in questions]
    results: dict[int, str] = {}

    def ask(n: int) -> None:
        results[n] = "".join(tiny_model.stream(questions[n], PLAIN))

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [results.get(n) for n in range(6)] == expected
    assert len(set(expected)) > 1


def test_prompt_longer_than_the_context_window_is_refused(tiny_model: LocalModel) -> None:
    huge = [ChatMessage("user", "word " * 9000)]
    with pytest.raises(Exception, match="context window of 8192"):
        tiny_model.generate(huge, PLAIN)
    assert tiny_model.generate(QUESTION, PLAIN)  # the worker survives a failed request


def test_missing_folder_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(
        ModelNotFoundError,
        match=r"does not exist: set model\.base_model \(LORE_MODEL__BASE_MODEL\)",
    ):
        LocalModel(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        LocalModel(tmp_path / "empty")


def test_unknown_device_is_a_configuration_error(tiny_folder: Path) -> None:
    with pytest.raises(ConfigurationError, match="model.device"):
        LocalModel(tiny_folder, device="warp-drive")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match="no CUDA GPU"):
            LocalModel(tiny_folder, device="cuda")
