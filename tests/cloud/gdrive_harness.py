"""Fixtures for the Google Drive source's tests: a throwaway service-account key, the local
Drive server, a shared drive of real documents, and a KnowledgeBase indexing it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from knowledge.config import GoogleDriveSourceSettings
from knowledge.sources.gdrive import GoogleDriveSource
from tests.cloud.drive_server import GOOGLE_DOC, DriveState, serve_drive
from tests.support.files import PHRASES, write_document

SERVICE_ACCOUNT = "lore-indexer@lore-test.iam.gserviceaccount.com"
DRIVE = "0AHRdrive"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
HR_GROUP = "hr@example.com"
ONBOARDING = "the onboarding buddy meets new staff on day one"


def person(email: str, role: str = "reader") -> dict[str, Any]:
    return {"type": "user", "emailAddress": email, "role": role}


@dataclass
class Drive:
    """The server, its state and the settings pointing a source at it."""

    state: DriveState
    root: str
    key_file: Path
    private_key_pem: str
    state_dir: Path
    ids: dict[str, str] = field(default_factory=dict)  # name -> item id
    sleeps: list[float] = field(default_factory=list)

    def settings(self, **overrides: Any) -> GoogleDriveSourceSettings:
        values: dict[str, Any] = {
            "kind": "gdrive",
            "name": "drive",
            "credentials_file": self.key_file,
            "drives": [DRIVE],
            "api_endpoint": self.root,
        }
        values.update(overrides)
        return GoogleDriveSourceSettings(**values)

    def source(self, **overrides: Any) -> GoogleDriveSource:
        return GoogleDriveSource(self.settings(**overrides), self.state_dir, sleep=self.sleeps.append)


def document(tmp: Path, name: str, phrase: str | None = None) -> bytes:
    path = write_document(tmp / "docs" / name, phrase)
    data = path.read_bytes()
    path.unlink()
    return data


@contextmanager
def drive_server(tmp: Path) -> Iterator[Drive]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with serve_drive(SERVICE_ACCOUNT, public_pem) as (state, root):
        key_file = tmp / "service-account.json"
        key_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "lore-test",
                    "private_key_id": "k1",
                    "private_key": private_pem,
                    "client_email": SERVICE_ACCOUNT,
                    "client_id": "1234567890",
                    "token_uri": state.token_uri,
                }
            )
        )
        yield Drive(state, root, key_file, private_pem, tmp / "home" / "index" / "sources")


def populate(drive: Drive, tmp: Path) -> None:
    """A shared drive "HR" (members: alice, the hr group) with a document of each kind."""
    state = drive.state
    state.add_drive(
        DRIVE, "HR", [person(ALICE, "organizer"), {"type": "group", "emailAddress": HR_GROUP, "role": "reader"}]
    )
    policies = state.folder("Policies", DRIVE)
    drive.ids["Policies"] = policies.id
    for name, parent in [
        ("leave.md", policies.id),
        ("benefits.docx", DRIVE),
        ("desks.xlsx", DRIVE),
        ("printer.pdf", DRIVE),
    ]:
        drive.ids[name] = state.add(name, parent, document(tmp, name)).id
    drive.ids["Onboarding"] = state.add(
        "Onboarding", DRIVE, document(tmp, "onboarding.docx", ONBOARDING), mime_type=GOOGLE_DOC
    ).id
    drive.ids["Sketch"] = state.add("Sketch", DRIVE, b"", mime_type="application/vnd.google-apps.drawing").id


PHRASE_MD, PHRASE_DOCX, PHRASE_XLSX, PHRASE_PDF = (PHRASES[s] for s in (".md", ".docx", ".xlsx", ".pdf"))
