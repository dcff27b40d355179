import threading
from dataclasses import replace
from pathlib import Path

import pytest

from bot.conversation.memory import ConversationMemory, answer_and_remember
from bot.core.agent import Agent
from bot.core.glossary import Glossary
from bot.core.prompt import build_messages
from bot.model.base import GenerationSettings
from bot.settings import AgentSettings
from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.threads import ThreadMemory
from bot.types import Answer, Asker, Question
from knowledge.config import RetrievalSettings
from knowledge.embeddings import Embedder
from knowledge.types import SearchFilters
from tests.core.doubles import ListRetriever, ScriptedModel
from tests.core.passages import EXPENSES, LAPTOPS, VACATION, passage
from tests.support.injection import (
    ATTACK_REPLY,
    ATTACKER_HOST,
    SOURCES_PREFIX,
    STOLEN,
    attacked_answer,
)

# What stands in for failed text when the vacation passage answers: its label, its citation,
# and the answering sentence with its neighbours.
VACATION_EXCERPT = (
    "*Vacation policy > Allowance* [1]\nFull-time employees get 25 days of paid vacation per year. "
    "Contractors are not eligible for paid vacation. Unused days carry over until March 31 of the next year."
)

FALLBACK = "Not in the docs: ask #people-help."


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'lore.db'}")
    yield database
    database.close()


class RememberingAgent:
    """The agent paired with the conversation memory, as the conversation layer uses it: the
    thread's history in, the answer logged and the turn remembered out."""

    def __init__(self, agent: Agent, memory: ConversationMemory) -> None:
        self.agent = agent
        self.memory = memory
        self.answers = memory.answers
        self.threads = memory.threads

    def answer(self, question: Question, on_text=None, on_draft=None) -> Answer:
        return answer_and_remember(self.agent, self.memory, question, on_text, on_draft)

    def __getattr__(self, name: str) -> object:
        return getattr(self.agent, name)


def make_agent(db: Database, reply: str, passages=(VACATION, EXPENSES), **options) -> RememberingAgent:
    agent = Agent(
        retriever=ListRetriever(passages),
        model=options.pop("model", None) or ScriptedModel(reply),
        settings=AgentSettings(fallback_text=FALLBACK),
        retrieval=RetrievalSettings(k=5),
        **options,
    )
    return RememberingAgent(agent, ConversationMemory(AnswerLog(db), ThreadMemory(db, max_turns=4)))


def ask(text: str, thread: str = "T1", user: str = "U1") -> Question:
    return Question(text, Asker(user, "Ada"), conversation_id="C1", thread_id=thread, platform="slack")


def test_cited_answer_with_evidence_streaming_log_and_memory(db: Database) -> None:
    agent = make_agent(db, "No. Contractors are not eligible for paid vacation [1].")
    seen: list[str] = []
    answer = agent.answer(ask("Are contractors eligible for vacation?"), on_text=seen.append)
    assert answer.confident
    assert answer.text == "No. Contractors are not eligible for paid vacation [1]."
    assert [(c.number, c.source) for c in answer.citations] == [(1, VACATION.path)]
    assert answer.evidence[0].quote == "Contractors are not eligible for paid vacation."
    assert answer.evidence[0].source == VACATION.path
    assert answer.passages == (VACATION, EXPENSES) == answer.retrieved
    assert seen[0] == "No." and seen[-1].strip() == answer.text and len(seen) > 3
    assert set(answer.timings) == {"retrieval", "first", "prompt", "generation", "first_token", "total"}
    assert answer.generated_tokens > 0
    stored = agent.answers.get(answer.id)
    assert stored.answer == answer.text and stored.citations[0]["source"] == VACATION.path
    (turn,) = agent.threads.history("slack", "C1", "T1")
    assert turn.question == "Are contractors eligible for vacation?" and turn.sources == (VACATION.path,)


