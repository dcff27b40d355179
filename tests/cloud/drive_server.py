"""A local Google Drive v3 server for the Google Drive source's tests: the endpoints the source
uses, answering as Drive does, over real HTTP on loopback, plus the OAuth token endpoint a
service-account key's `token_uri` points at.

- `POST /token`: the JWT-bearer grant. The assertion's RS256 signature is checked with the
  test key's public key, and its `iss`, `aud`, `scope` and (with delegation) `sub`.
- `GET /drive/v3/changes/startPageToken`, `/drive/v3/changes`: a change log with one entry
  per mutation; a page lists each changed file once, in its current state; tokens issued
  before `expire_tokens()` are refused like Drive refuses an unknown token (400, location
  pageToken).
- `GET /drive/v3/files` (`q="trashed = false"`, `corpora`, `driveId`, `pageSize`,
  `pageToken`, `fields`), `/drive/v3/files/{id}` (metadata or `alt=media` with `Range`),
  `/drive/v3/files/{id}/export`, `/drive/v3/files/{id}/permissions` (also on a shared
  drive's id: its members). Shared-drive items carry `permissionDetails` saying which
  permissions are inherited and from where, as Drive reports them.

Not imitated: search syntax beyond `trashed = false`, `drives.list`, uploads and writes,
export size limits, shortcuts, labels, quota headers, resource keys.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

FOLDER = "application/vnd.google-apps.folder"
GOOGLE_DOC = "application/vnd.google-apps.document"
SCOPE = "https://www.googleapis.com/auth/drive.readonly"
AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class Item:
    """A file or folder as Drive stores it."""

    id: str
    name: str
    mime_type: str
    parent: str  # a folder id, or the shared drive's id for its top level
    drive_id: str | None
    content: bytes = b""
    version: int = 1
    modified: int = 1_700_000_000  # epoch seconds of the last content change
    trashed: bool = False
    # Permissions set directly on this item (Drive's Permission resources, without ids).
    permissions: list[dict[str, Any]] = field(default_factory=list)
    inherited_permissions_disabled: bool = False


@dataclass(frozen=True)
class Failure:
    """A scripted answer: the next `times` requests whose path matches get it instead."""

    path: str  # a regular expression searched in the request path + "?" + query
    status: int
    body: dict[str, Any]
    times: int


def error_body(status: int, reason: str, message: str, location: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"domain": "global", "reason": reason, "message": message}
    if location:
        detail.update(locationType="parameter", location=location)
    return {"error": {"code": status, "message": message, "errors": [detail]}}


class DriveState:
    """The drive the server serves; tests mutate it between syncs."""

    def __init__(self, service_account: str, public_key: bytes, token_uri: str) -> None:
        self.service_account = service_account
        self.public_key = public_key
        self.token_uri = token_uri
        self.expected_subject: str | None = None
        self.refuse_tokens = False
        self.lock = threading.RLock()
        self.drives: dict[str, dict[str, Any]] = {}  # id -> {name, members, forbidden}
        self.items: dict[str, Item] = {}
        self.removed_drives: dict[str, str | None] = {}  # deleted item id -> its shared drive
        self.log: list[tuple[int, str]] = []  # (sequence, item id)
        self.sequence = itertools.count(100)
        self.oldest_valid_token = 0
        self.tokens: set[str] = set()
        self.requests: list[str] = []  # "GET /drive/v3/files?..." in order
        self.failures: list[Failure] = []
        self.max_page_size = 1000
        self.repeat_on_next_page = False  # the last item of a page opens the next one too
        self.ids = itertools.count(1)

    # -- building and changing the drive ------------------------------------------------

    def add_drive(self, drive_id: str, name: str, members: list[dict[str, Any]]) -> None:
        with self.lock:
            self.drives[drive_id] = {"name": name, "members": members, "forbidden": False}

    def add(
        self,
        name: str,
        parent: str,
        content: bytes = b"",
        mime_type: str = "application/octet-stream",
        permissions: list[dict[str, Any]] | None = None,
        item_id: str | None = None,
    ) -> Item:
        with self.lock:
            item = Item(
                id=item_id or f"f{next(self.ids):05d}",
                name=name,
                mime_type=mime_type,
                parent=parent,
                drive_id=self._drive_of(parent),
                content=content,
                permissions=list(permissions or []),
            )
            self.items[item.id] = item
            self._changed(item.id)
            return item

    def folder(self, name: str, parent: str, permissions: list[dict[str, Any]] | None = None) -> Item:
        return self.add(name, parent, mime_type=FOLDER, permissions=permissions)

    def edit(self, item_id: str, content: bytes) -> None:
        with self.lock:
            item = self.items[item_id]
            item.content, item.version, item.modified = content, item.version + 1, item.modified + 60
            self._changed(item_id)

    def rename(self, item_id: str, name: str) -> None:
        with self.lock:
            item = self.items[item_id]
            item.name, item.version = name, item.version + 1
            self._changed(item_id)

    def move(self, item_id: str, parent: str) -> None:
        with self.lock:
            item = self.items[item_id]
            item.parent, item.version = parent, item.version + 1
            self._changed(item_id)

    def trash(self, item_id: str) -> None:
        with self.lock:
            self.items[item_id].trashed = True
            self.items[item_id].version += 1
            self._changed(item_id)

    def delete(self, item_id: str) -> None:
        with self.lock:
            self.removed_drives[item_id] = self.items.pop(item_id).drive_id
            self._changed(item_id)

    def share(self, item_id: str, permissions: list[dict[str, Any]]) -> None:
        """Replace the permissions set directly on an item (its content stays as it is)."""
        with self.lock:
            item = self.items[item_id]
            item.permissions, item.version = list(permissions), item.version + 1
            self._changed(item_id)

    def expire_tokens(self) -> None:
        """Every page token issued so far is refused from now on."""
        with self.lock:
            self.oldest_valid_token = next(self.sequence)

    def fail(self, path: str, status: int, reason: str, times: int = 1) -> None:
        with self.lock:
            self.failures.append(Failure(path, status, error_body(status, reason, reason), times))

    def take_requests(self) -> list[str]:
        with self.lock:
            taken, self.requests = self.requests, []
            return taken

    def _changed(self, item_id: str) -> None:
        self.log.append((next(self.sequence), item_id))

    def _drive_of(self, parent: str) -> str | None:
        if parent in self.drives:
            return parent
        item = self.items.get(parent)
        return item.drive_id if item else None

    # -- what Drive answers ---------------------------------------------------------------

    def file_resource(self, item: Item) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "kind": "drive#file",
            "id": item.id,
            "name": item.name,
            "mimeType": item.mime_type,
            "parents": [item.parent],
            "trashed": item.trashed,
            "version": str(item.version),
            "modifiedTime": _rfc3339(item.modified),
            "webViewLink": _link(item),
        }
        if item.mime_type != FOLDER and not item.mime_type.startswith("application/vnd.google-apps."):
            resource["size"] = str(len(item.content))
            resource["md5Checksum"] = f"md5-{hash(item.content) & 0xFFFFFFFF:08x}"
        if item.drive_id:
            resource["driveId"] = item.drive_id
            resource["hasAugmentedPermissions"] = bool(item.permissions)
        if item.mime_type == FOLDER:
            resource["inheritedPermissionsDisabled"] = item.inherited_permissions_disabled
        return resource

    def effective_permissions(self, item: Item) -> list[dict[str, Any]]:
        """Drive's answer to permissions.list: direct permissions, then those inherited from
        each folder above (and a shared drive's members), with permissionDetails on shared
        drive items."""
        shared = item.drive_id is not None
        result = [_with_details(p, False, None, "file", shared) for p in item.permissions]
        chain_disabled = item.inherited_permissions_disabled
        parent = item.parent
        while not chain_disabled:
            if parent in self.drives:
                members = self.drives[parent]["members"]
                result += [_with_details(p, True, parent, "member", True) for p in members]
                break
            above = self.items.get(parent)
            if above is None:
                break
            result += [_with_details(p, True, above.id, "file", shared) for p in above.permissions]
            chain_disabled = above.inherited_permissions_disabled
            parent = above.parent
        for number, permission in enumerate(result):
            permission["id"] = f"p{number}"
            permission["kind"] = "drive#permission"
        return result


def _with_details(
    permission: dict[str, Any], inherited: bool, source: str | None, kind: str, shared: bool
) -> dict[str, Any]:
    copy = dict(permission)
    if shared:
        detail: dict[str, Any] = {
            "permissionType": kind,
            "role": permission.get("role", "reader"),
            "inherited": inherited,
        }
        if source:
            detail["inheritedFrom"] = source
        copy["permissionDetails"] = [detail]
    return copy


def _link(item: Item) -> str:
    """Drive's webViewLink: Docs Editors files open in their editor, the rest in Drive."""
    if item.mime_type == GOOGLE_DOC:
        return f"https://docs.google.com/document/d/{item.id}/edit?usp=drivesdk"
    if item.mime_type == FOLDER:
        return f"https://drive.google.com/drive/folders/{item.id}"
    return f"https://drive.google.com/file/d/{item.id}/view?usp=drivesdk"


def _rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- partial responses (`fields`) ---------------------------------------------------------


def parse_fields(text: str) -> dict[str, Any]:
    """`nextPageToken, files(id,name)` → {"nextPageToken": {}, "files": {"id": {}, "name": {}}}."""
    position = 0

    def parse(until: str | None) -> dict[str, Any]:
        nonlocal position
        found: dict[str, Any] = {}
        name = ""
        while position < len(text):
            char = text[position]
            position += 1
            if char == "(":
                found[name.strip()] = parse(")")
                name = ""
            elif char == "," or char == until:
                if name.strip():
                    found[name.strip()] = {}
                name = ""
                if char == until:
                    return found
            else:
                name += char
        if name.strip():
            found[name.strip()] = {}
        return found

    return parse(None)


def select(value: Any, fields: dict[str, Any]) -> Any:
    if not fields or fields.get("*") == {}:
        return value
    if isinstance(value, list):
        return [select(entry, fields) for entry in value]
    if isinstance(value, dict):
        return {key: select(value[key], sub) for key, sub in fields.items() if key in value}
    return value


# -- HTTP -------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    state: DriveState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        url = urlsplit(self.path)
        with self.state.lock:
            self.state.requests.append(f"POST {url.path}")
        if url.path != "/token":
            return self._json(404, error_body(404, "notFound", "Not Found"))
        form = {key: values[0] for key, values in parse_qs(body).items()}
        self._token(form)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        state = self.state
        with state.lock:
            state.requests.append(f"GET {url.path}?{url.query}")
            for number, failure in enumerate(state.failures):
                if re.search(failure.path, f"{url.path}?{url.query}"):
                    if failure.times <= 1:
                        del state.failures[number]
                    else:
                        state.failures[number] = Failure(failure.path, failure.status, failure.body, failure.times - 1)
                    return self._json(failure.status, failure.body)
            if self.headers.get("Authorization", "") not in {f"Bearer {token}" for token in state.tokens}:
                return self._json(401, error_body(401, "authError", "Invalid Credentials"))
            routes: list[tuple[str, Callable[..., None]]] = [
                (r"/drive/v3/changes/startPageToken", self._start_token),
                (r"/drive/v3/changes", self._changes),
                (r"/drive/v3/files", self._files),
                (r"/drive/v3/files/([^/]+)", self._file),
                (r"/drive/v3/files/([^/]+)/export", self._export),
                (r"/drive/v3/files/([^/]+)/permissions", self._permissions),
                (r"/drive/v3/drives/([^/]+)", self._drive),
            ]
            for pattern, route in routes:
                match = re.fullmatch(pattern, url.path)
                if match:
                    return route(query, *match.groups())
        self._json(404, error_body(404, "notFound", "Not Found"))

    # -- token ------------------------------------------------------------------------

    def _token(self, form: dict[str, str]) -> None:
        state = self.state
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._json(400, {"error": "unsupported_grant_type"})
        if state.refuse_tokens:
            return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        try:
            claims = jwt.decode(form.get("assertion", ""), state.public_key, algorithms=["RS256"], audience=AUDIENCE)
        except jwt.PyJWTError as error:
            return self._json(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {error}"})
        if claims.get("iss") != state.service_account or SCOPE not in str(claims.get("scope", "")).split():
            return self._json(400, {"error": "invalid_scope", "error_description": "Wrong issuer or scope."})
        if claims.get("sub") != state.expected_subject:
            return self._json(401, {"error": "unauthorized_client", "error_description": "Wrong subject."})
        token = f"ya29.test-{next(state.ids)}"
        state.tokens.add(token)
        self._json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    # -- changes ----------------------------------------------------------------------

    def _drive_param(self, query: dict[str, str]) -> str | None | bool:
        """The shared drive a request names (None: the user's corpus); False after an answer
        was sent (unknown or refused drive)."""
        drive = query.get("driveId")
        if drive is None:
            return None
        if query.get("supportsAllDrives") != "true":
            self._json(400, error_body(400, "invalid", "driveId requires supportsAllDrives", "driveId"))
            return False
        if drive not in self.state.drives:
            self._json(404, error_body(404, "notFound", f"Shared drive not found: {drive}", "driveId"))
            return False
        if self.state.drives[drive]["forbidden"]:
            self._json(403, error_body(403, "insufficientFilePermissions", "The user does not have access."))
            return False
        return drive

    def _start_token(self, query: dict[str, str]) -> None:
        drive = self._drive_param(query)
        if drive is False:
            return
        token = str(next(self.state.sequence))
        self._json(200, select({"kind": "drive#startPageToken", "startPageToken": token}, self._fields(query)))

    def _changes(self, query: dict[str, str]) -> None:
        state = self.state
        drive = self._drive_param(query)
        if drive is False:
            return
        if drive is not None and query.get("includeItemsFromAllDrives") != "true":
            return self._json(400, error_body(400, "invalid", "driveId requires includeItemsFromAllDrives", "driveId"))
        token = query.get("pageToken", "")
        if not token.isdigit() or int(token) < state.oldest_valid_token:
            return self._json(400, error_body(400, "invalid", "Invalid Value", "pageToken"))
        since = int(token)
        latest: dict[str, int] = {}
        for sequence, item_id in state.log:
            if sequence >= since:
                latest[item_id] = sequence
        ordered = sorted(latest.items(), key=lambda pair: pair[1])
        changes = []
        for item_id, sequence in ordered:
            item = state.items.get(item_id)
            item_drive = item.drive_id if item else self._removed_drive(item_id)
            if item_drive != drive:
                continue
            change: dict[str, Any] = {"kind": "drive#change", "changeType": "file", "fileId": item_id, "_seq": sequence}
            change["time"] = _rfc3339(1_700_000_000)
            if item is None:
                change["removed"] = True
            else:
                change["removed"] = False
                change["file"] = state.file_resource(item)
            changes.append(change)
        size = min(int(query.get("pageSize", "100")), state.max_page_size)
        page, rest = changes[:size], changes[size:]
        body: dict[str, Any] = {"kind": "drive#changeList"}
        if rest:
            body["nextPageToken"] = str(rest[0]["_seq"])
        else:
            body["newStartPageToken"] = str(next(state.sequence))
        body["changes"] = [{k: v for k, v in change.items() if k != "_seq"} for change in page]
        self._json(200, select(body, self._fields(query)))

    def _removed_drive(self, item_id: str) -> str | None:
        return self.state.removed_drives.get(item_id)

    # -- files ------------------------------------------------------------------------

    def _files(self, query: dict[str, str]) -> None:
        state = self.state
        drive = self._drive_param(query)
        if drive is False:
            return
        if drive is not None and (query.get("corpora") != "drive" or query.get("includeItemsFromAllDrives") != "true"):
            return self._json(400, error_body(400, "invalid", "driveId requires corpora=drive", "corpora"))
        match = re.fullmatch(r"(?:'([\w-]+)' in parents and )?trashed = false", query.get("q", ""))
        if not match:
            return self._json(400, error_body(400, "invalid", "Invalid Value", "q"))
        parent = match.group(1)
        items = [
            item
            for item in sorted(state.items.values(), key=lambda item: item.id)
            if item.drive_id == drive and not item.trashed and (parent is None or item.parent == parent)
        ]
        size = min(int(query.get("pageSize", "100")), state.max_page_size)
        start = int(query.get("pageToken", "0") or 0)
        page = items[start : start + size]
        if state.repeat_on_next_page and start > 0:
            page = [items[start - 1], *page]
        body: dict[str, Any] = {"kind": "drive#fileList", "files": [state.file_resource(item) for item in page]}
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        self._json(200, select(body, self._fields(query)))

    def _item(self, item_id: str, query: dict[str, str], all_drives_flag: bool = True) -> Item | None:
        item = self.state.items.get(item_id)
        if item is None or (all_drives_flag and item.drive_id and query.get("supportsAllDrives") != "true"):
            self._json(404, error_body(404, "notFound", f"File not found: {item_id}.", "fileId"))
            return None
        if item.drive_id and self.state.drives[item.drive_id]["forbidden"]:
            self._json(403, error_body(403, "insufficientFilePermissions", "The user does not have access."))
            return None
        return item

    def _file(self, query: dict[str, str], item_id: str) -> None:
        item = self._item(item_id, query)
        if item is None:
            return
        if query.get("alt") != "media":
            return self._json(200, select(self.state.file_resource(item), self._fields(query)))
        if item.mime_type.startswith("application/vnd.google-apps."):
            return self._json(
                403, error_body(403, "fileNotDownloadable", "Only files with binary content can be downloaded.")
            )
        self._content(item.content, item.mime_type)

    def _export(self, query: dict[str, str], item_id: str) -> None:
        item = self._item(item_id, query, all_drives_flag=False)  # files.export has no supportsAllDrives
        if item is None:
            return
        if not item.mime_type.startswith("application/vnd.google-apps.") or not query.get("mimeType"):
            return self._json(
                400, error_body(400, "badRequest", "Export only supports Docs Editors files.", "mimeType")
            )
        self._content(item.content, query["mimeType"], ranges=False)

    def _drive(self, query: dict[str, str], drive_id: str) -> None:
        drive = self._drive_param({"driveId": drive_id, "supportsAllDrives": "true"})
        if drive is False:
            return
        self._json(
            200,
            select(
                {"kind": "drive#drive", "id": drive_id, "name": self.state.drives[drive_id]["name"]},
                self._fields(query),
            ),
        )

    def _permissions(self, query: dict[str, str], item_id: str) -> None:
        state = self.state
        if item_id in state.drives:
            if query.get("supportsAllDrives") != "true":
                return self._json(404, error_body(404, "notFound", f"File not found: {item_id}.", "fileId"))
            drive = state.drives[item_id]
            if drive["forbidden"]:
                return self._json(403, error_body(403, "insufficientFilePermissions", "The user does not have access."))
            permissions = [_with_details(p, False, None, "member", True) for p in drive["members"]]
            for number, permission in enumerate(permissions):
                permission["id"] = f"m{number}"
        else:
            item = self._item(item_id, query)
            if item is None:
                return
            permissions = state.effective_permissions(item)
        self._json(200, select({"kind": "drive#permissionList", "permissions": permissions}, self._fields(query)))

    # -- writing ------------------------------------------------------------------------

    def _fields(self, query: dict[str, str]) -> dict[str, Any]:
        return parse_fields(query.get("fields", ""))

    def _content(self, content: bytes, mime_type: str, ranges: bool = True) -> None:
        header = self.headers.get("Range", "")
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", header) if ranges else None
        if match and content:
            first = int(match.group(1))
            last = min(int(match.group(2)) if match.group(2) else len(content) - 1, len(content) - 1)
            part = content[first : last + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(content)}")
        else:
            part = content
            self.send_response(200)
        self.send_header("Content-Type", mime_type)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serve_drive(service_account: str, public_key: bytes) -> Iterator[tuple[DriveState, str]]:
    """Run the server on a free loopback port; yields the state and its root URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    root = f"http://127.0.0.1:{server.server_address[1]}"
    state = DriveState(service_account, public_key, f"{root}/token")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"state": state})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, root
    finally:
        server.shutdown()
        server.server_close()
