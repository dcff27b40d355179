"""Training sequences: the agent's prompt tokens exactly as the model sees them at answer time,
then the target reply as the chat template closes an assistant turn. Labels are -100 on the
prompt, so the loss is on the answer tokens alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.customize.examples import Example
from bot.model.base import ChatMessage
from bot.model.tokens import ChatTokenizer

IGNORE = -100  # the label value torch's cross-entropy leaves out


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def answer_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


class ExampleTokenizer:
    """Turns examples into token sequences with a model's tokenizer and chat template."""

    def __init__(self, tokenizer: Any) -> None:
        self._raw = tokenizer
        self._chat = ChatTokenizer(tokenizer)  # the answer-time encoder: same prompt tokens

    def encode(self, example: Example) -> TokenizedExample:
        prompt = self._chat.encode_chat(example.messages)
        answer = self.answer_ids(example.messages, example.target)
        return TokenizedExample(tuple(prompt + answer), tuple([IGNORE] * len(prompt) + answer))

    def answer_ids(self, messages: Sequence[ChatMessage], target: str) -> list[int]:
        """The tokens of `target` as the template writes an assistant turn, up to and including
        its end-of-turn token (what generation stops on)."""
        conversation = [{"role": m.role, "content": m.content} for m in messages]
        opened = self._raw.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        closed = self._raw.apply_chat_template(
            [*conversation, {"role": "assistant", "content": target}], tokenize=False
        )
        if not closed.startswith(opened):
            raise ValueError("the chat template does not extend the prompt with the assistant turn")
        ids = list(self._raw.encode(closed[len(opened) :], add_special_tokens=False))
        eos = self._raw.eos_token_id
        if eos in ids:
            ids = ids[: ids.index(eos) + 1]  # the template's trailing newline is not generated
        elif eos is not None:
            ids.append(eos)
        return ids