def test_prompt_holds_persona_glossary_numbered_passages_and_question(db: Database) -> None:
    model = ScriptedModel("Yes [1].")
    agent = make_agent(db, "", model=model, glossary=Glossary((("PTO", "paid time off"),)))
    agent.answer(ask("How much PTO do I get?"))
    (messages,) = model.prompts
    assert messages[0].content.startswith(AgentSettings().persona)
    assert "- PTO: paid time off" in messages[0].content
    assert "[1] Vacation policy > Allowance" in messages[-1].content
    assert "[2] Expenses > Claims" in messages[-1].content
    assert messages[-1].content.endswith("Question: How much PTO do I get?")


def test_citation_to_a_passage_not_given_is_removed(db: Database) -> None:
    agent = make_agent(db, "Contractors are not eligible for paid vacation [1][7].")
    answer = agent.answer(ask("Are contractors eligible for vacation?"))
    assert "[7]" not in answer.text
    assert [c.number for c in answer.citations] == [1]


def test_uncited_answer_cites_the_passage_its_evidence_comes_from(db: Database) -> None:
    agent = make_agent(db, "Meals are reimbursed up to 60 EUR per day.", passages=(VACATION, EXPENSES))
    answer = agent.answer(ask("How much are travel meals reimbursed?"))
    assert [(c.number, c.source) for c in answer.citations] == [(2, EXPENSES.path)]
    assert "60 EUR per day" in answer.evidence[0].quote


def test_ungrounded_text_falls_back_to_the_excerpts(db: Database) -> None:
    agent = make_agent(db, "Contractors get 40 days, approved by Gandalf [1].")
    answer = agent.answer(ask("Are contractors eligible for vacation?"))
    assert answer.confident
    # The best sentence with its neighbours, under the passage's title and heading.
    assert answer.text.startswith(VACATION_EXCERPT)
    assert [c.source for c in answer.citations][0] == VACATION.path


def test_the_models_own_text_is_kept_whether_shown_or_not(db: Database) -> None:
    shown = make_agent(db, "Contractors are not eligible for paid vacation [1][7].").answer(
        ask("Are contractors eligible for vacation?")
    )
    assert shown.generated == shown.text == "Contractors are not eligible for paid vacation [1]."
    replaced = make_agent(db, "Contractors get 40 days, approved by Gandalf [2][9].").answer(
        ask("Are contractors eligible for vacation?", thread="T2")
    )
    assert replaced.text.startswith(VACATION_EXCERPT)
    assert replaced.generated == "Contractors get 40 days, approved by Gandalf [2]."


def test_excerpts_replacing_failed_text_come_from_every_retrieved_passage(db: Database) -> None:
    # The failed text cites [1]; the excerpt that answers is passage 2's.
    agent = make_agent(db, "Meals cost 99 EUR at the Ritz [1].")
    answer = agent.answer(ask("How much are travel meals reimbursed per day?"))
    assert answer.text.startswith("*Expenses > Claims* [2]\n")
    assert "reimbursed up to 60 EUR per day." in answer.text
    assert answer.evidence[0].source == EXPENSES.path and 2 in [c.number for c in answer.citations]


def test_quotes_may_come_from_a_retrieved_passage_past_the_prompts_budget(db: Database) -> None:
    # A budget with room for one passage: the expenses passage is retrieved but not given.
    model = ScriptedModel("Meals cost 99 EUR at the Ritz [1].")
    agent = make_agent(db, "", model=model, max_prompt_tokens=90)
    answer = agent.answer(ask("How much are travel meals reimbursed per day?"))
    (messages,) = model.prompts
    assert "[1] Vacation policy" in messages[-1].content and "[2]" not in messages[-1].content
    assert "*Expenses > Claims* [2]\n" in answer.text and "60 EUR per day." in answer.text
    assert answer.passages == (VACATION, EXPENSES)  # what the answer draws on, in its numbering
    assert (2, EXPENSES.path) in [(c.number, c.source) for c in answer.citations]
    stored = agent.answers.get(answer.id)
    assert [p["given_to_model"] for p in stored.passages] == [True, True]


