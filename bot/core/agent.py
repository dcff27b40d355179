"""The agent: a question in, a grounded answer with citations and quoted evidence out.

retrieve (the follow-up resolved against the thread) → judge the evidence → prompt (fitted to
the context window) → stream the model's text → keep only real citations → quote the best
sentences → check the text against the passages. No side effects: the caller passes the
thread's earlier turns in, and records the answer and remembers the turn (`bot.conversation`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot.core.citations import (
    cited_numbers,
    drop_invalid_citations,
    drop_unsupported_citations,
)
from bot.core.evidence import (
    EmbeddingScorer,
    OverlapScorer,
    Quote,
    RecentSentenceVectors,
    SentenceScorer,
    TextEmbedder,
    select_evidence,
)
from bot.core.excerpt import ExcerptRules, excerpts_text, select_excerpts
from bot.core.followup import resolve_followup
from bot.core.glossary import Glossary
from bot.core.grounding import is_degenerate, ungrounded_terms, unsupported_share
from bot.core.judge import EvidenceJudge, PassageSearch, Verdict, searchable_text
from bot.core.links import LinkPolicy, defuse_links, foreign_links, without_urls
from bot.core.prompt import NOT_COVERED, Prompt, fit_prompt, prompt_budget
from bot.core.text import content_terms
from bot.model.base import ChatMessage, GenerationSettings, Model
from bot.settings import AgentSettings
from bot.types import Answer, Citation, Evidence, Question, Turn
from knowledge.config import RetrievalSettings
from knowledge.types import Passage, SearchFilters

log = logging.getLogger(__name__)

TextCallback = Callable[[str], None]
DraftCallback = Callable[[Answer], None]
# Whether the model (name, adapter) writes answers; see bot.model.writing.WritingPolicy.
WritesPolicy = Callable[[str, str | None], bool]
FiltersFor = Callable[[Question], SearchFilters | None]
# Generated text with more than this share of content words that no passage (nor the question)
# contains has drifted from the evidence: the quotes are shown instead.
MAX_UNSUPPORTED_SHARE = 0.25
# The whole prompt is read before the first answer token appears. With this cap (the weakest
# passages past it are dropped) the bundled model's time to first token on a busy 2-core
# machine fell from 6.0 s to 4.1 s (p50 over two runs of benchmarks/answer_quality.py).
MAX_PROMPT_TOKENS = 1024


class Agent:
    """Answers questions from the knowledge base. Thread-safe: `answer` keeps no state on the
    agent and writes nowhere; the model is safe to share between threads."""

    def __init__(
        self,
        retriever: PassageSearch,
        model: Model,
        settings: AgentSettings,
        retrieval: RetrievalSettings,
        glossary: Glossary | None = None,
        filters_for: FiltersFor | None = None,
        generation: GenerationSettings | None = None,
        embedder: TextEmbedder | None = None,
        scorer: SentenceScorer | None = None,
        max_prompt_tokens: int = MAX_PROMPT_TOKENS,
        writes: WritesPolicy | None = None,
        excerpt_rules: ExcerptRules | None = None,
        links: LinkPolicy | None = None,
    ) -> None:
        """`embedder` (the index's) measures evidence strength when retrieval gives no
        similarity, and picks evidence sentences by meaning; `scorer` overrides the latter.
        `writes` decides whether the model writes (None: always); otherwise the excerpts
        are the answer. `links`: which links in the model's text and in quoted passages stay
        links (None: none do; citations carry their own links)."""
        self.retriever = retriever
        self.model = model
        self.settings = settings
        self.retrieval = retrieval
        self.glossary = glossary
        self.filters_for = filters_for
        self.generation = generation or GenerationSettings()
        # Evidence strength and quote picking embed the same sentences: once, with this.
        self.embedder = RecentSentenceVectors(embedder) if embedder is not None else None
        self.max_prompt_tokens = max_prompt_tokens
        self.writes = writes
        self.excerpt_rules = excerpt_rules or ExcerptRules()
        self.links = links or LinkPolicy()
        self.scorer = scorer or (EmbeddingScorer(self.embedder) if self.embedder is not None else OverlapScorer())
        self.judge = EvidenceJudge(retriever, settings, glossary, self.embedder)

    def answer(
        self,
        question: Question,
        history: Sequence[Turn],
        on_text: TextCallback | None = None,
        on_draft: DraftCallback | None = None,
    ) -> Answer:
        """Answer `question` after the thread's earlier `history` (oldest first, already
        limited to the turns this asker may see: `bot.conversation.memory`). Writes nowhere.

        The evidence answer (excerpts of the passages that answer, with their sources) is
        ready within a second; when the active model is trusted to write
        (`writes`), `on_draft` receives it at once and `on_text` the model's growing text, and
        the returned answer is the model's when its text passes the grounding check.

        Blocking (seconds on CPU when the model writes): call it from a worker thread in async
        code."""
        started = time.perf_counter()
        query = resolve_followup(question.text, history)
        filters = self.filters_for(question) if self.filters_for is not None else None
        retrieved = self.retrieve(question, query, filters)
        verdict = self.judge(query, retrieved, filters)
        timings = {"retrieval": time.perf_counter() - started}

        if verdict.level == "not covered":
            answer = self._fallback(question, retrieved, timings, started, verdict)
            _notify(on_text, answer.text)
            return self._finish(answer, filters)

        # Quotes answer what was asked now: a follow-up's own words ("and for contractors?")
        # pick the sentence, the earlier question only when the follow-up has no content words.
        focus = question.text if content_terms(question.text) else query
        shown = self._evidence_answer(question, focus, retrieved, verdict, timings, started)
        if not self.model_writes():
            return self._finish(shown, filters)
        timings["first"] = shown.timings["first"]
        _notify(on_draft, shown)

        prompt_started = time.perf_counter()
        prompt = fit_prompt(
            question.text,
            retrieved,
            history,
            self.settings.persona,
            self.glossary,
            self.model.count_tokens,
            budget=prompt_budget(
                self.max_prompt_tokens,
                self.model.context_window,
                self.generation.max_new_tokens,
            ),
        )
        timings["prompt"] = time.perf_counter() - prompt_started

        generation_started = time.perf_counter()
        raw, first_token = self._generate(prompt, on_text, started)
        timings["generation"] = time.perf_counter() - generation_started
        timings["first_token"] = first_token if first_token is not None else time.perf_counter() - started
        generated_tokens = _count_generated(self.model, raw)
        # The model's own text, citing only passages it was given: shown, or kept for the log.
        generated = drop_invalid_citations(raw, range(1, len(prompt.passages) + 1))

        if NOT_COVERED in raw.lower():
            # The model read the passages and says they do not answer: trust it over retrieval.
            answer = self._fallback(question, retrieved, timings, started, verdict, prompt.passages)
        elif self._is_grounded(generated, prompt, question, query):
            answer = self._written_answer(question, focus, prompt, generated, retrieved, verdict, timings, started)
        else:
            answer = replace(shown, timings={**shown.timings, **timings, "total": time.perf_counter() - started})
        # The drafted answer's id: its feedback buttons rate what replaces it.
        return self._finish(
            replace(answer, id=shown.id, generated_tokens=generated_tokens, generated=generated),
            filters,
        )

    def retrieve(
        self,
        question: Question,
        query: str | None = None,
        filters: SearchFilters | None = None,
    ) -> list[Passage]:
        """The passages retrieval finds for `query` (default: the question's text), best first,
        restricted by `filters` (default: `filters_for(question)`)."""
        if filters is None and self.filters_for is not None:
            filters = self.filters_for(question)
        return list(
            self.retriever.search(
                query or question.text,
                k=self.retrieval.k,
                filters=filters,
                max_per_document=self.retrieval.max_per_document,
            )
        )

    def model_writes(self) -> bool:
        """Whether the active model writes answers now (else the excerpts are the answer)."""
        return self.writes is None or self.writes(self.model.name, self.model.adapter)

    def _generate(self, prompt: Prompt, on_text: TextCallback | None, started: float) -> tuple[str, float | None]:
        pieces: list[str] = []
        first_token: float | None = None
        for piece in self.model.stream(prompt.messages, self.generation):
            if not piece:
                continue
            if first_token is None:
                first_token = time.perf_counter() - started
            pieces.append(piece)
            # Shown while it grows, before any check: no foreign link may be clickable even then.
            _notify(on_text, defuse_links("".join(pieces), self.links))
        return "".join(pieces).strip(), first_token

    def _evidence_answer(
        self,
        question: Question,
        focus: str,
        retrieved: Sequence[Passage],
        verdict: Verdict,
        timings: dict[str, float],
        started: float,
    ) -> Answer:
        """The answer made of excerpts of the retrieved passages: ready without the model."""
        excerpts = select_excerpts(focus, list(enumerate(retrieved, start=1)), self.scorer, self.excerpt_rules)
        lead = self.settings.hedge_text if verdict.level == "hedged" else ""
        cited = sorted({excerpt.number for excerpt in excerpts}) or [1]
        elapsed = time.perf_counter() - started
        return Answer(
            id=_new_id(),
            question=question,
            text=defuse_links(excerpts_text(excerpts, lead) if excerpts else lead or retrieved[0].text, self.links),
            citations=tuple(_citation(number, retrieved[number - 1]) for number in cited),
            evidence=tuple(
                Evidence(e.passage.path, defuse_links(e.text, self.links), e.passage.title, e.passage.url)
                for e in excerpts
            ),
            passages=tuple(retrieved),
            confident=True,
            hedged=verdict.level == "hedged",
            evidence_score=verdict.score,
            model=self.model.name,
            adapter=self.model.adapter,
            timings={**timings, "first": elapsed, "total": elapsed},
            retrieved=tuple(retrieved),
        )

    def _is_grounded(self, text: str, prompt: Prompt, question: Question, query: str) -> bool:
        """Whether the model's text keeps to its passages (no unknown number or name, few
        unknown words, no loop, no link to a host outside the sources): only then is it shown
        instead of the excerpts. Words inside URLs count on neither side: a URL built from a
        passage's words must not make the text look grounded."""
        if foreign_links(text, self.links):
            return False
        given = prompt.passages
        known = [without_urls(p.text) for p in given] + [p.title for p in given] + [p.heading for p in given]
        known += [question.text, query, self.settings.persona]
        if self.glossary is not None:
            known.append(self.glossary.render())
        text = without_urls(text)
        return not (
            is_degenerate(text)
            or ungrounded_terms(text, known)
            or unsupported_share(text, known) > MAX_UNSUPPORTED_SHARE
        )

    def _written_answer(
        self,
        question: Question,
        focus: str,
        prompt: Prompt,
        generated: str,
        retrieved: Sequence[Passage],
        verdict: Verdict,
        timings: dict[str, float],
        started: float,
    ) -> Answer:
        """The model's text, backed by quotes from the passages it cites (else every one).
        Citations whose passage does not hold the citing sentence's content are dropped."""
        given = prompt.passages
        text = drop_unsupported_citations(
            generated,
            {number: searchable_text(p) for number, p in enumerate(given, start=1)},
            asked=f"{question.text}\n{focus}",
        )
        cited = cited_numbers(text) or list(range(1, len(given) + 1))
        quotes = select_evidence(focus, [(number, given[number - 1]) for number in cited], scorer=self.scorer)
        cited = cited_numbers(text) or sorted({quote.number for quote in quotes}) or [1]
        return Answer(
            id=_new_id(),
            question=question,
            text=defuse_links(text, self.links),
            citations=tuple(_citation(number, given[number - 1]) for number in cited),
            evidence=tuple(self._evidence(quote) for quote in quotes),
            passages=given,
            confident=True,
            hedged=verdict.level == "hedged",
            evidence_score=verdict.score,
            model=self.model.name,
            adapter=self.model.adapter,
            timings={**timings, "total": time.perf_counter() - started},
            retrieved=tuple(retrieved),
        )

    def _evidence(self, quote: Quote) -> Evidence:
        passage = quote.passage
        return Evidence(
            source=passage.path,
            quote=defuse_links(quote.sentence, self.links),
            title=passage.title,
            url=passage.url,
        )

    def _fallback(
        self,
        question: Question,
        retrieved: Sequence[Passage],
        timings: dict[str, float],
        started: float,
        verdict: Verdict,
        given: Sequence[Passage] = (),
    ) -> Answer:
        elapsed = time.perf_counter() - started
        return Answer(
            id=_new_id(),
            question=question,
            text=self.settings.fallback_text,
            citations=(),
            evidence=(),
            passages=tuple(given),
            confident=False,
            evidence_score=verdict.score,
            model=self.model.name,
            adapter=self.model.adapter,
            timings={"first": elapsed, **timings, "total": elapsed},
            retrieved=tuple(retrieved),
        )

    def _finish(self, answer: Answer, filters: SearchFilters | None) -> Answer:
        # The principals the answer was filtered by, so admins can audit who saw what.
        return replace(answer, readers=filters.principals if filters is not None else None)


def _citation(number: int, passage: Passage) -> Citation:
    return Citation(number, passage.path, passage.title, passage.heading, passage.url)


def _new_id() -> str:
    return uuid.uuid4().hex


def _notify(callback: Callable[[Any], None] | None, value: object) -> None:
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        log.exception("answer callback failed; the answer continues")


def _count_generated(model: Model, text: str) -> int:
    if not text:
        return 0
    empty = model.count_tokens([ChatMessage("assistant", "")])
    return max(0, model.count_tokens([ChatMessage("assistant", text)]) - empty)
