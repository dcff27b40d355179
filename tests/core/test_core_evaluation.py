import json
from pathlib import Path

import pytest

from bot.core.evaluation import (
    EvalQuestion,
    EvalResult,
    QuestionFileError,
    load_questions,
    percentile,
    same_path,
    summarize,
)


def write_lines(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_load_questions(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "q.jsonl",
        [
            {"question": "How many vacation days?", "source": "people/vacation.md", "must_contain": ["25"]},
            {"question": "Who won the 1998 World Cup?", "source": None},
            {"question": " Laptops? ", "source": "it/laptops.md", "also_ok": ["it/faq.md"]},
        ],
    )
    questions = load_questions(path)
    assert questions[0] == EvalQuestion("How many vacation days?", "people/vacation.md", (), ("25",))
    assert not questions[1].answerable
    assert questions[2].question == "Laptops?"
    assert questions[2].accepted_sources == ("it/laptops.md", "it/faq.md")


@pytest.mark.parametrize(
    "line, problem",
    [
        ("not json", "line 2"),
        ('{"source": "a.md"}', "question"),
        ('{"question": "q", "source": 3}', "source"),
        ('{"question": "q", "source": "a.md", "must_contain": "25"}', "must_contain"),
        ("[1, 2]", "JSON object"),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok?", "source": null}\n' + line + "\n")
    with pytest.raises(QuestionFileError, match=problem):
        load_questions(path)


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(QuestionFileError, match="Cannot read"):
        load_questions(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(QuestionFileError, match="no questions"):
        load_questions(tmp_path / "empty.jsonl")


def test_same_path_matches_on_segment_boundaries() -> None:
    assert same_path("handbook/people/vacation.md", "people/vacation.md")
    assert same_path("./people/vacation.md", "people/vacation.md")
    assert not same_path("people/paid-vacation.md", "vacation.md")
    assert not same_path("", "vacation.md")


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 95) == 95.0


def result(question: EvalQuestion, retrieved, cited, answer, evidence, confident, total, tokens=0) -> EvalResult:
    timings = {"retrieval": 0.1, "prompt": 0.01, "generation": total - 0.2, "first_token": 0.5, "total": total}
    return EvalResult(question, tuple(retrieved), tuple(cited), answer, tuple(evidence), confident, timings, tokens)


def test_summary_metrics() -> None:
    vacation = EvalQuestion("Vacation days?", "people/vacation.md", (), ("25 days",))
    laptops = EvalQuestion("Laptop?", "it/laptops.md", ("it/faq.md",), ("MacBook",))
    meals = EvalQuestion("Meals?", "finance/expenses.md", (), ("60 EUR",))
    offtopic = EvalQuestion("World Cup?", None)
    offtopic2 = EvalQuestion("Weather?", None)
    results = [
        # right source first, right citation, answer correct
        result(vacation, ["people/vacation.md", "x.md"], ["people/vacation.md"], "You get 25 DAYS [1].", [], True, 2.0, 20),
        # accepted alternative at rank 2 and cited; must_contain only in the evidence
        result(laptops, ["x.md", "it/faq.md"], ["it/faq.md"], "See [2].", ["Everyone gets a MacBook."], True, 4.0, 10),
        # wrongly abstained: retrieval missed
        result(meals, ["x.md"], [], "fallback", [], False, 0.5),
        result(offtopic, ["x.md"], [], "fallback", [], False, 0.4),
        result(offtopic2, ["x.md"], ["x.md"], "Sunny [1].", [], True, 3.0, 5),
    ]
    report = summarize(results)
    assert (report.count, report.answerable, report.unanswerable) == (5, 3, 2)
    assert report.hit_at_1 == pytest.approx(1 / 3)
    assert report.hit_at_5 == pytest.approx(2 / 3)
    assert report.mrr == pytest.approx((1 + 0.5 + 0) / 3)
    assert report.answer_accuracy == pytest.approx(1 / 3)
    assert report.answer_evidence_accuracy == pytest.approx(2 / 3)
    assert report.citation_accuracy == pytest.approx(2 / 3)
    assert report.abstention == pytest.approx(0.5)
    assert report.wrong_abstention == pytest.approx(1 / 3)
    assert report.latency_p50 == 2.0
    assert report.latency_p95 == 4.0
    assert report.stages["retrieval"] == {"p50": 0.1, "p95": 0.1}
    assert report.tokens_per_second == pytest.approx(35 / (1.8 + 3.8 + 2.8))
    assert json.loads(json.dumps(report.to_dict()))["citation_accuracy"] == pytest.approx(2 / 3)


def test_summary_of_only_unanswerable_questions_leaves_answer_metrics_empty() -> None:
    report = summarize([result(EvalQuestion("World Cup?", None), [], [], "fallback", [], False, 0.3)])
    assert report.abstention == 1.0
    assert report.hit_at_1 is None and report.citation_accuracy is None and report.tokens_per_second is None
