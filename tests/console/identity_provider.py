"""A local OpenID Connect provider on loopback, for the console's sign-in tests: discovery
document, JWKS of an RSA key generated per run, an authorize endpoint that signs in whoever
the test says (`user`) and redirects back with a code, and a token endpoint that checks the
client secret and the PKCE verifier and issues a signed id_token.

`forge` makes the next id_token wrong in one way (an attacker's key, expired, another
audience, another issuer, another nonce) to prove the console refuses it."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "lore-console-test"
CLIENT_SECRET = "idp-client-secret"


@dataclass
class IdentityProvider:
    """The provider's state; `app()` serves it."""

    issuer: str = ""
    user: str = "it@example.com"
    forge: str = ""  # "", "key", "expired", "audience", "issuer", "nonce", "unverified"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/attacker", self._attacker)
        return app

    async def _discovery(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, _request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("code_challenge_method") != "S256":
            return web.Response(status=400, text="bad authorization request")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": query["nonce"],
            "challenge": query["code_challenge"],
            "redirect_uri": query["redirect_uri"],
            "email": self.user,
        }
        raise web.HTTPFound(f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}")

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        grant = self.codes.pop(str(form.get("code")), None)
        if (
            grant is None
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        return web.json_response({"access_token": "unused", "token_type": "Bearer", "id_token": self.id_token(grant)})

    async def _attacker(self, request: web.Request) -> web.Response:
        """Another site's page that posts a form to the console as soon as it opens (CSRF):
        the admin's browser sends its cookies along, but the page cannot know the CSRF token."""
        target = html.escape(request.query["target"], quote=True)
        page = (
            f'<form id="f" method="post" action="{target}"><input name="action" value="approve"></form>'
            '<script>document.getElementById("f").submit()</script>'
        )
        return web.Response(text=page, content_type="text/html")

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": hashlib.sha256(grant["email"].encode()).hexdigest()[:16],
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant["nonce"],
            "email": grant["email"],
            "email_verified": True,
        }
        key = self.key
        if self.forge == "key":
            key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})  # same kid, attacker's key
        elif self.forge == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        elif self.forge == "audience":
            claims["aud"] = "some-other-app"
        elif self.forge == "issuer":
            claims["iss"] = "https://evil.example"
        elif self.forge == "nonce":
            claims["nonce"] = "replayed-nonce"
        elif self.forge == "unverified":
            claims["email_verified"] = False
        return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)
