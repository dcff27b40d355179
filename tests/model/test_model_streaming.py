"""Stop strings, incremental decoding and the loop guard, on plain data."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from bot.model.streaming import RepeatGuard, StopScanner, StreamDecoder


def feed_all(scanner: StopScanner, pieces: list[str]) -> str:
    return "".join(scanner.feed(piece) for piece in pieces) + scanner.flush()


def test_stop_string_split_across_pieces_is_cut_with_everything_after() -> None:
    scanner = StopScanner(["<|im_end|>"])
    shown = [scanner.feed(piece) for piece in ["Hello <|im", "_end|> and more", " text"]]
    assert shown == ["Hello ", "", ""]
    assert scanner.stopped


def test_text_that_only_looks_like_a_stop_string_is_released() -> None:
    scanner = StopScanner(["\nQuestion:"])
    assert scanner.feed("a\nQues") == "a"
    assert scanner.feed("tions remain") == "\nQuestions remain"
    assert feed_all(StopScanner(["\nQuestion:"]), ["ends with \nQue"]) == "ends with \nQue"


def test_earliest_of_several_stop_strings_wins() -> None:
    assert feed_all(StopScanner(["STOP", "END"]), ["one END two STOP"]) == "one "


@given(text=st.text(alphabet="abEND \n", max_size=40), cuts=st.lists(st.integers(0, 40), max_size=6))
def test_any_split_gives_the_text_before_the_first_stop(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(min(cut, len(text)) for cut in cuts)})
    pieces = [text[a:b] for a, b in pairwise(bounds)]
    assert feed_all(StopScanner(["END", "\n\n"]), pieces) == text.split("END")[0].split("\n\n")[0]


def test_decoder_holds_back_a_split_multibyte_character() -> None:
    raw = "héllo".encode()

    def decode(ids: list[int]) -> str:  # one "token" per byte, like byte-level BPE
        return bytes(ids).decode("utf-8", errors="replace")

    decoder = StreamDecoder(decode)
    pieces = [decoder.add([byte]) for byte in raw] + [decoder.finish()]
    assert "\ufffd" not in "".join(pieces)
    assert "".join(pieces) == "héllo"
    assert pieces[1] == ""  # the first byte of "é" alone


def test_decoder_stops_at_stop_string() -> None:
    decoder = StreamDecoder(lambda ids: "".join(chr(i) for i in ids), stops=["##"])
    text = "".join(decoder.add([ord(c)]) for c in "ab#c##de") + decoder.finish()
    assert text == "ab#c"
    assert decoder.stopped


def test_repeat_guard_trips_when_an_ngram_recurs() -> None:
    guard = RepeatGuard(3)
    tripped = [guard.add(item) for item in [1, 2, 3, 4, 1, 2, 5, 1, 2, 3]]
    assert tripped == [False] * 9 + [True]


def test_repeat_guard_off_with_size_zero() -> None:
    guard = RepeatGuard(0)
    assert not any(guard.add(1) for _ in range(50))
