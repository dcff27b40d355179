"""Counting a chat prompt's tokens: exactly with the model's tokenizer, or by estimate."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.errors import ModelNotFoundError
from bot.model.base import ChatMessage

# Without the model's tokenizer: English text averages about 4 characters per BPE token, and the
# chat template adds a few tokens around every message (role markers, separators).
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
TOKENS_PER_PROMPT = 3


class ChatTokenizer:
    """A model's tokenizer with its chat template; safe to share between threads."""

    def __init__(self, tokenizer: Any) -> None:
        if not tokenizer.chat_template:
            raise ModelNotFoundError(
                f"the tokenizer of {tokenizer.name_or_path} has no chat template: use an instruction-tuned (chat) model"
            )
        self._tokenizer = tokenizer
        # Fast tokenizers are Rust objects that raise "Already borrowed" under concurrent use.
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: Path) -> ChatTokenizer:
        """Load the tokenizer saved in a Hugging Face model folder."""
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(folder))
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot load the tokenizer in {folder}: {exc}") from exc

    @property
    def eos_token_id(self) -> int | None:
        """The end-of-sequence token, if the tokenizer defines one."""
        eos: int | None = self._tokenizer.eos_token_id
        return eos

    @property
    def pad_token_id(self) -> int | None:
        """The padding token, if the tokenizer defines one."""
        pad: int | None = self._tokenizer.pad_token_id
        return pad

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt's token ids, chat template and generation prompt included."""
        conversation = [{"role": message.role, "content": message.content} for message in messages]
        with self._lock:
            encoded = self._tokenizer.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=True, return_dict=True
            )
        return list(encoded["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens left out."""
        with self._lock:
            text: str = self._tokenizer.decode(list(ids), skip_special_tokens=True)
            return text


def estimate_tokens(messages: Sequence[ChatMessage]) -> int:
    """A tokenizer-free estimate of a chat prompt's tokens (see CHARS_PER_TOKEN)."""
    return TOKENS_PER_PROMPT + sum(
        TOKENS_PER_MESSAGE + math.ceil(len(message.content) / CHARS_PER_TOKEN) for message in messages
    )
