"""A tiny share (public handbook pages, one HR-only page, a secret-bearing page), indexed for
real (MiniLM, Chroma, SQLite catalog), plus the answer log and feedback store, for the
customization tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.settings import AgentSettings
from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.feedback import FeedbackStore
from knowledge.config import FolderSourceSettings, IndexSettings, RetrievalSettings
from knowledge.knowledge_base import KnowledgeBase
from knowledge.types import EVERYONE, SourceFile

PAGES = {
    "people/time-off.md": """# Time off

## Paid time off

Full-time employees get 27 days of paid time off per year. PTO accrues monthly.

## Carry-over

You may carry over at most 5 unused days into the next year. Carried-over days expire on 31 March.
""",
    "people/faq.md": """# People FAQ

Q: When is payday?
A: Salaries are paid on the 25th of every month.

Q: Who approves my expenses?
A: Your manager approves expenses in Ledgerline within 5 working days.
""",
    "engineering/on-call.md": """# On-call

## Handoff

Beacon shifts hand off on Mondays at 10:00 CET. The outgoing engineer writes a handoff note.

## Paging

Dockyard is the deployment pipeline for the fleet software. Pages go to the primary first.
""",
    "engineering/ci.md": """# Continuous integration

## Tokens

The CI bot uses the token xoxb-1234567890-abcdefghijklmnop to post results. The admin password: Tr0ub4dor3 is rotated monthly.
Ask the platform team (platform@tidewell.example) for access.
""",
    "offices/rotterdam.md": """# Rotterdam office

## Opening hours

The Rotterdam office opens at 07:30 and closes at 19:00 on weekdays.

## Parking

Parking is free in the garage under the building; register your plate at reception.
""",
    "offices/porto.md": """# Porto office

## Lunch

Lunch is served at 12:30 on Tuesdays and Thursdays. The Porto kitchen closes at 15:00.
""",
    "hr/salaries.md": """# Salary bands

## Engineering bands

The staff engineer band is 98,000 to 121,000 euros. Band reviews happen in October.
""",
}
RESTRICTED_PREFIX = "hr/"


def hr_only(file: SourceFile) -> frozenset[str]:
    """Documents under hr/ are readable by the HR group only; the rest by everyone."""
    return frozenset({"group:hr"}) if file.relative_path.startswith(RESTRICTED_PREFIX) else frozenset({EVERYONE})


@dataclass(frozen=True)
class Share:
    home: Path
    docs: Path
    knowledge: KnowledgeBase
    database: Database
    answers: AnswerLog
    feedback: FeedbackStore
    retrieval: RetrievalSettings
    agent: AgentSettings


def write_share(folder: Path) -> Path:
    for relative, text in PAGES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="package")
def share(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Share]:
    root = tmp_path_factory.mktemp("customize")
    docs = write_share(root / "docs")
    home = root / "home"
    # Fewer passages than the share holds: most prompts then leave out the page with secrets,
    # which the dataset redacts and the agent's prompt does not, so the two can be compared.
    retrieval = RetrievalSettings(k=5)
    knowledge = KnowledgeBase(
        home, [FolderSourceSettings(name="handbook", path=docs)], IndexSettings(), retrieval, permissions=hr_only
    )
    database = Database(f"sqlite:///{home / 'lore.db'}")
    knowledge.refresh()
    try:
        yield Share(
            home, docs, knowledge, database, AnswerLog(database), FeedbackStore(database), retrieval, AgentSettings()
        )
    finally:
        knowledge.close()
        database.close()
