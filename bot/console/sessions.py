"""Signed cookies (itsdangerous): the admin's session (e-mail and CSRF token) and, during a
sign-in, the state, nonce and PKCE verifier the callback must match. Nothing is kept on the
server: a cookie is valid while its signature holds and it is younger than its lifetime."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from bot.private_files import FILE_MODE, private_folder

SESSION_COOKIE = "lore_console"
LOGIN_COOKIE = "lore_console_login"
LOGIN_SECONDS = 600  # from the redirect to the provider to the callback
SECRET_FILE = "console-session.key"


@dataclass(frozen=True)
class Session:
    """A signed-in person: their verified e-mail, and the token every form of theirs carries."""

    email: str
    csrf: str


class CookieSigner:
    """Signs and reads back the console's cookies with one secret."""

    def __init__(self, secret: str, session_seconds: float) -> None:
        self._sessions = URLSafeTimedSerializer(secret, salt="lore-console-session")
        self._logins = URLSafeTimedSerializer(secret, salt="lore-console-login")
        self.session_seconds = session_seconds

    def new_session(self, email: str) -> tuple[Session, str]:
        """A session for `email` with a fresh CSRF token, and its cookie value."""
        session = Session(email=email, csrf=secrets.token_urlsafe(32))
        return session, self._sessions.dumps({"email": session.email, "csrf": session.csrf})

    def session(self, cookie: str | None) -> Session | None:
        """The session in `cookie`; None when absent, tampered with or expired."""
        data = _loads(self._sessions, cookie, self.session_seconds)
        if data is None or not isinstance(data.get("email"), str) or not isinstance(data.get("csrf"), str):
            return None
        return Session(email=data["email"], csrf=data["csrf"])

    def login(self, values: dict[str, str]) -> str:
        """The cookie carrying a sign-in in progress."""
        return self._logins.dumps(values)

    def pending_login(self, cookie: str | None) -> dict[str, str] | None:
        """The sign-in in progress, if the cookie is genuine and recent."""
        data = _loads(self._logins, cookie, LOGIN_SECONDS)
        return {str(key): str(value) for key, value in data.items()} if data is not None else None


def _loads(serializer: URLSafeTimedSerializer, cookie: str | None, max_age: float) -> dict[str, Any] | None:
    if not cookie:
        return None
    try:
        data = serializer.loads(cookie, max_age=int(max_age))
    except BadSignature:  # also SignatureExpired
        return None
    return data if isinstance(data, dict) else None


def session_secret(configured: str | None, home: Path) -> str:
    """`console.session_secret`, else a random key kept owner-only in LORE_HOME (made once,
    so sessions survive a restart; deleting the file signs everyone out)."""
    if configured:
        return configured
    path = private_folder(home) / SECRET_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()
