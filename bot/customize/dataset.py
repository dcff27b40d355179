"""`lore customize dataset`: the training set, built from the index, curated files and feedback.

Written to `<home>/datasets/<UTC timestamp>/` as `train.jsonl`, `validation.jsonl`,
`test.jsonl` (one `Example.to_record()` per line) and `card.json` (what went in: counts per
split, kind, origin and folder, redactions, gaps, the files' sha256 and the dataset's hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.agent import MAX_PROMPT_TOKENS
from bot.core.glossary import Glossary
from bot.customize.curated import load_curated
from bot.customize.derivation import derive_pairs
from bot.customize.examples import Example, RaftBuilder, RedactionLedger, Seed
from bot.customize.feedback_seeds import harvest_feedback
from bot.customize.redaction import Redactor
from bot.customize.splitting import SPLITS, deduplicate, split_by_document
from bot.model.base import ChatMessage
from bot.private_files import make_private, private_folder
from bot.store.answers import AnswerLog
from bot.store.feedback import FeedbackStore
from knowledge.config import RetrievalSettings
from knowledge.errors import LoreError
from knowledge.knowledge_base import KnowledgeBase
from knowledge.types import EVERYONE, SearchFilters

if TYPE_CHECKING:
    from bot.customize.teacher import Teacher

log = logging.getLogger(__name__)

CARD_FILE = "card.json"


class DatasetError(LoreError):
    """A dataset cannot be built or read."""


@dataclass(frozen=True)
class DatasetOptions:
    include_restricted: bool = False  # also documents not readable by everyone (loud warning)
    redact_emails: bool = False
    redact_phones: bool = False
    # Examples with only distractors and the "not covered" reply. At 0.2 an adapter trained on
    # the handbook refused 58% of answerable held-out questions; at 0.05, 8% (the agent's
    # evidence-strength judge does most of the abstaining before the model runs).
    distractor_share: float = 0.05
    validation_share: float = 0.1
    test_share: float = 0.1
    # The prompt's budget; training adds the answer to it. The CLI passes the agent's own
    # (`bot.core.prompt.prompt_budget` for the configured model).
    max_prompt_tokens: int = MAX_PROMPT_TOKENS
    curated: tuple[Path, ...] = ()
    use_feedback: bool = True
    # `customize.admins`: whose feedback counts on anyone's answer (others': their own only).
    feedback_admins: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetCard:
    """What a dataset holds and where it came from (card.json)."""

    folder: Path
    created: str
    hash: str  # sha256 over the split files' hashes: names the dataset in adapter metadata
    splits: dict[str, int]
    by_kind: dict[str, int]
    by_origin: dict[str, int]
    by_folder: dict[str, int]
    not_covered: int  # examples whose target is the "not covered" reply
    documents: dict[str, int]  # used, excluded_restricted
    redactions: dict[str, int]
    gaps: list[dict[str, str]]
    skipped: dict[str, int]
    files: dict[str, str]  # file name → sha256
    options: dict[str, Any] = field(default_factory=dict)
    teacher: dict[str, Any] = field(default_factory=dict)  # model and counts; {} when offline

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data

    @classmethod
    def read(cls, folder: Path) -> DatasetCard:
        """The card of the dataset in `folder`."""
        try:
            data = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise DatasetError(
                f"{folder} holds no readable {CARD_FILE}: build a dataset with `lore customize dataset`."
            ) from error
        data["folder"] = folder
        try:
            return cls(**data)
        except TypeError as error:
            raise DatasetError(
                f"{folder / CARD_FILE} does not describe a dataset ({error}): build it again with "
                "`lore customize dataset`."
            ) from error


def build_dataset(
    knowledge: KnowledgeBase,
    out_root: Path,
    *,
    retrieval: RetrievalSettings,
    persona: str,
    glossary: Glossary | None,
    count_tokens: Callable[[Sequence[ChatMessage]], int],
    feedback: FeedbackStore | None = None,
    answers: AnswerLog | None = None,
    options: DatasetOptions = DatasetOptions(),
    now: datetime | None = None,
    teacher: Teacher | None = None,
) -> DatasetCard:
    """Build, split and write a dataset from what `knowledge` has indexed (and the feedback,
    when both stores are given); returns its card. `retrieval`, `persona`, `glossary` and
    `count_tokens` must be the agent's, so the prompts are the ones it builds at answer time.
    `teacher`: also ask it for questions about every chunk that goes in."""
    documents = {(record.source, record.path) for record in knowledge.documents()}
    if not documents:
        raise DatasetError("The index is empty: run `lore index` first.")
    readable = (
        documents
        if options.include_restricted
        else {(record.source, record.path) for record in knowledge.readable_documents(frozenset({EVERYONE}))}
    )
    if options.include_restricted:
        log.warning(
            "!!! --include-restricted: documents NOT readable by everyone go into this dataset. "
            "An adapter trained on it may repeat their contents to ANY employee. !!!"
        )
    ledger = RedactionLedger(Redactor(emails=options.redact_emails, phones=options.redact_phones))
    builder = RaftBuilder(
        knowledge.retriever,
        retrieval,
        persona,
        glossary,
        count_tokens,
        options.max_prompt_tokens,
        ledger,
        filters=None if options.include_restricted else SearchFilters(principals=frozenset({EVERYONE})),
        distractor_share=options.distractor_share,
    )
    seeds = list(_document_seeds(knowledge, sorted(readable), teacher))
    seeds += [
        Seed(pair.question, pair.answer, pair.kind, "curated", f"curated:{pair.file}")
        for pair in load_curated(options.curated)
    ]
    gaps: list[dict[str, str]] = []
    skipped: Counter[str] = Counter()
    if options.use_feedback and feedback is not None and answers is not None:
        harvest = harvest_feedback(feedback, answers, options.include_restricted, frozenset(options.feedback_admins))
        seeds += harvest.seeds
        gaps = [gap.to_dict() for gap in harvest.gaps]
        skipped.update(harvest.skipped)
    examples: list[Example] = []
    for seed in seeds:
        example = builder.build(seed)
        if example is None:
            skipped["right_passage_not_in_prompt"] += 1
        else:
            examples.append(example)
    unique = deduplicate(examples)
    skipped["duplicate_question"] += len(examples) - len(unique)
    if not unique:
        raise DatasetError(
            "No training examples could be derived: index documents readable by everyone "
            "(or pass --include-restricted), or add curated FAQ files with --curated."
        )
    split = split_by_document(unique, options.validation_share, options.test_share)
    card_fields = {
        "by_kind": dict(Counter(e.kind for e in unique)),
        "by_origin": dict(Counter(e.origin for e in unique)),
        "by_folder": dict(Counter(_folder(e.document) for e in unique)),
        "not_covered": sum(not e.covered for e in unique),
        "documents": {"used": len(readable), "excluded_restricted": len(documents) - len(readable)},
        "redactions": dict(ledger.counts),
        "gaps": gaps,
        "skipped": {reason: count for reason, count in skipped.items() if count},
        "options": _jsonable(asdict(options)),
        "teacher": teacher.report() if teacher is not None else {},
    }
    card = _write(out_root, split.parts(), card_fields, now or datetime.now(UTC))
    log.info(
        "Dataset %s: %d examples (train %d, validation %d, test %d) from %d documents, %d redactions, %d gaps",
        card.folder,
        len(unique),
        card.splits["train"],
        card.splits["validation"],
        card.splits["test"],
        len(readable),
        sum(ledger.counts.values()),
        len(gaps),
    )
    if teacher is not None:
        log.info("Teacher %s: %s", teacher.name, ", ".join(f"{k} {v}" for k, v in card.teacher.items() if k != "model"))
    return card


def load_examples(folder: Path, split: str) -> list[Example]:
    """The examples of one split of the dataset in `folder`."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    path = folder / f"{split}.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: build a dataset with `lore customize dataset`.") from error
    try:
        return [Example.from_record(json.loads(line)) for line in lines if line.strip()]
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{path} is damaged ({error}): build the dataset again.") from error


