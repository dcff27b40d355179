"""The local backend: a transformers model on this machine's CPU or GPU, with LoRA adapters.

One worker thread owns the model and answers requests in arrival order; callers get an iterator
of text pieces fed through a queue. A lock shared by the worker and `use_adapter` means an adapter
never changes in the middle of an answer.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self, cast

import torch
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

from bot.errors import AdapterMismatchError, ConfigurationError, ModelError, ModelNotFoundError
from bot.model.adapters import AdapterRegistry, check_adapter_base, normalize_adapter
from bot.model.admission import RequestGate
from bot.model.base import ChatMessage, GenerationSettings
from bot.model.streaming import RepeatGuard, StreamDecoder
from bot.model.tokens import ChatTokenizer
from bot.model.weights import base_model_fingerprint, check_model_folder

if TYPE_CHECKING:
    from peft import PeftModel

log = logging.getLogger(__name__)


class _End(enum.Enum):
    DONE = enum.auto()


_DONE: Final = _End.DONE  # the last item of a request's pieces
# What the worker queues for the caller: text, the error that ended the request, then _DONE.
_Piece = str | BaseException | _End


@dataclass(frozen=True)
class _Job:
    messages: tuple[ChatMessage, ...]
    settings: GenerationSettings
    pieces: queue.SimpleQueue[_Piece] = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _LoadedAdapter:
    key: str  # peft's name for it; adapter names may contain '.', which peft's module keys may not
    version: int  # newest modification time of its files, to notice an adapter rewritten in place


class LocalModel:
    """A Hugging Face causal LM loaded in this process; implements `bot.model.base.Model`."""

    def __init__(
        self,
        folder: Path,
        *,
        name: str | None = None,
        adapters: AdapterRegistry | None = None,
        adapter: str | None = None,
        device: str = "auto",
        queue_size: int = 32,
        defaults: GenerationSettings | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        """Load the model in `folder` (weights, tokenizer with a chat template) and start answering.

        `adapters` is where `use_adapter` finds adapters by name; `adapter` is applied at once.
        `cpu_threads` sets torch's intra-op threads for the whole process (None: torch's
        default, one per core); on a CPU shared with other busy processes, 1 is often faster.
        """
        started = time.perf_counter()
        if cpu_threads is not None:
            torch.set_num_threads(cpu_threads)
        self._folder = check_model_folder(folder)
        self._name = name or self._folder.name
        self._device = _pick_device(device)
        self._gate = RequestGate(queue_size)
        self._defaults = defaults or GenerationSettings()
        self._adapters = adapters
        self._tokenizer = ChatTokenizer.from_folder(self._folder)
        try:
            self._model = AutoModelForCausalLM.from_pretrained(
                self._folder, dtype=torch.bfloat16 if self._device.type == "cuda" else torch.float32
            )
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"cannot load the model in {self._folder}: {exc}") from exc
        module: torch.nn.Module = self._model  # PreTrainedModel.to's @wraps hides its signature from mypy
        module.to(self._device).eval()
        self._eos = _eos_ids(self._tokenizer.eos_token_id, self._model.generation_config.eos_token_id)
        self._pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._eos[0]
        self._context_window = int(getattr(self._model.config, "max_position_embeddings", 2048))
        # Held while answering and while changing adapters.
        self._model_lock = threading.Lock()
        self._peft: PeftModel | None = None
        self._loaded: dict[str, _LoadedAdapter] = {}
        self._keys = itertools.count(1)
        self._adapter: str | None = None
        self._fingerprint: str | None = None
        self.use_adapter(adapter)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name=f"lore-model-{self._name}", daemon=True)
        self._worker.start()
        log.info(
            "Loaded %s from %s on %s in %.2f s (adapter: %s)",
            self._name,
            self._folder,
            self._device,
            time.perf_counter() - started,
            self._adapter or "none",
        )

    @property
    def name(self) -> str:
        """The base model's name."""
        return self._name

    @property
    def folder(self) -> Path:
        """The Hugging Face folder the base model was loaded from."""
        return self._folder

    @property
    def device(self) -> str:
        """Where the model runs ("cpu", "cuda", ...)."""
        return str(self._device)

    @property
    def adapter(self) -> str | None:
        """The adapter answering now, or None for the bare base model."""
        return self._adapter

    @property
    def context_window(self) -> int:
        """The model's `max_position_embeddings`: prompt and answer together."""
        return self._context_window

    @property
    def queue_depth(self) -> int:
        """Questions waiting or being answered now (for /healthz)."""
        return self._gate.depth

    def fingerprint(self) -> str:
        """`base_model_fingerprint()` of the base folder (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = base_model_fingerprint(self._folder)
        return self._fingerprint

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Tokens the chat-formatted prompt takes, generation prompt included."""
        return len(self._tokenizer.encode_chat(messages))

    def stream(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> Iterator[str]:
        """Queue a request and return an iterator over the answer's text as it is generated.

        Raises BusyError at once when `queue_size` requests are already waiting or running.
        Abandoning the iterator stops the generation.
        """
        if self._closed:
            raise ModelError("this model has been closed; start a new one")
        if not messages:
            raise ValueError("a prompt needs at least one message")
        job = _Job(tuple(messages), settings or self._defaults)
        self._gate.enter()
        self._jobs.put(job)
        return _Pieces(job)

    def generate(self, messages: Sequence[ChatMessage], settings: GenerationSettings | None = None) -> str:
        """The whole answer at once (`stream` joined)."""
        return "".join(self.stream(messages, settings))

    def use_adapter(self, name: str | None) -> None:
        """Answer with adapter `name` from now on (None or "base": the base model).

        Waits for the answer in progress, if any, to finish. An adapter rewritten on disk since it
        was loaded is loaded again.
        """
        name = normalize_adapter(name)
        with self._model_lock:
            if name is None:
                self._adapter = None
                return
            previous = self._loaded.get(name)
            key = self._ensure_loaded(name)
            assert self._peft is not None
            self._peft.set_adapter(key, inference_mode=True)
            if previous is not None and previous.key != key:
                self._peft.delete_adapter(previous.key)
            self._adapter = name
            log.info("Answering with adapter %s", name)

    def close(self) -> None:
        """Finish the queued requests and stop the worker thread."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
            self._worker.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if not job.cancelled.is_set():
                    with self._model_lock:
                        self._answer(job)
            except Exception as exc:  # handed to the caller, who re-raises it
                job.pieces.put(exc)
            finally:
                job.pieces.put(_DONE)
                self._gate.leave()

    def _answer(self, job: _Job) -> None:
        settings = job.settings
        prompt = self._tokenizer.encode_chat(job.messages)
        room = self._context_window - len(prompt)
        if room <= 0:
            raise ModelError(
                f"the prompt takes {len(prompt)} tokens, more than the model's context window of "
                f"{self._context_window}: send fewer passages or less history"
            )
        decoder = StreamDecoder(self._tokenizer.decode, settings.stop)
        sampling = settings.temperature > 0
        config = GenerationConfig(
            max_new_tokens=min(settings.max_new_tokens, room),
            do_sample=sampling,
            temperature=settings.temperature if sampling else None,
            top_p=None,
            top_k=None,
            repetition_penalty=settings.repetition_penalty,
            eos_token_id=self._eos,
            pad_token_id=self._pad,
        )
        input_ids = torch.tensor([prompt], device=self._device)
        guard = _Guard(len(prompt), settings.stop_on_repeated_ngram, decoder, job.cancelled)
        with torch.inference_mode(), self._adapter_scope():
            self._model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=config,
                streamer=_PieceStreamer(decoder, job.pieces),
                stopping_criteria=StoppingCriteriaList([guard]),
            )

    def _adapter_scope(self) -> contextlib.AbstractContextManager[object]:
        # LoRA layers live inside the base model's modules once loaded; the bare base model
        # answers with them switched off.
        if self._peft is not None and self._adapter is None:
            return self._peft.disable_adapter()
        return contextlib.nullcontext()

    def _ensure_loaded(self, name: str) -> str:
        if self._adapters is None:
            raise ConfigurationError(f"cannot use adapter {name!r}: this model was started without an adapters folder")
        info = self._adapters.info(name)
        check_adapter_base(info, self._folder, self._name, self.fingerprint)
        version = max(path.stat().st_mtime_ns for path in info.path.iterdir() if path.is_file())
        loaded = self._loaded.get(name)
        if loaded is not None and loaded.version == version:
            return loaded.key
        key = f"lore_adapter_{next(self._keys)}"
        self._load_peft(key, info.path, name)
        self._loaded[name] = _LoadedAdapter(key, version)
        return key

    def _load_peft(self, key: str, path: Path, name: str) -> None:
        from peft import PeftConfig, PeftModel

        try:
            if self._peft is None:
                config = PeftConfig.from_pretrained(str(path))
                config.inference_mode = True
                self._peft = PeftModel(self._model, config, adapter_name=key)
            self._peft.load_adapter(str(path), adapter_name=key, is_trainable=False)
        except (RuntimeError, ValueError, KeyError) as exc:
            self._discard(key)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdapterMismatchError(
                f"adapter {name!r} does not fit base model {self._name} ({reason}): it was trained "
                "on another base model; set model.base_model to that model, or train a new "
                "adapter with `lore customize train`"
            ) from exc

    def _discard(self, key: str) -> None:
        if self._peft is None or key not in self._peft.peft_config:
            return
        if len(self._peft.peft_config) == 1:
            self._model = self._peft.unload()
            self._peft = None
        else:
            self._peft.delete_adapter(key)


class _Pieces(Iterator[str]):
    """The caller's side of a request: its text pieces, and cancelling it by letting go.

    Closing it or dropping it, even before reading anything, tells the worker to stop.
    """

    def __init__(self, job: _Job) -> None:
        self._job = job
        self._finished = False

    def __next__(self) -> str:
        if self._finished:
            raise StopIteration
        piece = self._job.pieces.get()
        if piece is _DONE or isinstance(piece, BaseException):
            self._finished = True
            self._job.cancelled.set()
            if piece is _DONE:
                raise StopIteration
            raise piece
        return piece

    def close(self) -> None:
        """Stop the generation; nothing more will be read."""
        self._finished = True
        self._job.cancelled.set()

    def __del__(self) -> None:
        self._job.cancelled.set()


class _PieceStreamer(BaseStreamer):
    """Receives tokens from `generate()` and queues the text they add."""

    def __init__(self, decoder: StreamDecoder, pieces: queue.SimpleQueue[_Piece]) -> None:
        self._decoder = decoder
        self._pieces = pieces
        self._prompt_skipped = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_skipped:  # generate() hands over the prompt first
            self._prompt_skipped = True
            return
        self._send(self._decoder.add(value.reshape(-1).tolist()))

    def end(self) -> None:
        self._send(self._decoder.finish())

    def _send(self, text: str) -> None:
        if text:
            self._pieces.put(text)


class _Guard(StoppingCriteria):
    """Stops generation on a repeated n-gram, a stop string, or a caller who stopped reading."""

    def __init__(self, prompt_length: int, ngram: int, decoder: StreamDecoder, cancelled: threading.Event) -> None:
        self._seen = prompt_length
        self._repeats = RepeatGuard(ngram)
        self._decoder = decoder
        self._cancelled = cancelled

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None, **kwargs: Any
    ) -> torch.BoolTensor:
        for token in input_ids[0, self._seen :].tolist():
            self._repeats.add(token)
        self._seen = input_ids.shape[1]
        stop = self._repeats.tripped or self._decoder.stopped or self._cancelled.is_set()
        stops = torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)
        return cast(torch.BoolTensor, stops)  # torch's types have no dtype; transformers calls it BoolTensor


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as exc:
        raise ConfigurationError(f"model.device {device!r} is not a device: use auto, cpu or cuda") from exc
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError("model.device is cuda but no CUDA GPU is available: set model.device to auto or cpu")
    return chosen


def _eos_ids(*values: int | list[int] | None) -> list[int]:
    ids: list[int] = []
    for value in values:
        for token in value if isinstance(value, list) else [value]:
            if token is not None and token not in ids:
                ids.append(token)
    if not ids:
        raise ModelNotFoundError("the model defines no end-of-sequence token, so answers would never end")
    return ids
