"""Hand-made passages for the core's unit tests."""

from __future__ import annotations

from knowledge.types import Passage


def passage(
    path: str,
    text: str,
    *,
    title: str = "",
    heading: str = "",
    similarity: float | None = 0.6,
    score: float = 0.03,
) -> Passage:
    return Passage(
        chunk_id=f"{path}#{abs(hash(text)) % 10_000}",
        source="handbook",
        path=path,
        title=title or path.rsplit("/", 1)[-1].removesuffix(".md").title(),
        heading=heading,
        url=f"file:///handbook/{path}",
        text=text,
        score=score,
        principals=frozenset({"everyone"}),
        similarity=similarity,
    )


VACATION = passage(
    "people/vacation.md",
    "Full-time employees get 25 days of paid vacation per year. "
    "Contractors are not eligible for paid vacation. "
    "Unused days carry over until March 31 of the next year.",
    title="Vacation policy",
    heading="Allowance",
)
EXPENSES = passage(
    "finance/expenses.md",
    "Submit expenses in Expensify within 30 days. Meals while travelling are reimbursed up to 60 EUR per day.",
    title="Expenses",
    heading="Claims",
)
LAPTOPS = passage(
    "it/laptops.md",
    "- New hires receive a MacBook Pro on their first day.\n- Laptops are replaced every three years.",
    title="Laptops",
    heading="Hardware",
)
