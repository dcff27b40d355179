"""OpenID Connect sign-in (authorization-code flow with PKCE) for the console: the provider's
discovery document, the authorization URL with state, nonce and code challenge, the token
request, and the id_token verified against the provider's JWKS (signature, issuer, audience,
expiry, nonce) with joserfc."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bot.errors import LoreError

# Asymmetric algorithms only: an HS256 token would be checked with the client secret, which
# the provider is not the only one to know.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
SCOPES = "openid email profile"
CLOCK_SKEW_SECONDS = 60
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)


class SignInError(LoreError):
    """The identity provider's answer cannot be trusted or used; the message says why."""


@dataclass(frozen=True)
class LoginAttempt:
    """What the browser carries (signed) between the redirect to the provider and the
    callback: the URL to send it to, and the values the callback must match."""

    url: str
    state: str
    nonce: str
    verifier: str


class OpenIDClient:
    """One provider (`issuer`) and this app's registration with it."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._metadata: dict[str, Any] | None = None

    async def start(self) -> LoginAttempt:
        """A fresh sign-in: the provider's authorization URL with new state, nonce and PKCE."""
        metadata = await self._discovery()
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": SCOPES,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return LoginAttempt(f"{metadata['authorization_endpoint']}?{query}", state, nonce, verifier)

    async def finish(self, code: str, nonce: str, verifier: str) -> dict[str, Any]:
        """Exchange `code` for tokens and return the verified id_token's claims."""
        metadata = await self._discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
            async with http.post(metadata["token_endpoint"], data=form) as response:
                body = await response.json(content_type=None)
                if response.status != 200 or not isinstance(body, dict) or "id_token" not in body:
                    raise SignInError(f"the identity provider refused the sign-in code ({response.status}: {body})")
            async with http.get(metadata["jwks_uri"]) as response:
                keys = KeySet.import_key_set(await response.json(content_type=None))
        return self.verify(str(body["id_token"]), keys, nonce)

    def verify(self, id_token: str, keys: KeySet, nonce: str) -> dict[str, Any]:
        """The claims of `id_token` once its signature (one of `keys`), issuer, audience,
        expiry and nonce check out; SignInError otherwise."""
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=CLOCK_SKEW_SECONDS,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as error:
            raise SignInError(f"the id_token was refused: {error}") from error
        claims = dict(token.claims)
        if claims.get("email_verified") is False:
            raise SignInError("the identity provider has not verified this account's e-mail address")
        return claims

    async def _discovery(self) -> dict[str, Any]:
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
                    async with http.get(url) as response:
                        response.raise_for_status()
                        metadata = await response.json(content_type=None)
            except aiohttp.ClientError as error:
                raise SignInError(f"cannot read {url} (console.issuer): {error}") from error
            if metadata.get("issuer", "").rstrip("/") != self.issuer:
                raise SignInError(f"{url} names issuer {metadata.get('issuer')!r}, not console.issuer {self.issuer!r}")
            self._metadata = metadata
        return self._metadata
