"""The Drive v3 calls the Google Drive source makes, through google-api-python-client with a
service account's credentials: listing, the changes feed, permissions and content. Failures
become Lore's errors here, where their cause is known."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest, MediaIoBaseDownload

from knowledge.config import GoogleDriveSourceSettings
from knowledge.errors import AccessDeniedError, FileTooLargeError, SourceError

logger = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/drive.readonly"]
# googleapiclient retries 5xx, 429 and 403 userRateLimitExceeded / rateLimitExceeded itself
# (googleapiclient/http.py `_should_retry_response`), sleeping random() * 2**n seconds before
# retry n: 4 retries wait 30 s at most in all before the sync gives up and reports it.
RETRIES = 4
PAGE_SIZE = 1000  # the most files.list and changes.list return per page
DOWNLOAD_CHUNK = 8 * 1024 * 1024
# What a file resource must carry (partial responses: Drive returns only these).
FILE_FIELDS = (
    "id,name,mimeType,parents,driveId,trashed,size,md5Checksum,version,modifiedTime,"
    "webViewLink,hasAugmentedPermissions,inheritedPermissionsDisabled"
)
PERMISSION_FIELDS = "permissions(id,type,role,emailAddress,domain,allowFileDiscovery,deleted,permissionDetails)"
RATE_LIMITED = ("userRateLimitExceeded", "rateLimitExceeded")

Sleep = Callable[[float], None]


class PageTokenInvalid(SourceError):
    """Drive refused a saved changes page token (it discards tokens it no longer knows): the
    drive is listed in full again. Caught by the listing; a SourceError should it ever escape."""


class DriveClient:
    """One authenticated connection to the Drive API for one source."""

    def __init__(self, settings: GoogleDriveSourceSettings, sleep: Sleep = time.sleep) -> None:
        self.settings = settings
        self.name = settings.name
        credentials = _credentials(settings)
        http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=settings.request_timeout_seconds)
        )
        # `http` rather than `credentials=`: build() would make an Http with its own timeout,
        # not request_timeout_seconds. static_discovery: the discovery document shipped with
        # the library, so building asks nothing of the network.
        self._service = build(
            "drive",
            "v3",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": settings.api_endpoint.rstrip("/") + "/drive/v3/"},
            requestBuilder=_request_builder(sleep),
        )
        self._http = http
        self._sleep = sleep

    def close(self) -> None:
        self._service.close()

    # -- listing ------------------------------------------------------------------------

    def start_page_token(self, drive: str | None) -> str:
        """The changes feed's position now (taken before a full listing, so nothing made
        during the listing is missed)."""
        extra = {"driveId": drive, "supportsAllDrives": True} if drive else {}
        answer = self._run(self._service.changes().getStartPageToken(**extra), drive)
        return str(answer["startPageToken"])

    def drive_name(self, drive: str) -> str:
        """A shared drive's name (its root folder's, which starts every path in it)."""
        answer = self._run(self._service.drives().get(driveId=drive, fields="id,name"), drive)
        return str(answer.get("name") or drive)

    def file(self, item_id: str) -> dict[str, Any]:
        """One file or folder's metadata."""
        request = self._service.files().get(fileId=item_id, supportsAllDrives=True, fields=FILE_FIELDS)
        return self._run(request, None, item=item_id)

    def files(
        self, drive: str | None, page_size: int = PAGE_SIZE, parent: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every file and folder not in the trash, page by page: a shared drive's, or (None)
        everything the account can see; with `parent`, only that folder's children."""
        extra: dict[str, Any] = (
            {"corpora": "drive", "driveId": drive, "includeItemsFromAllDrives": True, "supportsAllDrives": True}
            if drive
            else {"corpora": "user"}
        )
        token: str | None = None
        while True:
            request = self._service.files().list(
                q="trashed = false" if parent is None else f"'{parent}' in parents and trashed = false",
                pageSize=page_size,
                pageToken=token,
                fields=f"nextPageToken,files({FILE_FIELDS})",
                **extra,
            )
            answer = self._run(request, drive)
            yield list(answer.get("files", []))
            token = answer.get("nextPageToken")
            if not token:
                return

    def changes(self, token: str, drive: str | None) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """The changes since `token`, page by page, with the next start token on the last
        page (None on the others). Raises PageTokenInvalid when Drive refuses the token."""
        extra: dict[str, Any] = (
            {"driveId": drive, "includeItemsFromAllDrives": True, "supportsAllDrives": True} if drive else {}
        )
        while True:
            request = self._service.changes().list(
                pageToken=token,
                pageSize=PAGE_SIZE,
                includeRemoved=True,
                fields=f"nextPageToken,newStartPageToken,changes(fileId,removed,changeType,file({FILE_FIELDS}))",
                **extra,
            )
            answer = self._run(request, drive, page_token=True)
            changes = [change for change in answer.get("changes", []) if change.get("changeType", "file") == "file"]
            if answer.get("nextPageToken"):
                yield changes, None
                token = answer["nextPageToken"]
            else:
                yield changes, str(answer["newStartPageToken"])
                return

    def permissions(self, item_id: str, drive: str | None) -> list[dict[str, Any]]:
        """An item's permissions (a shared drive's id: its members), all pages."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            request = self._service.permissions().list(
                fileId=item_id,
                supportsAllDrives=True,
                pageToken=token,
                pageSize=100,
                fields=f"nextPageToken,{PERMISSION_FIELDS}",
            )
            answer = self._run(request, drive if item_id == drive else None, item=item_id)
            found.extend(answer.get("permissions", []))
            token = answer.get("nextPageToken")
            if not token:
                return found

    # -- content ------------------------------------------------------------------------

    def download(self, item_id: str, limit: int) -> bytes:
        """A binary file's bytes, fetched in ranges: never more than `limit` + one chunk."""
        return self._fetch(self._service.files().get_media(fileId=item_id, supportsAllDrives=True), item_id, limit)

    def export(self, item_id: str, mime_type: str, limit: int) -> bytes:
        """A Google Docs Editors file converted to `mime_type`; FileTooLargeError over `limit`."""
        return self._fetch(self._service.files().export_media(fileId=item_id, mimeType=mime_type), item_id, limit)

    def _fetch(self, request: HttpRequest, item_id: str, limit: int) -> bytes:
        buffer = io.BytesIO()
        downloader = MediaIoBaseDownload(buffer, request, chunksize=min(DOWNLOAD_CHUNK, limit + 1))
        downloader._sleep = self._sleep  # the same bounded backoff as every other call
        done = False
        while not done:
            try:
                status, done = downloader.next_chunk(num_retries=RETRIES)
            except HttpError as error:
                raise _refused(error, self.name, None, item_id) from None
            except (GoogleAuthError, OSError, httplib2.HttpLib2Error) as error:
                raise _unreachable(self.name, error) from None
            total = status.total_size or 0
            if total > limit or buffer.tell() > limit:
                raise FileTooLargeError.of(max(total, buffer.tell()), limit)
        return buffer.getvalue()

    # -- one request ----------------------------------------------------------------------

    def _run(
        self, request: HttpRequest, drive: str | None, item: str | None = None, page_token: bool = False
    ) -> dict[str, Any]:
        try:
            answer = request.execute(num_retries=RETRIES)
        except HttpError as error:
            if page_token and error.resp.status in (400, 404, 410) and _details(error)[1] == "pageToken":
                raise PageTokenInvalid(f"Source {self.name!r}: Drive refused the saved page token") from None
            raise _refused(error, self.name, drive, item) from None
        except RefreshError as error:
            raise SourceError(
                f"Source {self.name!r}: Google refused the service account's token request ({_reason(error)}). "
                "Check credentials_file (a current key of the service account), and with delegated_user that "
                "domain-wide delegation grants the drive.readonly scope to the service account's client id."
            ) from None
        except (GoogleAuthError, TransportError, OSError, httplib2.HttpLib2Error) as error:
            raise _unreachable(self.name, error) from None
        return dict(answer)


def _refused(error: HttpError, name: str, drive: str | None, item: str | None) -> SourceError:
    """The Lore error for an HTTP error answer (after googleapiclient's retries)."""
    status = int(error.resp.status)
    reason, _, message = _details(error)
    where = f"shared drive {drive}" if drive else (f"item {item}" if item else "Drive")
    if status == 403 and reason in RATE_LIMITED:
        failure: SourceError = SourceError(
            f"Source {name!r}: Drive kept refusing requests as over its rate limit ({reason}) after "
            f"{RETRIES} retries; the next refresh tries again. Raise the Drive API quota if this lasts."
        )
    elif status == 403:
        failure = AccessDeniedError(
            f"Source {name!r}: Drive refused Lore's account access to {where} ({reason or message}); what was "
            "indexed from there is withdrawn. Share it with the service account (or delegated_user) to index it again."
        )
    elif status == 404 and drive and item is None:
        failure = SourceError(
            f"Source {name!r}: shared drive {drive} was not found. Check its id in `drives` and that the "
            "service account (or delegated_user) is a member of it."
        )
    elif status == 404:
        failure = SourceError(f"Source {name!r}: {where} no longer exists on Drive.")
    elif status == 401:
        failure = SourceError(
            f"Source {name!r}: Drive did not accept Lore's credentials ({message}); check credentials_file."
        )
    else:
        failure = SourceError(f"Source {name!r}: Drive answered HTTP {status} for {where} ({reason or message}).")
    return failure


def _details(error: HttpError) -> tuple[str, str | None, str]:
    try:
        body = json.loads(error.content.decode("utf-8"))["error"]
        first = (body.get("errors") or [{}])[0]
        return str(first.get("reason", "")), first.get("location"), str(body.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", None, f"HTTP {error.resp.status}"


def _unreachable(name: str, error: Exception) -> SourceError:
    return SourceError(
        f"Source {name!r}: Drive could not be reached ({type(error).__name__}: {error}); check api_endpoint "
        "and the network. Nothing was changed in the index."
    )


def _reason(error: RefreshError) -> str:
    # google-auth puts the token endpoint's answer in args[0]; never the request (the
    # signed assertion) nor the key.
    return str(error.args[0]) if error.args else type(error).__name__


def _credentials(settings: GoogleDriveSourceSettings) -> service_account.Credentials:
    path = settings.credentials_file.expanduser()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(
            f"Source {settings.name!r}: credentials_file {path} does not exist; download the service "
            "account's JSON key there."
        ) from None
    except (OSError, ValueError) as error:
        raise SourceError(
            f"Source {settings.name!r}: cannot read credentials_file {path} as JSON ({type(error).__name__})."
        ) from None
    try:
        credentials: service_account.Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=SCOPES
        )
    except (ValueError, KeyError, TypeError) as error:
        # The message names missing fields at most; a key that fails to parse says so only
        # by its type, so no part of it can reach a log.
        detail = str(error) if "missing fields" in str(error) else type(error).__name__
        raise SourceError(
            f"Source {settings.name!r}: credentials_file {path} is not a service-account key ({detail})."
        ) from None
    if settings.delegated_user:
        credentials = credentials.with_subject(settings.delegated_user)  # type: ignore[no-untyped-call]
    return credentials


def _request_builder(sleep: Sleep) -> type[HttpRequest]:
    """HttpRequest sleeping through `sleep` between retries (tests pass a fast one)."""

    class _Request(HttpRequest):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._sleep = sleep

    return _Request