def latest_dataset(datasets_dir: Path) -> Path:
    """The newest dataset folder under `datasets_dir`."""
    found = sorted(p for p in datasets_dir.glob("*") if (p / CARD_FILE).is_file()) if datasets_dir.is_dir() else []
    if not found:
        raise DatasetError(f"No dataset in {datasets_dir}: run `lore customize dataset` first.")
    return found[-1]


def _document_seeds(
    knowledge: KnowledgeBase, documents: Sequence[tuple[str, str]], teacher: Teacher | None = None
) -> Iterator[Seed]:
    for source, path in documents:
        for golden in knowledge.document_passages(source, path):
            pairs = derive_pairs(golden.title, golden.heading, golden.text)
            if teacher is not None:
                # Origin `document`: the teacher's questions are about a document, and like the
                # derived ones a share of them is taught with distractors only.
                pairs = [*pairs, *teacher.pairs(golden.title, golden.heading, golden.text)]
            for pair in pairs:
                yield Seed(pair.question, pair.answer, pair.kind, "document", f"{source}:{path}", golden)


def _write(
    out_root: Path, parts: dict[str, tuple[Example, ...]], card_fields: dict[str, Any], now: datetime
) -> DatasetCard:
    private_folder(out_root)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    folder = out_root / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = out_root / f"{stamp}-{suffix}"
    # Written beside and renamed: a half-written dataset is never the "latest" one.
    partial = Path(tempfile.mkdtemp(prefix=f".{stamp}.", dir=out_root))
    files: dict[str, str] = {}
    for name, examples in parts.items():
        body = "".join(json.dumps(e.to_record(), ensure_ascii=False) + "\n" for e in examples)
        (partial / f"{name}.jsonl").write_text(body, encoding="utf-8")
        files[f"{name}.jsonl"] = hashlib.sha256(body.encode()).hexdigest()
    digest = hashlib.sha256("".join(f"{n}:{h}\n" for n, h in sorted(files.items())).encode()).hexdigest()
    card = DatasetCard(
        folder=folder,
        created=now.isoformat(),
        hash=digest,
        splits={name: len(examples) for name, examples in parts.items()},
        files=files,
        **card_fields,
    )
    data = card.to_dict()
    data.pop("folder")
    (partial / CARD_FILE).write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    make_private(partial)  # examples quote documents and corrections
    partial.rename(folder)
    return card


def _folder(document: str) -> str:
    path = document.split(":", 1)[-1]
    return path.split("/", 1)[0] if "/" in path else "."


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, Path) else value
