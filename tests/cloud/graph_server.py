"""A local Microsoft Graph and Entra ID token endpoint over HTTPS on loopback, faithful to the
parts the SharePoint source uses:

- `GET /{tenant}/v2.0/.well-known/openid-configuration` and
  `POST /{tenant}/oauth2/v2.0/token` (client credentials: a secret or a signed client
  assertion), what msal asks for with instance discovery off;
- `GET /v1.0/drives/{id}`, `GET /v1.0/sites/{host}:/{path}`, `GET /v1.0/sites/{id}/drives`;
- `GET /v1.0/drives/{id}/root/delta`: a full enumeration without a token, pages linked by
  `@odata.nextLink`, the last one carrying `@odata.deltaLink`; with a token, the items changed
  since it (their parent folders too, as Graph sends them), deleted ones with the `deleted`
  facet and no name, never `parentReference.path`; files whose sharing changed carry
  `@microsoft.graph.sharedChanged`; an expired token is `410 Gone` with a `Location` that
  starts a fresh enumeration;
- `GET /v1.0/drives/{id}/items/{id}/permissions`: the item's own permissions and those it
  inherits (with `inheritedFrom`);
- `GET /v1.0/drives/{id}/items/{id}/content`: `302` to a pre-authenticated download URL.

Tests mutate the drives in memory, inject failures (`fail`) and read the request log.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "s3cret-Graph~value"  # noqa: S105 - a test credential
HOSTNAME = "contoso.sharepoint.com"


# ------------------------------------------------------------------------------ permissions


def user_grant(email: str, role: str = "read") -> dict[str, Any]:
    return {"roles": [role], "grantedToV2": {"user": {"id": uuid.uuid4().hex, "displayName": email, "email": email}}}


def group_grant(name: str, email: str | None = None, role: str = "read") -> dict[str, Any]:
    if email is None:
        return {"roles": [role], "grantedToV2": {"siteGroup": {"id": "7", "displayName": name, "loginName": name}}}
    return {"roles": [role], "grantedToV2": {"group": {"id": uuid.uuid4().hex, "displayName": name, "email": email}}}


def link_grant(scope: str, *emails: str) -> dict[str, Any]:
    grant: dict[str, Any] = {"roles": ["read"], "link": {"scope": scope, "type": "view", "webUrl": "https://x/s/1"}}
    if emails:
        grant["grantedToIdentitiesV2"] = [{"user": {"email": email, "displayName": email}} for email in emails]
    return grant


# ------------------------------------------------------------------------------------ state


@dataclass
class Item:
    id: str
    name: str
    parent: str | None
    folder: bool
    content: bytes = b""
    modified: str = "2026-01-01T00:00:00Z"
    ctag: int = 1
    grants: list[dict[str, Any]] = field(default_factory=list)
    inherits: bool = True
    seq: int = 0
    deleted: bool = False
    sharing_seq: int = -1  # when its sharing last changed


@dataclass
class Drive:
    id: str
    name: str
    items: dict[str, Item] = field(default_factory=dict)
    root: str = ""
    denied: bool = False
    expired_before: int = 0  # delta tokens older than this answer 410


@dataclass
class Failure:
    matches: Callable[[str], bool]
    status: int
    times: int
    retry_after: str | None = None


class GraphState:
    def __init__(self, base: str) -> None:
        self.base = base
        self.lock = threading.RLock()
        self.drives: dict[str, Drive] = {}
        self.sites: dict[str, list[str]] = {}  # "/sites/<path>" → drive ids
        self.seq = itertools.count(1)
        self.last_seq = 0
        self.page_size = 200
        self.children_first = False  # full enumeration lists items before their folders
        self.repeat_across_pages = False  # each page starts with the previous page's last item
        self.failures: list[Failure] = []
        self.latency = 0.0  # seconds each Graph request takes (benchmarks imitate a network)
        self.next_link_base: str | None = None  # a hostile Graph: nextLinks to another server
        self.requests: list[str] = []  # "GET /v1.0/..." of every Graph request
        self.token_requests: list[dict[str, str]] = []
        self.tokens: set[str] = set()
        self.download_headers: list[dict[str, str]] = []
        self.bytes_sent = 0  # file content sent by the download URLs
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self.secret = CLIENT_SECRET
        self.certificate_thumbprints: set[str] = set()

    # -- building and changing drives ------------------------------------------------------

    def _tick(self) -> int:
        self.last_seq = next(self.seq)
        return self.last_seq

    def add_drive(self, name: str, drive_id: str | None = None, grants: list[dict[str, Any]] | None = None) -> Drive:
        with self.lock:
            drive = Drive(drive_id or f"b!{uuid.uuid4().hex}", name)
            root = Item(uuid.uuid4().hex.upper(), "root", None, True, grants=list(grants or []), inherits=False)
            root.seq = self._tick()
            drive.items[root.id] = root
            drive.root = root.id
            self.drives[drive.id] = drive
            return drive

    def add(
        self,
        drive: Drive,
        path: str,
        content: bytes | None = None,
        grants: list[dict[str, Any]] | None = None,
        inherits: bool = True,
    ) -> Item:
        """A file (content given) or folder at `path`, creating folders on the way."""
        with self.lock:
            parent = drive.root
            parts = path.split("/")
            for part in parts[:-1]:
                parent = self._child(drive, parent, part) or self.add(drive, self.path_of(drive, parent, part)).id
            item = Item(uuid.uuid4().hex.upper(), parts[-1], parent, content is None, content or b"")
            item.grants = list(grants or [])
            item.inherits = inherits
            item.seq = self._tick()
            item.modified = _now()
            drive.items[item.id] = item
            return item

    def path_of(self, drive: Drive, parent: str, name: str) -> str:
        names = [name]
        current: str | None = parent
        while current is not None and current != drive.root:
            names.append(drive.items[current].name)
            current = drive.items[current].parent
        return "/".join(reversed(names))

    def _child(self, drive: Drive, parent: str, name: str) -> str | None:
        return next(
            (i.id for i in drive.items.values() if i.parent == parent and i.name == name and not i.deleted), None
        )

    def find(self, drive: Drive, path: str) -> Item:
        current = drive.root
        for part in path.split("/"):
            found = self._child(drive, current, part)
            assert found is not None, f"no {path} in {drive.name}"
            current = found
        return drive.items[current]

    def edit(self, drive: Drive, path: str, content: bytes) -> None:
        with self.lock:
            item = self.find(drive, path)
            item.content, item.ctag, item.modified, item.seq = content, item.ctag + 1, _now(), self._tick()

    def rename(self, drive: Drive, path: str, name: str) -> None:
        with self.lock:
            item = self.find(drive, path)
            item.name, item.seq = name, self._tick()

    def move(self, drive: Drive, path: str, folder: str) -> None:
        with self.lock:
            item = self.find(drive, path)
            item.parent = self.find(drive, folder).id if folder else drive.root
            item.seq = self._tick()

    def delete(self, drive: Drive, path: str) -> None:
        with self.lock:
            item = self.find(drive, path)
            for gone in [item, *self._below(drive, item.id)]:
                gone.deleted, gone.seq = True, self._tick()

    def share(
        self, drive: Drive, path: str, grants: list[dict[str, Any]], inherits: bool = False, reported: bool = True
    ) -> None:
        """Replace the item's own sharing (content untouched); `reported=False`: delta does
        not report it (an app without Sites.FullControl.All may not be told)."""
        with self.lock:
            item = self.find(drive, path) if path else drive.items[drive.root]
            item.grants, item.inherits = list(grants), inherits
            if reported:
                item.seq = item.sharing_seq = self._tick()

    def expire_delta_tokens(self, drive: Drive) -> None:
        with self.lock:
            drive.expired_before = self.last_seq + 1

    def fail(self, fragment: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """The next `times` requests whose path and query contain `fragment` answer `status`."""
        with self.lock:
            self.failures.append(Failure(lambda target: fragment in target, status, times, retry_after))

    def _below(self, drive: Drive, item_id: str) -> list[Item]:
        """Everything under the item, each folder before its contents."""
        children: dict[str | None, list[Item]] = {}
        for item in drive.items.values():
            if not item.deleted:
                children.setdefault(item.parent, []).append(item)
        found: list[Item] = []
        pending = list(reversed(children.get(item_id, [])))
        while pending:
            item = pending.pop()
            found.append(item)
            pending.extend(reversed(children.get(item.id, [])))
        return found

    def graph_requests(self, fragment: str = "") -> list[str]:
        return [request for request in self.requests if fragment in request]

    # -- serving ---------------------------------------------------------------------------

    def item_json(self, drive: Drive, item: Item, since: int | None = None) -> dict[str, Any]:
        if item.deleted:
            return {"id": item.id, "deleted": {"state": "deleted"}, "parentReference": {"driveId": drive.id}}
        body: dict[str, Any] = {
            "id": item.id,
            "name": item.name,
            "eTag": f'"{{{item.id}}},{item.seq}"',
            "cTag": f'"c:{{{item.id}}},{item.ctag}"',
            "lastModifiedDateTime": item.modified,
            "webUrl": f"https://{HOSTNAME}/sites/x/{quote(drive.name)}/{item.id}",
            "parentReference": {"driveId": drive.id, "driveType": "documentLibrary"},
        }
        if item.id == drive.root:
            body["root"] = {}
            body["folder"] = {"childCount": 0}
        else:
            body["parentReference"]["id"] = item.parent
            if item.folder:
                body["folder"] = {
                    "childCount": sum(i.parent == item.id and not i.deleted for i in drive.items.values())
                }
            else:
                body["file"] = {"mimeType": "application/octet-stream"}
                body["size"] = len(item.content)
                if since is not None and item.sharing_seq > since:
                    body["@microsoft.graph.sharedChanged"] = "True"
        return body

    def enumeration(self, drive: Drive) -> list[dict[str, Any]]:
        ordered: list[Item] = [drive.items[drive.root]]
        ordered += self._below(drive, drive.root)
        if self.children_first:
            ordered.reverse()
        return [self.item_json(drive, item) for item in ordered]

    def changes(self, drive: Drive, since: int) -> list[dict[str, Any]]:
        changed = sorted((i for i in drive.items.values() if i.seq > since), key=lambda i: i.seq)
        result: list[dict[str, Any]] = []
        reported: set[str] = set()
        for item in changed:
            chain: list[Item] = []
            parent = item.parent
            while parent is not None and not item.deleted:  # the folders above, as Graph sends them
                chain.append(drive.items[parent])
                parent = drive.items[parent].parent
            for entry in [*reversed(chain), item]:
                if entry.id not in reported:
                    reported.add(entry.id)
                    result.append(self.item_json(drive, entry, since))
        return result

    def permissions(self, drive: Drive, item: Item) -> list[dict[str, Any]]:
        result = [dict(grant) for grant in item.grants]
        current = item
        while current.inherits and current.parent is not None:
            parent = drive.items[current.parent]
            for grant in parent.grants:
                result.append({**grant, "inheritedFrom": {"driveId": drive.id, "id": parent.id}})
            current = parent
        return [{"id": f"p{n}", **grant} for n, grant in enumerate(result)]

    def paged(self, drive: Drive, items: list[dict[str, Any]], delta_token: int) -> tuple[str, list[dict[str, Any]]]:
        """Split into pages; the key of the first page."""
        size = self.page_size
        pages = [items[start : start + size] for start in range(0, len(items), size)] or [[]]
        if self.repeat_across_pages:
            pages = [pages[0]] + [[previous[-1], *page] for previous, page in zip(pages, pages[1:], strict=False)]
        key = uuid.uuid4().hex
        for number, page in enumerate(pages):
            link = (
                {
                    "@odata.nextLink": f"{self.next_link_base or self.base}/v1.0/drives/{drive.id}/root/delta"
                    f"?page={key}&n={number + 1}"
                }
                if number + 1 < len(pages)
                else {"@odata.deltaLink": f"{self.base}/v1.0/drives/{drive.id}/root/delta?token={delta_token}"}
            )
            self._pages[f"{key}:{number}"] = [{"value": page, **link}]
        return key, pages[0]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Handler(BaseHTTPRequestHandler):
    state: GraphState
    protocol_version = "HTTP/1.1"  # keep-alive, as Graph and httpx's pool use it
    disable_nagle_algorithm = True  # headers and body written apart must not wait for an ACK

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        parts = urlsplit(self.path).path.strip("/").split("/")
        if parts[1:] != ["oauth2", "v2.0", "token"] or parts[0] != TENANT:
            return self._json(404, {"error": "not_found"})
        state = self.state
        with state.lock:
            state.token_requests.append(form)
        good_secret = form.get("client_secret") == state.secret
        good_assertion = _assertion_thumbprint(form.get("client_assertion", "")) in state.certificate_thumbprints
        if form.get("client_id") != CLIENT_ID or not (good_secret or good_assertion):
            return self._json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                    "sent in the request is the client secret value.\r\nTrace ID: 1\r\nCorrelation ID: 2",
                },
            )
        token = f"tok-{uuid.uuid4().hex}"
        with state.lock:
            state.tokens.add(token)
        self._json(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def do_GET(self) -> None:  # noqa: N802
        state = self.state
        url = urlsplit(self.path)
        path, query = unquote(url.path), {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
            return self._json(
                200,
                {
                    "token_endpoint": f"{state.base}/{TENANT}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{state.base}/{TENANT}/oauth2/v2.0/authorize",
                    "issuer": f"{state.base}/{TENANT}/v2.0",
                },
            )
        if path.startswith("/download/"):
            with state.lock:
                state.requests.append(f"GET {path}")
                state.download_headers.append(dict(self.headers))
            _, _, drive_id, item_id = path.split("/")
            item = state.drives[drive_id].items.get(item_id)
            if item is None or item.deleted or query.get("tempauth") != "ok":
                return self._json(404, {"error": {"code": "itemNotFound"}})
            return self._bytes(item.content, self.headers.get("range"))
        if not path.startswith("/v1.0/"):
            return self._json(404, {"error": {"code": "notFound"}})
        if state.latency:
            time.sleep(state.latency)
        with state.lock:
            state.requests.append(f"GET {self.path}")
            for failure in state.failures:
                if failure.times > 0 and failure.matches(self.path):
                    failure.times -= 1
                    headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                    return self._json(failure.status, {"error": {"code": "injected", "message": "x"}}, headers)
        token = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        if token not in state.tokens:
            return self._json(401, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})
        with state.lock:
            return self._graph(path.removeprefix("/v1.0"), query)

    def _graph(self, path: str, query: dict[str, str]) -> None:
        state = self.state
        parts = path.strip("/").split("/")
        if parts[0] == "sites":
            site = path.removeprefix(f"/sites/{HOSTNAME}:")
            if site in state.sites:
                return self._json(200, {"id": f"{HOSTNAME},{abs(hash(site))},1", "_path": site})
            if len(parts) == 3 and parts[2] == "drives":
                site = next((s for s in state.sites if f"{HOSTNAME},{abs(hash(s))},1" == parts[1]), None)
                if site is not None:
                    drives = [state.drives[d] for d in state.sites[site]]
                    return self._json(
                        200,
                        {
                            "value": [
                                {"id": d.id, "name": d.name, "webUrl": f"https://{HOSTNAME}{site}/{d.name}"}
                                for d in drives
                            ]
                        },
                    )
            return self._json(404, {"error": {"code": "itemNotFound", "message": "no such site"}})
        if parts[0] != "drives" or parts[1] not in state.drives:
            return self._json(404, {"error": {"code": "itemNotFound", "message": "no such drive"}})
        drive = state.drives[parts[1]]
        if drive.denied:
            return self._json(403, {"error": {"code": "accessDenied", "message": "Access denied"}})
        rest = parts[2:]
        if not rest:
            return self._json(
                200, {"id": drive.id, "name": drive.name, "webUrl": f"https://{HOSTNAME}/sites/x/{drive.name}"}
            )
        if rest == ["root", "delta"]:
            return self._delta(drive, query)
        if len(rest) == 3 and rest[0] == "items":
            item = drive.items.get(rest[1])
            if item is None or item.deleted:
                return self._json(404, {"error": {"code": "itemNotFound", "message": "not found"}})
            if rest[2] == "permissions":
                return self._json(200, {"value": state.permissions(drive, item)})
            if rest[2] == "content":
                location = f"{state.base}/download/{drive.id}/{item.id}?tempauth=ok"
                return self._json(302, {}, {"Location": location})
        return self._json(404, {"error": {"code": "notFound"}})

    def _delta(self, drive: Drive, query: dict[str, str]) -> None:
        state = self.state
        if "page" in query:
            page = state._pages.get(f"{query['page']}:{query['n']}")
            if page is None:
                return self._json(400, {"error": {"code": "invalidRequest"}})
            return self._json(200, page[0])
        if "token" in query:
            since = int(query["token"])
            if since < drive.expired_before:
                fresh = f"{state.base}/v1.0/drives/{drive.id}/root/delta"
                return self._json(
                    410,
                    {"error": {"code": "resyncRequired", "message": "Resync required. Replace any local items."}},
                    {"Location": fresh},
                )
            items = state.changes(drive, since)
        else:
            items = state.enumeration(drive)
        key, _ = state.paged(drive, items, state.last_seq)
        return self._json(200, state._pages[f"{key}:0"][0])

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _bytes(self, data: bytes, ranged: str | None) -> None:
        total = len(data)
        if ranged and ranged.startswith("bytes=0-"):
            data = data[: int(ranged.removeprefix("bytes=0-")) + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{total}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with self.state.lock:
            self.state.bytes_sent += len(data)
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (a file over its cap)


def _assertion_thumbprint(assertion: str) -> str:
    """The x5t (SHA-1 thumbprint, base64url) in a client assertion's header, hex upper-case."""
    import base64

    if assertion.count(".") != 2:
        return ""
    header = assertion.split(".")[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        return base64.urlsafe_b64decode(decoded["x5t"] + "==").hex().upper()
    except (ValueError, KeyError):
        return ""


def self_signed(folder: Path, name: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for loopback and its key (PEM files), valid for a day."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "graph-cert.pem", folder / "graph-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the source reads permissions 8 at a time


@contextmanager
def graph_server(folder: Path) -> Iterator[tuple[GraphState, Path]]:
    """A running server on 127.0.0.1 over HTTPS: (state, CA file to trust)."""
    cert, key = self_signed(folder)
    server = _Server(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    # The TLS handshake happens in each connection's thread, not in the accepting one.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    state = GraphState(f"https://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = type("Handler", (_Handler,), {"state": state})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, cert
    finally:
        server.shutdown()
        server.server_close()
