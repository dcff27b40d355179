"""Microsoft Graph over httpx: bearer tokens, bounded retries on throttling, paging, and the
errors a sync acts on (refused → AccessDeniedError, anything else → SourceError)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from knowledge.errors import AccessDeniedError, FileTooLargeError, SourceError
from knowledge.sources.sharepoint.auth import GraphTokens

logger = logging.getLogger(__name__)

# Throttled (429) or briefly unavailable (503, and other 5xx without Retry-After): this many
# attempts in all, waiting what the server asks (Retry-After) or a short backoff.
ATTEMPTS = 5
BACKOFF_SECONDS = 1.0
# A server asking for a longer pause than this is not waited for: the refresh fails with a
# SourceError (nothing is deleted) and the next scheduled refresh tries again.
MAX_RETRY_AFTER_SECONDS = 120.0
DOWNLOAD_CHUNK = 64 * 1024


class _HideDownloadTokens(logging.Filter):
    """httpx logs every request's URL at INFO, httpcore the response headers at DEBUG. A
    SharePoint download URL (a 302's Location) carries `tempauth`, a token that opens the file
    to whoever holds the URL for about an hour: such records are logged without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "tempauth=" in message:
            record.msg, record.args = _TEMPAUTH.sub(r"\1<hidden>", message), ()
        return True


_TEMPAUTH = re.compile(r"(tempauth=)[^&\s'\"]+")
for _name in ("httpx", "httpcore.http11", "httpcore.http2"):
    logging.getLogger(_name).addFilter(_HideDownloadTokens())


class ResyncRequired(SourceError):
    """410 Gone on a delta link: the drive cannot say what changed since it, and `location`
    starts a fresh enumeration from scratch."""

    def __init__(self, message: str, location: str | None) -> None:
        super().__init__(message)
        self.location = location


class NotFound(SourceError):
    """404: the item (or drive, or site) does not exist, or no longer does."""


class GraphClient:
    """GET requests to Graph for one source. Relative paths are joined to `graph_url`;
    absolute ones (nextLink, deltaLink) are used as they are, but only on Graph's own origin,
    so a hostile link cannot send the bearer token elsewhere."""

    def __init__(
        self,
        source: str,
        graph_url: str,
        tokens: GraphTokens,
        http: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.base = graph_url.rstrip("/")
        self.origin = httpx.URL(self.base).copy_with(path="/", query=None).__str__().rstrip("/")
        self._tokens = tokens
        self._http = http
        self._sleep = sleep
        self.requests = 0  # Graph requests made (token requests excluded): measurements

    def __repr__(self) -> str:
        return f"GraphClient(source={self.source!r}, graph_url={self.base!r})"

    def get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The JSON body of a successful GET."""
        response = self._send(url, headers or {})
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"Source {self.source!r}: Graph answered {self._label(url)} with no JSON") from None
        if not isinstance(body, dict):
            raise SourceError(f"Source {self.source!r}: Graph answered {self._label(url)} with unexpected JSON")
        return body

    def values(self, url: str) -> Iterator[dict[str, Any]]:
        """Every element of a collection, following @odata.nextLink."""
        next_url: str | None = url
        while next_url is not None:
            page = self.get_json(next_url)
            for value in page.get("value") or []:
                if isinstance(value, dict):
                    yield value
            link = page.get("@odata.nextLink")
            next_url = link if isinstance(link, str) else None

    def download(self, url: str, limit: int) -> bytes:
        """The content at `url` (an item's /content: 302 to a pre-authenticated download URL,
        fetched without the bearer token), never reading more than `limit` + 1 bytes."""
        response = self._send(url, {}, stream=True)
        try:
            location = response.headers.get("location")
            if response.is_redirect and location:
                response.close()
                # Never more than one byte past the cap leaves the server (a file that grew
                # since it was listed), and no bearer token goes to the download host.
                ranged = self._http.build_request("GET", location, headers={"Range": f"bytes=0-{limit}"})
                response = self._http.send(ranged, stream=True)
                self.requests += 1
                if response.status_code not in (200, 206):
                    raise SourceError(
                        f"Source {self.source!r}: the download link answered {response.status_code}; "
                        "the next refresh tries again"
                    )
            data = bytearray()
            for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                data.extend(chunk)
                if len(data) > limit:
                    raise FileTooLargeError.of(_declared_size(response, len(data)), limit)
            return bytes(data)
        except httpx.HTTPError as error:
            raise SourceError(f"Source {self.source!r}: download interrupted ({type(error).__name__})") from None
        finally:
            response.close()

    # -- one request, with its retries ------------------------------------------------------

    def _send(self, url: str, headers: dict[str, str], stream: bool = False) -> httpx.Response:
        """A 2xx or 3xx response (streamed and open when `stream`: the caller closes it)."""
        target = self._absolute(url)
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            token = self._tokens.token()
            request = self._http.build_request("GET", target, headers={**headers, "Authorization": f"Bearer {token}"})
            try:
                response = self._http.send(request, stream=stream, follow_redirects=False)
            except httpx.TransportError as error:
                if attempt >= ATTEMPTS:
                    raise SourceError(
                        f"Source {self.source!r}: Graph unreachable ({type(error).__name__}) after "
                        f"{attempt} attempts; the next refresh tries again"
                    ) from None
                self._sleep(BACKOFF_SECONDS * attempt)
                continue
            self.requests += 1
            status = response.status_code
            if status < 400:
                return response
            try:
                response.read()  # error bodies are small; read them before closing
            except httpx.HTTPError:
                pass
            finally:
                response.close()
            if status == 401 and not renewed:
                renewed = True
                self._tokens.renew(token)
                continue
            if status in (429, 500, 502, 503, 504) and attempt < ATTEMPTS:
                asked = _retry_after(response)
                wait = BACKOFF_SECONDS * attempt if asked is None else asked
                if wait > MAX_RETRY_AFTER_SECONDS:
                    raise SourceError(
                        f"Source {self.source!r}: Graph asks to wait {wait:.0f} s ({status}); "
                        "giving up this refresh, the next one tries again"
                    )
                logger.info("source %s: Graph answered %s, retrying in %.1f s", self.source, status, wait)
                self._sleep(wait)
                continue
            raise self._error(response, url)

    def _error(self, response: httpx.Response, url: str) -> SourceError:
        status = response.status_code
        code, message = _graph_error(response)
        what = f"{self._label(url)}: {status} {code}".rstrip()
        if status == 410:
            return ResyncRequired(f"Source {self.source!r}: {what}", response.headers.get("location"))
        if status == 404:
            return NotFound(f"Source {self.source!r}: {what} (not found)")
        if status == 403:
            return AccessDeniedError(
                f"Source {self.source!r}: Graph refused Lore's app ({what}); grant the app read "
                "access (Sites.Selected with read on this site, or Files.Read.All) to index it again"
            )
        if status == 401:
            return SourceError(
                f"Source {self.source!r}: Graph refused a fresh token ({what}); check the app "
                "registration's API permissions and admin consent"
            )
        if status in (429, 503):
            return SourceError(
                f"Source {self.source!r}: still throttled after {ATTEMPTS} attempts ({what}); the next refresh tries again"
            )
        return SourceError(f"Source {self.source!r}: Graph answered {what} {message[:200]}".rstrip())

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            if not (url == self.origin or url.startswith(self.origin + "/")):
                raise SourceError(
                    f"Source {self.source!r}: Graph sent a link outside {self.origin}; refusing to follow it"
                )
            return url
        return f"{self.base}/{url.lstrip('/')}"

    def _label(self, url: str) -> str:
        """The request without its query (delta tokens and the like)."""
        return self._absolute(url).removeprefix(self.base).split("?")[0] or "/"


def _declared_size(response: httpx.Response, seen: int) -> int:
    """The whole file's size as the download says (Content-Range of a ranged answer,
    else Content-Length), at least what was read."""
    total = response.headers.get("content-range", "").rpartition("/")[2] or response.headers.get("content-length", "")
    try:
        return max(int(total), seen)
    except ValueError:
        return seen


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (a number, or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of Graph's error body, empty when there is none."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")
