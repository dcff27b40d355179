"""Turning generated tokens into streamed text, and the loop guards every backend shares."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence


class StopScanner:
    """Passes text through until the first stop string, which is cut off with everything after it.

    Text that could be the beginning of a stop string is held back until the next piece shows
    whether it is one, so no part of a stop string is ever emitted.
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Take the next piece of text; return what can safely be shown now."""
        if self.stopped:
            return ""
        buffer = self._pending + text
        hits = [index for stop in self._stops if (index := buffer.find(stop)) >= 0]
        if hits:
            self.stopped = True
            self._pending = ""
            return buffer[: min(hits)]
        hold = self._held_suffix(buffer)
        self._pending = buffer[len(buffer) - hold :]
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """The text held back at the end of generation (it turned out not to be a stop string)."""
        text, self._pending = ("" if self.stopped else self._pending), ""
        return text

    def _held_suffix(self, buffer: str) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest


class StreamDecoder:
    """Decodes a growing list of token ids into text pieces that join to the whole answer.

    Each step decodes all ids so far and emits what is new, the way transformers'
    TextIteratorStreamer does; text ending in U+FFFD is held back because a multi-byte
    character is split across tokens and the next token completes it.
    """

    def __init__(self, decode: Callable[[list[int]], str], stops: Sequence[str] = ()) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._seen = 0
        self._scanner = StopScanner(stops)

    @property
    def stopped(self) -> bool:
        """True once a stop string has appeared; later tokens are ignored."""
        return self._scanner.stopped

    def add(self, ids: Sequence[int]) -> str:
        """Take newly generated ids; return the text that can be shown now."""
        self._ids.extend(ids)
        text = self._decode(self._ids)
        if text.endswith("\ufffd"):
            return ""
        return self._emit(text)

    def finish(self) -> str:
        """The rest of the text once generation has ended."""
        return self._emit(self._decode(self._ids)) + self._scanner.flush()

    def _emit(self, text: str) -> str:
        new, self._seen = text[self._seen :], max(self._seen, len(text))
        return self._scanner.feed(new)


class RepeatGuard:
    """Detects a generation loop: the last `size` items already occurred earlier in the output.

    Fed one item at a time (token ids for local models, words for remote ones); remembers every
    n-gram seen, so each step costs O(size).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: list[Hashable] = []
        self._seen: set[tuple[Hashable, ...]] = set()
        self.tripped = False

    def add(self, item: Hashable) -> bool:
        """Record the next item; True if the output has started repeating itself."""
        if self._size <= 0 or self.tripped:
            return self.tripped
        self._items.append(item)
        if len(self._items) < self._size:
            return False
        gram = tuple(self._items[-self._size :])
        if gram in self._seen:
            self.tripped = True
        self._seen.add(gram)
        return self.tripped