def test_looping_text_falls_back_to_the_quotes(db: Database) -> None:
    agent = make_agent(db, "vacation is vacation is " * 10)
    answer = agent.answer(ask("Are contractors eligible for vacation?"))
    assert answer.text.startswith(VACATION_EXCERPT)


def test_weak_evidence_gets_the_fallback_without_calling_the_model(db: Database) -> None:
    weak = [replace(VACATION, similarity=0.12), replace(EXPENSES, similarity=0.2)]
    model = ScriptedModel("Paris [1].")
    agent = make_agent(db, "", passages=weak, model=model)
    seen: list[str] = []
    answer = agent.answer(ask("What is the capital of France?"), on_text=seen.append)
    assert not answer.confident
    assert answer.text == FALLBACK and seen == [FALLBACK]
    assert answer.citations == () and answer.evidence == () and answer.passages == ()
    assert answer.retrieved == tuple(weak)
    assert model.prompts == []
    assert agent.answers.get(answer.id).confident is False


def test_no_passages_at_all_gets_the_fallback(db: Database) -> None:
    answer = make_agent(db, "x", passages=()).answer(ask("Anything?"))
    assert not answer.confident and answer.text == FALLBACK


def test_model_saying_not_covered_gets_the_fallback(db: Database) -> None:
    answer = make_agent(db, "Not covered.").answer(ask("Is there a gym in the office?"))
    assert not answer.confident and answer.text == FALLBACK and answer.citations == ()
    assert answer.passages == (VACATION, EXPENSES)
    assert answer.generated == "Not covered."


def test_keyword_coverage_judges_passages_without_similarity(db: Database) -> None:
    keyword_only = [replace(VACATION, similarity=None)]
    covered = make_agent(db, "Contractors are not eligible [1].", passages=keyword_only)
    assert covered.answer(ask("Are contractors eligible for paid vacation?")).confident
    assert not covered.answer(ask("Which submarine has the biggest periscope?", thread="T2")).confident


def test_followup_is_resolved_for_retrieval_and_history_is_in_the_prompt(db: Database) -> None:
    model = ScriptedModel("Contractors are not eligible for paid vacation [1].")
    agent = make_agent(db, "", model=model)
    first = agent.answer(ask("How many vacation days do employees get?"))
    agent.answer(ask("And for contractors?"))
    queries = [query for query, _ in agent.retriever.queries]
    assert queries == [
        "How many vacation days do employees get?",
        "How many vacation days do employees get? And for contractors?",
    ]
    second_prompt = model.prompts[1]
    assert [m.role for m in second_prompt] == ["system", "user", "assistant", "user"]
    assert second_prompt[1].content == "How many vacation days do employees get?"
    assert second_prompt[2].content == first.text
    # Another thread starts fresh.
    agent.answer(ask("And for contractors?", thread="T9"))
    assert agent.retriever.queries[-1][0] == "And for contractors?"


def test_filters_for_restricts_retrieval(db: Database) -> None:
    filters = SearchFilters(principals=frozenset({"everyone"}))
    agent = make_agent(db, "Yes [1].", filters_for=lambda question: filters)
    agent.answer(ask("Are contractors eligible for vacation?"))
    assert agent.retriever.queries == [("Are contractors eligible for vacation?", filters)]


def test_small_context_window_drops_the_weakest_passages(db: Database) -> None:
    text = "Are contractors eligible for vacation?"
    persona = AgentSettings().persona
    one_passage = ScriptedModel("").count_tokens(build_messages(text, [VACATION], [], persona))
    window = one_passage + GenerationSettings().max_new_tokens
    model = ScriptedModel("Contractors are not eligible [1].", context_window=window)
    agent = make_agent(db, "", passages=(VACATION, EXPENSES, LAPTOPS), model=model)
    answer = agent.answer(ask(text))
    assert answer.passages == (VACATION,)
    assert answer.retrieved == (VACATION, EXPENSES, LAPTOPS)
    assert model.count_tokens(model.prompts[0]) == one_passage


