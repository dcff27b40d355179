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


def result(
    question: EvalQuestion,
    retrieved,
    cited,
    answer,
    evidence,
    confident,
    total,
    tokens=0,
    generated="",
    generated_cited=(),
) -> EvalResult:
    timings = {"retrieval": 0.1, "prompt": 0.01, "generation": total - 0.2, "first_token": 0.5, "total": total}
    return EvalResult(
        question,
        tuple(retrieved),
        tuple(cited),
        answer,
        tuple(evidence),
        confident,
        timings,
        tokens,
        generated,
        tuple(generated_cited),
    )


def test_summary_metrics() -> None:
    vacation = EvalQuestion("Vacation days?", "people/vacation.md", (), ("25 days",))
    laptops = EvalQuestion("Laptop?", "it/laptops.md", ("it/faq.md",), ("MacBook",))
    meals = EvalQuestion("Meals?", "finance/expenses.md", (), ("60 EUR",))
    offtopic = EvalQuestion("World Cup?", None)
    offtopic2 = EvalQuestion("Weather?", None)
    results = [
        # right source first, right citation, answer correct
        result(
            vacation, ["people/vacation.md", "x.md"], ["people/vacation.md"], "You get 25 DAYS [1].", [], True, 2.0, 20
        ),
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


def test_the_models_own_text_is_measured_apart_from_what_was_shown() -> None:
    vacation = EvalQuestion("Vacation days?", "people/vacation.md", (), ("25 days",))
    laptops = EvalQuestion("Laptop?", "it/laptops.md", (), ("MacBook",))
    meals = EvalQuestion("Meals?", "finance/expenses.md", (), ("60 EUR",))
    quotes = '"Everyone gets a MacBook." [1]'
    results = [
        # the model's text passed the check and was shown
        result(
            vacation,
            ["people/vacation.md"],
            ["people/vacation.md"],
            "You get 25 days [1].",
            [],
            True,
            2.0,
            9,
            "You get 25 days [1].",
            ["people/vacation.md"],
        ),
        # its text failed the check: the quotes were shown (right), the text cited the wrong page
        result(
            laptops,
            ["x.md", "it/laptops.md"],
            ["it/laptops.md"],
            quotes,
            [],
            True,
            2.0,
            9,
            "A MacBook or a ThinkPad [1].",
            ["x.md"],
        ),
        # the judge abstained: the model was not asked
        result(meals, ["x.md"], [], "fallback", [], False, 0.5),
    ]
    report = summarize(results)
    assert report.answer_accuracy == pytest.approx(2 / 3)
    assert report.citation_accuracy == pytest.approx(2 / 3)
    assert report.model_answer_accuracy == pytest.approx(2 / 3)
    assert report.model_citation_accuracy == pytest.approx(1 / 3)
    assert report.generated_shown == pytest.approx(1 / 2)


def test_result_for_maps_the_models_citations_to_the_passages_it_was_given() -> None:
    from bot.core.evaluation import result_for
    from bot.types import Answer, Asker, Question
    from tests.core.passages import EXPENSES, VACATION

    question = Question("Meals?", Asker("U1"), "C1", "T1")
    answer = Answer(
        id="a1",
        question=question,
        text='"quote" [1]',
        citations=(),
        evidence=(),
        passages=(VACATION, EXPENSES),
        confident=True,
        model="m",
        adapter=None,
        generated="Up to 60 EUR [2], see also [1] and [5].",
    )
    got = result_for(EvalQuestion("Meals?", EXPENSES.path), answer)
    assert got.generated_cited == (EXPENSES.path, VACATION.path)
    assert got.model_cited_right and not got.generated_shown
