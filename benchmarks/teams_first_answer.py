"""How soon a Teams user sees the answer: one question at a time, in a personal chat (streamed)
and in a channel (typing, then one card), from a real handbook's index with the configured
(bundled) model, over Bot Framework activities on loopback.

    python benchmarks/teams_first_answer.py --corpus sourcegraph
    python benchmarks/teams_first_answer.py --corpus 18f --questions 20

The bot runs in this process (`lore serve`'s web app with the Teams routes, local mode); the
Bot Framework connector it replies to is the loopback mock from tests/support/. Per question:
from POSTing the activity to the first message carrying the answer (the final card; with a
model that writes, the drafted one). With `agent.generate = "auto"` and the model never
measured, that message is the excerpts. Baseline in the same run: the agent alone, in process,
on the same questions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from answer_quality import SETS, corpus_services  # noqa: E402

from bot.core.evaluation import percentile  # noqa: E402
from bot.types import Asker, Question  # noqa: E402
from tests.support.bot_connector import (  # noqa: E402
    ConnectorMock,
    TeamsConversation,
    TeamsUser,
    ask_via_teams,
    teams_test_client,
)


async def main(corpus: str, home: Path | None, count: int) -> int:
    loaded = corpus_services(corpus, home)
    if loaded is None:
        return 0
    services, asked = loaded
    # Three disjoint groups (baseline, personal chat, channel): a sentence's vector is embedded
    # once per process, so a question asked twice would be answered faster the second time.
    answerable = [item.question.question for item in asked if item.question.answerable]
    groups = [answerable[g::3][:count] for g in range(3)]
    questions = groups[0]
    try:
        in_process = []
        for number, text in enumerate(questions):
            answer = services.agent.answer(Question(text, Asker("bench"), "bench", f"t{number}"), ())
            in_process.append(answer.timings.get("first", answer.timings["total"]))
        places = {
            "personal chat (streamed)": TeamsConversation("a:bench-personal"),
            "channel (typing, one card)": TeamsConversation("19:bench@thread.tacv2", "channel", root="1"),
        }
        seen: dict[str, list[float]] = {}
        fallback = services.settings.agent.fallback_text
        async with ConnectorMock() as connector:
            client = await teams_test_client(services)
            try:
                await ask_via_teams(client, connector, answerable[-1], TeamsUser())  # warm-up
                for (label, place), group in zip(places.items(), groups[1:], strict=True):
                    for number, text in enumerate(group):
                        if place.root is not None:
                            place = TeamsConversation(place.id, "channel", root=str(1000 + number))
                        # A user per question: the per-user rate limit is not what is measured.
                        user = TeamsUser(f"29:bench-{len(seen.get(label, []))}-{label[:4]}", "Bench", f"aad-{number}")
                        started = time.perf_counter()
                        turn = await ask_via_teams(client, connector, text, user, place)
                        # The answer with its sources, or the "not covered" reply: nothing else.
                        shown = turn.final.card_text or turn.final.body.get("text", "")
                        assert "**Sources**" in shown or fallback in shown, shown
                        seen.setdefault(label, []).append(time.perf_counter() - started)
            finally:
                await client.close()
    finally:
        services.close()
    print(f"\nTeams, {corpus} handbook, {services.model.name}, {len(questions)} questions a place, one at a time")
    rows = {"agent in process (baseline)": in_process, **seen}
    for label, values in rows.items():
        print(f"  {label:30} first answer p50 {percentile(values, 50):.2f} s  p95 {percentile(values, 95):.2f} s")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(SETS), default="sourcegraph")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--questions", type=int, default=20)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.corpus, arguments.home, arguments.questions)))
