"""What goes into the agent and what comes out. Adapters build a `Question` from a platform
event and render an `Answer`; nothing else crosses between them and the core.

Every layer of the bot shares these (the store records answers, identity resolves askers), so
they live at the bottom of `bot`, importing only `knowledge.types`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from knowledge.types import Passage

Platform = Literal["cli", "slack", "teams"]
# Who can read the reply: only the asker (DM, personal chat, ephemeral) or others too.
Place = Literal["private", "channel", "group", "thread"]


@dataclass(frozen=True)
class Asker:
    user_id: str
    display_name: str = ""
    email: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Question:
    text: str
    asker: Asker
    conversation_id: str  # channel / chat id
    thread_id: str  # thread the answer lives in; follow-ups share it
    platform: Platform = "cli"
    place: Place = "private"


@dataclass(frozen=True)
class Citation:
    number: int  # the passage number the answer refers to, [n]
    source: str  # path relative to the source root
    title: str
    heading: str
    url: str


@dataclass(frozen=True)
class Evidence:
    """A sentence quoted verbatim from a cited passage, shown beneath the generated text."""

    source: str
    quote: str
    title: str = ""
    url: str = ""


@dataclass(frozen=True)
class Answer:
    id: str
    question: Question
    text: str  # the generated text only (or the quotes / fallback text when generation failed its check)
    citations: tuple[Citation, ...]
    evidence: tuple[Evidence, ...]
    # What the answer draws on: the passages the model was given, then any retrieved passage
    # beyond the prompt's budget that its quotes come from (when the quotes are the answer).
    passages: tuple[Passage, ...]
    confident: bool  # False = the knowledge base does not cover it (fallback reply)
    model: str
    adapter: str | None
    # Seconds from the question's arrival: retrieval, first (the first useful answer: the
    # excerpts or the fallback), prompt, generation, first_token, total.
    timings: dict[str, float] = field(default_factory=dict)
    # Everything retrieval returned, best first (a superset of `passages`; kept on fallback too).
    retrieved: tuple[Passage, ...] = ()
    generated_tokens: int = 0  # tokens the model generated (0 on fallback), for tokens/s
    # The model's own text (citations of passages it was not given removed), whether or not it
    # passed the grounding check and was shown; empty when the model was not asked.
    generated: str = ""
    # The evidence was middling: the answer leads with a hedge ("the closest I found").
    hedged: bool = False
    # The judge's measure of the evidence (best sentence similarity), None when not measured.
    evidence_score: float | None = None
    # The principals retrieval was filtered by (None: unfiltered), so the answer log can show
    # admins who could have seen what.
    readers: frozenset[str] | None = None


@dataclass(frozen=True)
class Turn:
    """One earlier question in a thread and the answer it got."""

    user_id: str
    question: str
    answer: str
    sources: tuple[str, ...] = ()  # paths the answer cited, re-checked by later turns
