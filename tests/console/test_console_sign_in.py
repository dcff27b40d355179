"""Signing in to the console (#17): OpenID Connect against a local provider, signed session
cookies, the bearer token for scripts, CSRF on every form; and each way in an attacker tries."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.console.guard import token_matches
from bot.console.sessions import SESSION_COOKIE
from bot.settings import ConsoleSettings
from tests.console.conftest import ADMIN_TOKEN, ConsoleRig, browser, sign_in


async def test_an_admin_signs_in_through_the_identity_provider_and_sees_the_overview(rig: ConsoleRig) -> None:
    async with browser() as session:
        assert await sign_in(session, rig, "it@example.com") == 302
        async with session.get(rig.url + "/admin/overview", allow_redirects=False) as response:
            assert response.status == 200
            page = await response.text()
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "it@example.com" in page and "Overview" in page
    cookie = next(c for c in session.cookie_jar if c.key == SESSION_COOKIE)
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/admin"


async def test_a_member_of_an_admin_group_in_the_directory_is_an_admin(rig: ConsoleRig) -> None:
    async with browser() as session:
        assert await sign_in(session, rig, "helpdesk@example.com") == 302
        async with session.get(rig.url + "/admin/api/overview") as response:
            assert response.status == 200


async def test_the_sign_in_asks_for_pkce_a_state_and_a_nonce(rig: ConsoleRig) -> None:
    async with browser() as session:
        async with session.get(rig.url + "/admin/auth/login", allow_redirects=False) as response:
            query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [rig.url + "/admin/auth/callback"]


async def test_without_a_session_pages_redirect_to_sign_in_and_the_api_answers_401(rig: ConsoleRig) -> None:
    async with browser() as session:
        for path in ("/admin/overview", "/admin/questions", "/admin/review", "/admin/sources", "/admin/questions/x"):
            async with session.get(rig.url + path, allow_redirects=False) as response:
                assert response.status == 302 and response.headers["Location"].startswith("/admin/auth/login?next=")
        for path in ("/admin/api/overview", "/admin/api/questions", "/admin/api/review", "/admin/api/sources"):
            async with session.get(rig.url + path) as response:
                assert response.status == 401
        async with session.post(rig.url + "/admin/api/review/1", data={"action": "approve"}) as response:
            assert response.status == 401


async def test_a_signed_in_colleague_who_is_not_an_admin_gets_403(rig: ConsoleRig) -> None:
    async with browser() as session:
        assert await sign_in(session, rig, "bob@example.com") == 302
        for path in ("/admin/overview", "/admin/api/questions"):
            async with session.get(rig.url + path, allow_redirects=False) as response:
                assert response.status == 403
                assert "bob@example.com is not a console admin" in await response.text()


@pytest.mark.parametrize("forgery", ["key", "expired", "audience", "issuer", "nonce", "unverified"])
async def test_a_forged_or_misdirected_id_token_signs_nobody_in(rig: ConsoleRig, forgery: str) -> None:
    rig.idp.forge = forgery
    async with browser() as session:
        assert await sign_in(session, rig, "it@example.com") == 401
        assert SESSION_COOKIE not in {cookie.key for cookie in session.cookie_jar}
        async with session.get(rig.url + "/admin/api/overview") as response:
            assert response.status == 401


async def test_a_callback_with_another_state_is_refused_before_the_code_is_spent(rig: ConsoleRig) -> None:
    async with browser() as session:
        async with session.get(rig.url + "/admin/auth/login", allow_redirects=False) as response:
            authorize = response.headers["Location"]
        async with session.get(authorize, allow_redirects=False) as response:
            callback = response.headers["Location"]
        forged = re.sub(r"state=[^&]+", "state=attacker-state", callback)
        async with session.get(forged, allow_redirects=False) as response:
            assert response.status == 401
    assert rig.idp.token_requests == 0


async def test_a_callback_without_the_browsers_own_sign_in_cookie_is_refused(rig: ConsoleRig) -> None:
    """Login CSRF: an attacker's own code and state, replayed into a victim's browser."""
    async with browser() as attacker:
        async with attacker.get(rig.url + "/admin/auth/login", allow_redirects=False) as response:
            authorize = response.headers["Location"]
        async with attacker.get(authorize, allow_redirects=False) as response:
            callback = response.headers["Location"]
    async with browser() as victim:
        async with victim.get(callback, allow_redirects=False) as response:
            assert response.status == 401


async def test_a_tampered_session_cookie_is_treated_as_no_session(rig: ConsoleRig) -> None:
    async with browser() as session:
        assert await sign_in(session, rig, "bob@example.com") == 302
        cookie = next(c for c in session.cookie_jar if c.key == SESSION_COOKIE).value
    payload, _, signature = cookie.partition(".")
    # bob's signed cookie, its payload rewritten to claim the admin's e-mail
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert data["email"] == "bob@example.com"
    data["email"] = "it@example.com"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + signature
    async with browser() as attacker:
        for value in (forged, cookie[:-2] + "xx"):
            headers = {"Cookie": f"{SESSION_COOKIE}={value}"}
            async with attacker.get(rig.url + "/admin/api/overview", headers=headers) as response:
                assert response.status == 401
        async with attacker.get(rig.url + "/admin/api/overview", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as r:
            assert r.status == 403  # the genuine cookie still works (and bob is no admin)


async def test_the_bearer_token_opens_the_api_and_a_wrong_one_does_not(rig: ConsoleRig) -> None:
    async with browser() as session:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.get(rig.url + "/admin/api/overview", headers=headers) as response:
            assert response.status == 200
        for wrong in (ADMIN_TOKEN + "x", hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(), ""):
            async with session.get(rig.url + "/admin/api/overview", headers={"Authorization": f"Bearer {wrong}"}) as r:
                assert r.status == 401
        async with session.get(rig.url + "/admin/api/overview", headers={"Authorization": f"Basic {ADMIN_TOKEN}"}) as r:
            assert r.status == 401


def test_the_token_is_compared_by_its_sha256_only() -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    assert token_matches("s3cret", digest)
    assert not token_matches(digest, digest) and not token_matches("s3cret", None) and not token_matches("", digest)


def test_a_token_setting_that_is_not_a_sha256_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        ConsoleSettings(token_sha256="s3cret")


async def test_a_form_post_without_the_csrf_token_is_refused(rig: ConsoleRig, seeded: object) -> None:
    async with browser() as session:
        assert await sign_in(session, rig, "it@example.com") == 302
        for form in ({"action": "reject"}, {"action": "reject", "csrf": "guessed"}):
            async with session.post(rig.url + "/admin/review/1", data=form, allow_redirects=False) as response:
                assert response.status == 403
                assert "CSRF" in await response.text()
        async with session.post(rig.url + "/admin/logout", allow_redirects=False) as response:
            assert response.status == 403


async def test_sign_out_ends_the_session_and_returns_only_to_console_pages(rig: ConsoleRig) -> None:
    async with browser() as session:
        assert await sign_in(session, rig, "it@example.com", then="/admin/sources") == 302
        async with session.get(rig.url + "/admin/sources") as response:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await response.text())
        assert csrf is not None
        async with session.post(rig.url + "/admin/logout", data={"csrf": csrf[1]}, allow_redirects=False) as response:
            assert response.status == 302
        async with session.get(rig.url + "/admin/api/overview") as response:
            assert response.status == 401
        async with session.get(rig.url + "/admin/auth/login?next=//evil.example/", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        async with session.get(authorize, allow_redirects=False) as response:
            callback = response.headers["Location"]
        async with session.get(callback, allow_redirects=False) as response:
            assert response.headers["Location"] == "/admin/overview"
