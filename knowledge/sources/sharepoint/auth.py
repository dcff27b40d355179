"""App-only sign-in to Microsoft Graph: msal's client-credentials flow with a client secret
or a certificate, the token cached by msal and renewed when Graph refuses it."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from knowledge.config import SharePointSourceSettings
from knowledge.errors import ConfigurationError, SourceError

logger = logging.getLogger(__name__)


class MsalHttpClient:
    """The small HTTP interface msal asks for (msal.oauth2cli.http.HttpClient), over the
    source's httpx client: sign-in goes through the same transport, timeouts and CA
    settings (SSL_CERT_FILE) as Graph itself, and nothing needs `requests`."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def post(
        self,
        url: str,
        params: dict[str, str] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> httpx.Response:
        if isinstance(data, dict):
            # msal hands the signed client assertion over as bytes; httpx would send their
            # repr ("b'...'"), requests sends their text.
            form = {key: value.decode() if isinstance(value, bytes) else value for key, value in data.items()}
            return self._client.post(url, params=params, data=form, headers=headers)
        return self._client.post(url, params=params, content=data, headers=headers)

    def get(
        self, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None, **_: Any
    ) -> httpx.Response:
        return self._client.get(url, params=params, headers=headers)

    def close(self) -> None:
        """The httpx client belongs to the source, which closes it."""


class GraphTokens:
    """Access tokens for Graph with the app's own identity. msal caches the token and asks
    for a new one shortly before it expires; `renew` drops it when Graph refused it (revoked,
    or the app's roles changed) so the next `token` call signs in again."""

    def __init__(self, settings: SharePointSourceSettings, http: httpx.Client) -> None:
        self._settings = settings
        self._http = http
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        origin = urlsplit(settings.graph_url)
        self._scopes = [f"{origin.scheme}://{origin.netloc}/.default"]

    def __repr__(self) -> str:
        return f"GraphTokens(tenant={self._settings.tenant_id!r}, client_id={self._settings.client_id!r})"

    def token(self) -> str:
        """A valid access token; SourceError saying what to fix when sign-in fails."""
        with self._lock:  # permission reads run in threads: one sign-in at a time
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=self._scopes)
            except (httpx.HTTPError, ValueError, OSError) as error:
                raise SourceError(
                    f"Source {self._settings.name!r}: cannot reach the sign-in endpoint "
                    f"{self._authority()} ({type(error).__name__}); check authority_url and the network."
                ) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str):
            raise SourceError(self._refusal(result if isinstance(result, dict) else {}))
        return token

    def renew(self, refused: str) -> None:
        """Forget the cached token Graph answered 401 to (unless another thread already
        replaced it), so that the next `token` signs in again."""
        with self._lock:
            if self._app is None:
                return
            cache = self._app.token_cache
            for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if entry.get("secret") == refused:
                    cache.remove_at(entry)

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._settings.client_id,
                    client_credential=self._credential(),
                    authority=self._authority(),
                    http_client=MsalHttpClient(self._http),
                    # Sovereign clouds and tests name their own authority host: never ask
                    # login.microsoftonline.com whether it knows it.
                    instance_discovery=False,
                    validate_authority=False,
                )
            except (httpx.HTTPError, ValueError, OSError) as error:
                raise SourceError(
                    f"Source {self._settings.name!r}: cannot read the sign-in configuration of "
                    f"{self._authority()} ({type(error).__name__}); check authority_url and tenant_id."
                ) from None
        return self._app

    def _authority(self) -> str:
        return f"{self._settings.authority_url.rstrip('/')}/{self._settings.tenant_id}"

    def _credential(self) -> str | dict[str, str]:
        settings = self._settings
        if settings.client_secret is not None and settings.client_secret.get_secret_value():
            return settings.client_secret.get_secret_value()
        if settings.certificate_path is not None:
            return certificate_credential(settings.certificate_path, settings.name)
        raise ConfigurationError(
            f"Source {settings.name!r} has neither client_secret nor certificate_path; set one in "
            "lore.toml, or the secret in LORE_SOURCES__<n>__CLIENT_SECRET."
        )

    def _refusal(self, result: dict[str, Any]) -> str:
        code = str(result.get("error") or "no access token")
        # Azure's descriptions start with a code and a sentence (AADSTS7000215: Invalid
        # client secret provided...); the rest is trace ids.
        description = str(result.get("error_description") or "").splitlines()[0:1]
        detail = _redact(description[0] if description else "", self._settings)
        return (
            f"Source {self._settings.name!r}: sign-in refused ({code}: {detail}). Check tenant_id, "
            "client_id and the client secret or certificate of the app registration."
        )


def certificate_credential(path: Path, source: str) -> dict[str, str]:
    """msal's credential for a PEM file holding the private key and its certificate: the
    certificate's SHA-1 thumbprint (what Azure shows for an uploaded certificate) and the
    certificate itself."""
    try:
        pem = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"Source {source!r}: cannot read certificate_path {path}: {error}") from None
    if "PRIVATE KEY-----" not in pem or "BEGIN CERTIFICATE-----" not in pem:
        raise ConfigurationError(f"Source {source!r}: {path} must hold both the private key and the certificate (PEM).")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as error:
        raise ConfigurationError(f"Source {source!r}: {path} holds no readable certificate: {error}") from None
    der = certificate.public_bytes(Encoding.DER)
    return {
        "private_key": pem,
        "thumbprint": hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        "public_certificate": certificate.public_bytes(Encoding.PEM).decode("ascii"),
    }


def _redact(text: str, settings: SharePointSourceSettings) -> str:
    secret = settings.client_secret.get_secret_value() if settings.client_secret is not None else ""
    return text.replace(secret, "***") if secret else text
