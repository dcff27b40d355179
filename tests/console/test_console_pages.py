"""The console's pages and their JSON (#17): the overview's figures are the index's, the answer
log is searchable and filterable, private answers stay with their viewers (and each view is
logged), corrections reach training data only once an admin approved them, and the sources
page explains who may read a document."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import Services
from bot.cli.serve_command import console_lookups, platform_routes
from bot.console.background import BackgroundAction
from bot.console.routes import console_routes
from bot.customize.feedback_seeds import harvest_feedback
from bot.customize.promotion import store_evaluation
from bot.model.adapters import AdapterRegistry
from bot.server import create_web_app
from bot.store.answer_views import AnswerViews
from bot.store.feedback import Feedback
from knowledge.lock import RefreshLock
from knowledge.sync import Progress, RefreshReport
from tests.console.conftest import (
    ADMIN_TOKEN,
    ConsoleRig,
    browser,
    console_settings,
    free_port,
    serve_console,
    sign_in,
    with_console,
)
from tests.console.identity_provider import IdentityProvider
from tests.console.seed import CORRECTION, PRIVATE_SECRET, Seeded, record_answer, seed
from tests.support.tiny_model import build_tiny_adapter, build_tiny_model

TOKEN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def api(rig: ConsoleRig, page: str, **params: str) -> Any:
    async with aiohttp.ClientSession() as session:
        async with session.get(rig.url + "/admin/api/" + page, headers=TOKEN, params=params) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def csrf_of(session: aiohttp.ClientSession, rig: ConsoleRig, page: str) -> str:
    async with session.get(rig.url + page) as response:
        found = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    assert found is not None
    return found[1]


async def test_the_overview_shows_the_indexs_documents_chunks_and_the_logs_shares(rig: ConsoleRig) -> None:
    overview = await api(rig, "overview")
    status = rig.services.knowledge.status()
    per_source = rig.services.knowledge.catalog.documents_per_source()
    assert overview["index"]["documents"] == status.documents > 0
    assert overview["index"]["chunks"] == status.chunks > 0
    (handbook,) = overview["sources"]
    assert handbook["documents"] == per_source["handbook"][0] and handbook["chunks"] == status.chunks
    assert handbook["readable_by_everyone"] == handbook["documents"]  # no ACL file: public
    shares = overview["last_30_days"]
    assert shares["answers"] >= 4 and shares["not_covered"] >= 1 and shares["helpful"] >= 1
    assert shares["not_helpful"] >= 2
    assert len(overview["questions_per_day"]) == 30 and overview["questions_per_day"][-1]["questions"] >= 4
    assert overview["model"]["name"]
    async with browser() as session:
        await sign_in(session, rig, "it@example.com")
        async with session.get(rig.url + "/admin/overview") as response:
            page = await response.text()
    assert f'<b id="index-documents">{status.documents}</b>' in page and "<svg" in page


async def test_the_answer_log_is_searched_and_filtered(rig: ConsoleRig, seeded: Seeded) -> None:
    found = await api(rig, "questions", q=seeded.tag)
    ids = {entry["id"] for entry in found["answers"]}
    # The bearer token is no private-answer viewer: the private answer is not listed.
    assert ids == {seeded.answered, seeded.not_covered, seeded.corrected}
    not_covered = await api(rig, "questions", q=seeded.tag, confident="no")
    assert [entry["id"] for entry in not_covered["answers"]] == [seeded.not_covered]
    liked = await api(rig, "questions", q=seeded.tag, feedback="helpful")
    assert [entry["id"] for entry in liked["answers"]] == [seeded.answered]
    (entry,) = liked["answers"]
    assert (
        entry["citations"][0]["source"] == "people/time-off.md" and entry["quotes"] and entry["timings"]["total"] == 0.8
    )
    assert (await api(rig, "questions", q=seeded.tag, platform="teams"))["total"] == 0
    assert (await api(rig, "questions", q=seeded.tag, since="2000-01-01", until="2000-12-31"))["total"] == 0
    assert (await api(rig, "questions", q="%"))["total"] == 0  # a wildcard typed in is a character
    assert (await api(rig, "questions", q="PARKING GARAGE " + seeded.tag.upper()))["total"] == 1  # any case
    async with browser() as session:
        await sign_in(session, rig, "it@example.com")
        async with session.get(rig.url + "/admin/questions", params={"q": seeded.tag, "confident": "no"}) as response:
            page = await response.text()
    assert "Where is the parking garage" in page and "carry over" not in page


async def test_private_answers_are_listed_only_to_their_viewers_and_each_reading_is_logged(
    rig: ConsoleRig, seeded: Seeded
) -> None:
    views = AnswerViews(rig.services.database)
    remark = f"it should have said {PRIVATE_SECRET} {seeded.tag}"
    rig.services.feedback.record(
        Feedback(answer_id=seeded.private, platform="slack", user_id="U_ADA", rating="not_helpful", text=remark)
    )
    async with browser() as helpdesk:  # an admin through group:it, not a private-answer viewer
        await sign_in(helpdesk, rig, "helpdesk@example.com")
        async with helpdesk.get(rig.url + "/admin/api/questions", params={"q": seeded.tag}) as response:
            listed = await response.json()
        async with helpdesk.get(rig.url + f"/admin/api/questions/{seeded.private}") as response:
            assert response.status == 404
        async with helpdesk.get(rig.url + "/admin/questions", params={"q": "transfer"}) as response:
            assert PRIVATE_SECRET not in await response.text()
        async with helpdesk.get(rig.url + "/admin/review") as response:
            assert remark not in await response.text()  # a comment on a private answer quotes it
    assert seeded.private not in {entry["id"] for entry in listed["answers"]}
    assert not [view for view in views.recent() if view.answer_id == seeded.private]

    async with browser() as it:  # listed in console.private_answers_viewers
        await sign_in(it, rig, "it@example.com")
        async with it.get(rig.url + "/admin/api/questions", params={"q": seeded.tag}) as response:
            listed = await response.json()
        sealed = next(entry for entry in listed["answers"] if entry["id"] == seeded.private)
        assert sealed["private"] and sealed["question"] is None  # listed, but its words wait for a click
        async with it.get(rig.url + f"/admin/questions/{seeded.private}") as response:
            assert PRIVATE_SECRET in await response.text()
        async with it.get(rig.url + "/admin/api/review") as response:
            assert remark in {item["text"] for item in (await response.json())["not_helpful_comments"]}
    (view,) = [view for view in views.recent() if view.answer_id == seeded.private]
    assert view.viewer == "console:it@example.com"


async def test_only_a_correction_an_admin_approved_becomes_training_data(
    base_services: Services, idp: IdentityProvider
) -> None:
    seeded = seed(base_services.database)
    url = f"http://127.0.0.1:{free_port()}"
    services = with_console(base_services, console_settings(idp, url))
    server = await serve_console(services)
    rig = ConsoleRig(url, idp, services)
    try:

        def trained() -> set[str]:
            harvest = harvest_feedback(services.feedback, services.answers)
            return {seed.answer for seed in harvest.seeds if seed.kind == "feedback_correction"}

        assert CORRECTION not in trained()  # pending: a gap, not an example
        review = await api(rig, "review")
        pending = {item["id"]: item for item in review["pending"]}
        assert pending[seeded.correction_feedback]["may_train"] == "yes"
        assert "neither asked" in pending[seeded.stranger_feedback]["may_train"]

        async with browser() as session:
            await sign_in(session, rig, "it@example.com")
            csrf = await csrf_of(session, rig, "/admin/review")
            # Someone else's correction on an answer cannot be approved into training data.
            form = {"csrf": csrf, "action": "approve"}
            async with session.post(rig.url + f"/admin/review/{seeded.stranger_feedback}", data=form) as response:
                assert "cannot become training data" in await response.text()
            edited = CORRECTION + " (People Ops, 2026)"
            form = {"csrf": csrf, "action": "edit", "text": edited}
            async with session.post(rig.url + f"/admin/review/{seeded.correction_feedback}", data=form) as response:
                assert "edited and approved" in await response.text()
            form = {"csrf": csrf, "action": "reject"}
            async with session.post(rig.url + f"/admin/review/{seeded.stranger_feedback}", data=form) as response:
                assert "rejected" in await response.text()
        assert edited in trained()
        decided = services.feedback.get(seeded.correction_feedback)
        assert decided is not None and decided.review == "approved" and decided.reviewed_by == "console:it@example.com"
        rejected = services.feedback.get(seeded.stranger_feedback)
        assert rejected is not None and rejected.review == "rejected"
        remaining = {item["id"] for item in (await api(rig, "review"))["pending"]}
        assert {seeded.correction_feedback, seeded.stranger_feedback}.isdisjoint(remaining)
    finally:
        await server.close()


async def test_the_review_api_decides_with_the_token_and_refuses_what_the_cli_refuses(
    rig: ConsoleRig, seeded: Seeded
) -> None:
    async with aiohttp.ClientSession() as session:
        url = rig.url + f"/admin/api/review/{seeded.stranger_feedback}"
        async with session.post(url, data={"action": "approve"}, headers=TOKEN) as response:
            assert response.status == 409 and "neither asked" in (await response.json())["message"]
        async with session.post(url, data={"action": "burn"}, headers=TOKEN) as response:
            assert response.status == 409


async def test_the_sources_page_explains_who_may_read_a_document(rig: ConsoleRig) -> None:
    listing = await api(rig, "sources")
    (source,) = listing["sources"]
    assert source["kind"] == "folder" and source["permissions"] == "public" and source["location"]
    assert source["readable_by_everyone"] == source["documents"] > 0
    document = rig.services.knowledge.documents()[0].path
    explained = await api(rig, "sources/explain", path=document)
    assert explained["principals"] == ["everyone"] and explained["indexed"] and "public" in explained["reason"]
    who = await api(rig, "sources/who", path=document, email="bob@example.com")
    assert who["may_read"] and "group:engineering" in who["holds"]
    async with aiohttp.ClientSession() as session:
        params = {"path": "/etc/passwd"}
        async with session.get(rig.url + "/admin/api/sources/explain", headers=TOKEN, params=params) as response:
            assert (
                response.status == 400 and "not a file inside a configured source" in (await response.json())["error"]
            )
    async with browser() as session:
        await sign_in(session, rig, "it@example.com")
        csrf = await csrf_of(session, rig, "/admin/sources")
        form = {"csrf": csrf, "email": "bob@example.com", "path": document}
        async with session.post(rig.url + "/admin/sources", data=form) as response:
            page = await response.text()
    assert "may read" in page and "group:engineering" in page


async def test_with_the_console_turned_off_admin_is_not_there(base_services: Services, idp: IdentityProvider) -> None:
    services = with_console(base_services, console_settings(idp, "http://127.0.0.1:1", enabled=False))
    server = TestServer(create_web_app(services, platform_routes(services, False)), host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(str(server.make_url("/admin/api/overview")), headers=TOKEN) as response:
                assert response.status == 404
    finally:
        await server.close()


async def test_gaps_group_unanswered_questions_by_meaning(rig: ConsoleRig, seeded: Seeded) -> None:
    answers = rig.services.answers
    for text in ("Where can I park my car at the office?", "Is there a car park for employees?"):
        record_answer(answers, text, "I couldn't find this.", False, "channel")
    record_answer(answers, "How do I expense a client dinner abroad?", "I couldn't find this.", False, "channel")
    record_answer(answers, "Where can I park my car, my manager asks?", "I couldn't find this.", False, "private")
    gaps = await api(rig, "gaps")
    grouped = next(
        {item["question"] for item in group["questions"]}
        for group in gaps["groups"]
        if "Where can I park my car at the office?" in {item["question"] for item in group["questions"]}
    )
    assert "Is there a car park for employees?" in grouped
    assert "How do I expense a client dinner abroad?" not in grouped
    everything = " ".join(item["question"] for group in gaps["groups"] for item in group["questions"])
    assert "my manager asks" not in everything  # private conversations stay out
    assert f"Where is the parking garage {seeded.tag}?" in everything  # not covered
    assert f"When do carried-over days expire {seeded.tag}?" in everything  # rated not helpful


async def wait_for_refresh(rig: ConsoleRig) -> dict[str, Any]:
    for _ in range(600):
        state = (await api(rig, "actions"))["refresh"]
        if not state["running"]:
            return dict(state)
        await asyncio.sleep(0.1)
    raise AssertionError("the refresh did not finish in a minute")


async def test_refresh_now_runs_a_refresh_and_shows_its_report(rig: ConsoleRig) -> None:
    async with aiohttp.ClientSession(headers=TOKEN) as session:
        async with session.post(rig.url + "/admin/api/actions/refresh") as response:
            assert response.status == 202 and (await response.json())["running"]
    state = await wait_for_refresh(rig)
    assert state["started_by"] == "console:token" and "error" not in state
    assert state["report"]["unchanged"] == rig.services.knowledge.status().documents
    assert state["done"] == state["total"] > 0  # progress in files, reported as they went
    assert (await api(rig, "overview"))["index"]["last_report"] == state["report"]


def test_a_second_refresh_now_waits_for_the_first(tmp_path: Path) -> None:
    release = threading.Event()

    def slow_refresh(progress: Progress) -> dict[str, Any]:
        release.wait(30)
        return {"report": RefreshReport(unchanged=3).to_dict()}

    action = BackgroundAction("refresh", slow_refresh, tmp_path / "state.json")
    assert action.start("console:a@example.com")
    assert not action.start("console:b@example.com")  # one at a time
    assert action.status()["running"] and action.status()["started_by"] == "console:a@example.com"
    release.set()
    for _ in range(300):
        if not action.status()["running"]:
            break
        time.sleep(0.01)
    assert action.status()["report"]["unchanged"] == 3
    restarted = BackgroundAction("refresh", slow_refresh, tmp_path / "state.json")
    assert restarted.status()["report"]["unchanged"] == 3  # kept across restarts
    assert action.start("console:b@example.com")


@dataclasses.dataclass
class Outcome:
    outcome: str

    def to_dict(self) -> dict[str, str]:
        return {"outcome": self.outcome}

    def headline(self) -> str:
        return f"{self.outcome}: adapter lore-test beat the base model"


class FakeRetraining:
    """Stands in for RetrainJob (tested in tests/customize/test_retrain.py)."""

    def __init__(self) -> None:
        self.runs = 0
        self.cancelled = False

    def run(self) -> Outcome:
        self.runs += 1
        return Outcome("promoted")

    def cancel(self) -> None:
        self.cancelled = True


async def test_retrain_now_runs_the_retraining_job_once_and_shows_its_result(
    base_services: Services, idp: IdentityProvider
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    services = with_console(base_services, console_settings(idp, url))
    job = FakeRetraining()
    app = create_web_app(services, [console_routes(services, console_lookups(), retraining=job)])
    server = TestServer(app, host="127.0.0.1", port=int(url.rsplit(":", 1)[1]))
    await server.start_server()
    rig = ConsoleRig(url, idp, services)
    try:
        async with aiohttp.ClientSession(headers=TOKEN) as session:
            async with session.post(rig.url + "/admin/api/actions/retrain") as response:
                assert response.status == 202
        for _ in range(300):
            state = (await api(rig, "actions"))["retrain"]
            if not state["running"]:
                break
            await asyncio.sleep(0.01)
        assert (
            job.runs == 1 and state["result"] == {"outcome": "promoted"} and "beat the base model" in state["headline"]
        )
    finally:
        await server.close()
    async with aiohttp.ClientSession(headers=TOKEN) as session:  # the shared rig: no retraining job given
        url = f"http://127.0.0.1:{free_port()}"
        plain = await serve_console(with_console(base_services, console_settings(idp, url)))
        try:
            async with session.post(url + "/admin/api/actions/retrain") as response:
                assert response.status == 404
        finally:
            await plain.close()


async def test_refresh_now_reports_a_refresh_already_running_elsewhere(rig: ConsoleRig) -> None:
    with RefreshLock(rig.services.knowledge.lock_path):  # e.g. `lore index` in another shell
        async with browser() as session:
            await sign_in(session, rig, "it@example.com", then="/admin/actions")
            csrf = await csrf_of(session, rig, "/admin/actions")
            async with session.post(rig.url + "/admin/actions/refresh", data={"csrf": csrf}) as response:
                assert response.status == 200  # back on the Actions page
            state = await wait_for_refresh(rig)
    assert "another refresh is running" in state["error"] and state["started_by"] == "console:it@example.com"


def scores(answer: float, base: float = 0.2) -> dict[str, object]:
    return {
        "base": {"answer_accuracy": base, "citation_accuracy": 0.5, "abstention": 1.0, "latency_p50": 0.1},
        "adapter": {"answer_accuracy": answer, "citation_accuracy": 0.6, "abstention": 1.0, "latency_p50": 0.1},
    }


async def test_customization_shows_adapters_and_promotes_by_the_clis_rules(
    base_services: Services, idp: IdentityProvider, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    registry = AdapterRegistry(home / "adapters")
    base = build_tiny_model(tmp_path / "tiny")
    for number, (name, answer) in enumerate((("better", 0.5), ("worse", 0.1)), start=1):
        metadata = {
            "base_model": "tiny",
            "created": f"2026-11-0{number}T10:00:00+00:00",
            "loss_curve": [[1, 1.2], [2, 0.9], [3, 0.7]],
            "validation_curve": [[3, 0.8]],
        }
        build_tiny_adapter(base, registry.directory / name, seed=number, metadata=metadata)
        store_evaluation(registry, name, scores(answer))
    url = f"http://127.0.0.1:{free_port()}"
    services = with_console(base_services, console_settings(idp, url))
    services = dataclasses.replace(services, settings=services.settings.model_copy(update={"home": home}))
    server = await serve_console(services)
    rig = ConsoleRig(url, idp, services)
    try:
        page = await api(rig, "customization")
        assert [adapter["name"] for adapter in page["adapters"]] == ["worse", "better"]
        assert "<polyline" in page["adapters"][1]["loss_chart"] and "0.50" in page["adapters"][1]["evaluation_chart"]
        async with browser() as session:
            await sign_in(session, rig, "it@example.com", then="/admin/customization")
            csrf = await csrf_of(session, rig, "/admin/customization")
            form = {"csrf": csrf, "name": "worse"}
            async with session.post(rig.url + "/admin/customization/promote", data=form) as response:
                assert "does not beat the base model" in await response.text()
            assert registry.active() is None
            form = {"csrf": csrf, "name": "better"}
            async with session.post(rig.url + "/admin/customization/promote", data=form) as response:
                assert "adapter better promoted" in await response.text()
            assert registry.active() == "better"
            async with session.post(rig.url + "/admin/customization/rollback", data={"csrf": csrf}) as response:
                assert "the base model answers now" in await response.text()
        assert registry.active() is None
        async with aiohttp.ClientSession(headers=TOKEN) as session:
            async with session.post(rig.url + "/admin/api/customization/rollback") as response:
                assert response.status == 409 and "Nothing to roll back" in (await response.json())["message"]
    finally:
        await server.close()