def test_concurrent_answers_are_all_logged(db: Database) -> None:
    agent = make_agent(db, "Contractors are not eligible for paid vacation [1].")
    answers = []
    threads = [
        threading.Thread(target=lambda n=n: answers.append(agent.answer(ask("Contractors vacation?", thread=f"T{n}"))))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({a.id for a in answers}) == 8
    assert all(agent.answers.get(a.id) is not None for a in answers)


def test_a_failing_on_text_callback_does_not_lose_the_answer(db: Database) -> None:
    def broken(text: str) -> None:
        raise RuntimeError("chat.update failed")

    agent = make_agent(db, "Contractors are not eligible [1].")
    answer = agent.answer(ask("Contractors vacation?"), broken)
    assert answer.confident and agent.answers.get(answer.id) is not None


@pytest.mark.parametrize(
    "question, covered",
    [
        ("Are contractors eligible for paid vacation?", True),  # the words are there
        ("Which submarine has the biggest periscope?", False),  # the words are not
        ("Do contractors get a sabbatical?", False),  # names what no document mentions
        ("Are contractors eligible for vacations?", True),  # plural of a known word
        ("Do contractors get vacation at HQ?", False),  # an unknown acronym counts
        ("Do contractors get vacation in a row?", True),  # short words do not
    ],
)
def test_without_an_embedder_evidence_strength_is_shared_words(db: Database, question: str, covered: bool) -> None:
    agent = make_agent(db, "x", passages=[replace(VACATION, similarity=None)])
    assert agent.judge.is_covered(question, agent.retriever.passages) is covered
    very_similar = [replace(VACATION, similarity=0.6)]
    assert agent.judge.is_covered(question, very_similar)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    return Embedder(cache_dir=tmp_path_factory.mktemp("onnx"), threads=2)


PETS = passage(
    "people/pets.md",
    "Dogs are welcome in the Lisbon office on Fridays. Cats stay at home.",
    title="Pets at work",
)


@pytest.mark.parametrize(
    "question, covered",
    [
        ("How many days of paid vacation do full-time employees get?", True),  # one sentence says it
        ("How much PTO do I get each year?", True),  # jargon the glossary spells out
        ("How many holidays do full-time staff get annually?", True),  # a paraphrase
        ("What is the guest wifi password?", False),  # nothing close
        ("Which submarine has the biggest periscope?", False),
        # A topic the passages share only in general: vacation, but never a sabbatical.
        ("Do employees get a paid sabbatical after five years?", False),
        # "dogs" is in one passage, but not in the passages retrieved: a rare, missing topic.
        ("Can I bring my dog to the office?", False),
    ],
)
def test_with_an_embedder_the_best_sentence_judges_evidence_strength(
    db: Database, embedder: Embedder, question: str, covered: bool
) -> None:
    glossary = Glossary((("PTO", "paid time off"),))
    agent = make_agent(db, "x", passages=[VACATION, EXPENSES, PETS], embedder=embedder, glossary=glossary)
    retrieved = [VACATION, EXPENSES]
    assert agent.judge.is_covered(question, retrieved) is covered, agent.judge.best_sentence_similarity(
        question, retrieved
    )


def test_an_answer_embeds_each_sentence_once(db: Database, embedder: Embedder) -> None:
    embedded: list[str] = []

    class Counting:
        def embed_documents(self, texts: list[str]) -> object:
            embedded.extend(texts)
            return embedder.embed_documents(texts)

        def embed_query(self, text: str) -> object:
            return embedder.embed_query(text)

    # The text fails its check: evidence strength and the quotes both read the sentences.
    agent = make_agent(db, "Contractors get 40 days [1].", embedder=Counting())
    answer = agent.answer(ask("Are contractors eligible for paid vacation?"))
    assert answer.text.startswith(VACATION_EXCERPT)
    assert "Contractors are not eligible for paid vacation." in embedded
    assert len(embedded) == len(set(embedded))


def test_prompt_is_capped_at_max_prompt_tokens(db: Database) -> None:
    text = "Are contractors eligible for vacation?"
    one_passage = ScriptedModel("").count_tokens(build_messages(text, [VACATION], [], AgentSettings().persona))
    model = ScriptedModel("Contractors are not eligible [1].", context_window=100_000)
    agent = make_agent(db, "", passages=(VACATION, EXPENSES, LAPTOPS), model=model, max_prompt_tokens=one_passage)
    assert agent.answer(ask(text)).passages == (VACATION,)


def test_glossary_spells_out_the_terms_a_text_names() -> None:
    glossary = Glossary((("PTO", "paid time off"), ("Beacon", "the on-call rotation")))
    assert glossary.expand("How much pto? Who is on beacon, beaconing?") == (
        "How much pto (paid time off)? Who is on beacon (the on-call rotation), beaconing?"
    )


def test_an_exfiltration_link_written_by_the_model_is_neither_shown_nor_streamed() -> None:
    attacked = attacked_answer()
    assert attacked.answer.generated == ATTACK_REPLY  # the model obeyed the document
    shown = [attacked.answer.text, *(e.quote for e in attacked.answer.evidence)]
    shown += attacked.streamed + [draft.text for draft in attacked.drafts]
    for text in shown:
        assert ATTACKER_HOST not in text and STOLEN not in text
    # A link to a host outside the sources fails the grounding check: the excerpts answer.
    assert attacked.answer.text.startswith("*IT portal > Passwords* [1]")
    assert attacked.streamed[-1] == "Reset your password at the IT portal [1]."


def test_a_link_to_the_sources_own_host_stays_a_link() -> None:
    from bot.core.links import LinkPolicy

    reply = "Reset your password at [the IT portal](https://drive.example.com/handbook/it/portal.md) [1]."
    attacked = attacked_answer(reply, links=LinkPolicy.for_prefixes([SOURCES_PREFIX]))
    assert attacked.answer.text == reply


def test_words_inside_a_url_do_not_ground_the_models_text(db: Database) -> None:
    # The number and the name are only in a URL of the passage, never in its words.
    handbook = passage(
        "people/contractors.md",
        "Contractors follow their own leave rules, see "
        "https://drive.example.com/handbook/contractors-40-days-Gandalf.md for details.",
        title="Contractors",
    )
    agent = make_agent(db, "Contractors get 40 days, approved by Gandalf [1].", passages=(handbook,))
    answer = agent.answer(ask("How much leave do contractors get?"))
    assert answer.generated == "Contractors get 40 days, approved by Gandalf [1]."
    assert answer.text.startswith("*Contractors* [1]\n"), "the excerpts answer, not the model"


def test_a_citation_to_a_passage_that_does_not_hold_the_sentence_is_not_shown(db: Database) -> None:
    # Passage 2 (expenses) says nothing about vacation: citing it lends the sentence its authority.
    agent = make_agent(
        db, "Contractors are not eligible for paid vacation [2]. Meals are reimbursed up to 60 EUR per day [2]."
    )
    answer = agent.answer(ask("Are contractors eligible for vacation, and what about meals?"))
    assert answer.text == (
        "Contractors are not eligible for paid vacation. Meals are reimbursed up to 60 EUR per day [2]."
    )
    assert [c.number for c in answer.citations] == [2]


def test_a_citation_after_the_full_stop_is_checked_against_its_own_sentence(db: Database) -> None:
    agent = make_agent(db, "Contractors are not eligible for paid vacation. [1, 2]")
    answer = agent.answer(ask("Are contractors eligible for vacation?"))
    assert answer.text == "Contractors are not eligible for paid vacation. [1]"
    assert [c.number for c in answer.citations] == [1]
