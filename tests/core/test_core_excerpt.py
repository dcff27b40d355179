from bot.core.evidence import OverlapScorer
from bot.core.excerpt import ExcerptRules, candidate_sentences, excerpt_around, excerpts_text, select_excerpts
from tests.core.passages import EXPENSES, LAPTOPS, VACATION, passage

SCORER = OverlapScorer()

LEAVE = passage(
    "people/leave.md",
    "Parental leave is for every parent. It lasts 20 weeks at full pay. "
    "It can be split into three blocks. Tell your manager a month ahead.",
    title="Leave",
    heading="Parental leave",
)
BANDS = passage(
    "people/bands.md",
    "Salary bands by level.\n\n| Level | Band |\n| --- | --- |\n| Senior engineer | 98,000 to 121,000 |\n"
    "| Staff engineer | 120,000 to 150,000 |",
    title="Pay",
    heading="Bands",
)


def test_the_best_sentence_keeps_its_neighbours_and_its_label() -> None:
    (excerpt,) = select_excerpts("How many weeks of full pay?", [(1, LEAVE)], SCORER)
    assert excerpt.sentence == "It lasts 20 weeks at full pay."
    # "It" needs the sentence before; the whole short passage fits.
    assert excerpt.text.startswith("Parental leave is for every parent. It lasts 20 weeks")
    assert excerpt.label == "Leave > Parental leave"
    assert excerpts_text([excerpt]).startswith("*Leave > Parental leave* [1]\nParental leave is")


def test_neighbours_nearest_first_within_the_length_limit() -> None:
    rules = ExcerptRules(max_chars=70)
    (excerpt,) = select_excerpts("How many weeks of full pay?", [(1, LEAVE)], SCORER, rules)
    assert excerpt.text == "Parental leave is for every parent. It lasts 20 weeks at full pay."
    narrow = ExcerptRules(before=0, after=0)
    (alone,) = select_excerpts("How many weeks of full pay?", [(1, LEAVE)], SCORER, narrow)
    assert alone.text == "It lasts 20 weeks at full pay."


def test_a_table_row_comes_with_its_header_row_not_its_neighbours() -> None:
    (excerpt,) = select_excerpts("What is the band of a staff engineer?", [(1, BANDS)], SCORER)
    assert excerpt.text == "| Level | Band |\n| Staff engineer | 120,000 to 150,000 |"


def test_one_excerpt_per_document_best_first_and_a_limit() -> None:
    twice = passage(VACATION.path, "Contractors may buy extra vacation days.", title="Vacation policy")
    numbered = [(1, VACATION), (2, twice), (3, EXPENSES), (4, LAPTOPS)]
    question = "Are contractors eligible for paid vacation, and are laptops replaced?"
    excerpts = select_excerpts(question, numbered, SCORER)
    assert [e.number for e in excerpts] == [1, 4]  # the vacation file once, then the laptops
    assert len(select_excerpts(question, numbered, SCORER, ExcerptRules(limit=1))) == 1
    # A document sharing nothing with the question is never shown, whatever the limit.
    assert [e.number for e in select_excerpts("paid vacation?", numbered, SCORER)] == [1]


def test_retrievals_rank_breaks_near_ties() -> None:
    numbered = [(1, EXPENSES), (2, VACATION)]
    weighted = ExcerptRules(limit=1, rank_weight=10.0)
    (excerpt,) = select_excerpts("Are contractors eligible for paid vacation?", numbered, SCORER, weighted)
    assert excerpt.number == 1  # the weight outvotes the sentence scores here
    (unweighted,) = select_excerpts(
        "Are contractors eligible for paid vacation?", numbered, SCORER, ExcerptRules(limit=1, rank_weight=0.0)
    )
    assert unweighted.number == 2


def test_nothing_quotable_gives_no_excerpt() -> None:
    assert select_excerpts("anything", [(1, passage("a.md", "Hi."))], SCORER) == []


def test_another_rankings_sentence_is_cut_the_same_way() -> None:
    # What benchmarks/query_likelihood.py does with the sentence the model ranks first.
    assert "It lasts 20 weeks at full pay." in candidate_sentences(LEAVE)
    around = excerpt_around(3, LEAVE, "It can be split into three blocks.", ExcerptRules(before=1, after=0))
    assert (around.number, around.text) == (3, "It lasts 20 weeks at full pay. It can be split into three blocks.")
    (table_row,) = [s for s in candidate_sentences(BANDS) if s.startswith("| Staff")]
    assert excerpt_around(1, BANDS, table_row).text == "| Level | Band |\n" + table_row
