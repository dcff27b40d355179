"""Turns a file's bytes into a LoadedDocument, choosing the loader by file suffix.

Loaders take bytes, not a path, so a sync hashes and parses the very same read. Whatever a
parsing library raises on a bad file is turned into a LoaderError here, at the edge, with
the reason; only UnsupportedFormatError (a LoaderError) says "no loader for this type".

`ParseLimits` bound what a file may inflate to (Office archives are checked before a
library opens them) and the text it may produce (LimitExceededError). Time and memory
are bounded by running this in a parser process (knowledge/loaders/worker.py)."""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable
from pathlib import Path

from knowledge.errors import EncryptedDocumentError, LimitExceededError, LoaderError, UnsupportedFormatError
from knowledge.limits import ParseLimits
from knowledge.loaders.archives import check_archive
from knowledge.loaders.html import load_html
from knowledge.loaders.markdown import load_markdown
from knowledge.loaders.pdf import load_pdf
from knowledge.loaders.slides import load_pptx
from knowledge.loaders.structured import load_json, load_yaml
from knowledge.loaders.tables import load_csv, load_xlsx
from knowledge.loaders.text import load_text
from knowledge.loaders.word import load_docx
from knowledge.types import LoadedDocument

Loader = Callable[[Path, bytes], LoadedDocument]

LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".xlsm": load_xlsx,
    ".csv": load_csv,
    ".tsv": load_csv,
    ".json": load_json,
    ".yaml": load_yaml,
    ".yml": load_yaml,
}

ARCHIVE_SUFFIXES = frozenset({".docx", ".pptx", ".xlsx", ".xlsm"})
# A password-protected Office file is not a zip but an OLE2 container (EncryptedPackage).
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Office files are zip archives: a truncated one fails inside zipfile, not the library.
_KNOWN_FAILURES = {zipfile.BadZipFile: "not a valid Office file (damaged or truncated zip)"}


def is_supported(path: Path) -> bool:
    """True when a loader exists for the file's suffix (case-insensitive)."""
    return path.suffix.lower() in LOADERS


DEFAULT_LIMITS = ParseLimits()


def load_document(path: Path, data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> LoadedDocument:
    """Parse `data`, the content of the file at `path` (only its name and suffix are used).

    Raises UnsupportedFormatError for a suffix with no loader (images, binaries),
    EncryptedDocumentError for a password-protected PDF or Office file, LimitExceededError
    when the file would inflate or produce more than `limits` allow, and LoaderError with the
    reason for a corrupt or unparseable file. MemoryError passes through: the caller that
    set the memory bound reports it."""
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise UnsupportedFormatError(f"no loader for {path.suffix or 'files without a suffix'} ({path.name})")
    if suffix in ARCHIVE_SUFFIXES and data.startswith(_OLE2_MAGIC):
        raise EncryptedDocumentError("password-protected Office file; remove the password or exclude it")
    if suffix == ".json":  # nested JSON inflates most as it prints: stop at the cap, not after
        loader = functools.partial(load_json, max_chars=limits.max_text_chars)
    try:
        if suffix in ARCHIVE_SUFFIXES:
            check_archive(data, limits)
        document = loader(path, data)
    except (LoaderError, MemoryError):
        raise
    except Exception as error:  # parsers of untrusted files raise anything
        reason = next((text for kind, text in _KNOWN_FAILURES.items() if isinstance(error, kind)), None)
        detail = str(error).strip() or type(error).__name__
        raise LoaderError(
            f"{reason or 'cannot parse ' + path.suffix.lstrip('.').upper() + ' file'}: {detail}"
        ) from error
    characters = sum(len(section.text) for section in document.sections)
    if characters > limits.max_text_chars:
        raise LimitExceededError(
            f"it gives {characters:,} characters of text, over the {limits.max_text_chars:,} limit "
            "(index.max_text_chars); split the file or raise the limit"
        )
    return document


__all__ = ["ARCHIVE_SUFFIXES", "LOADERS", "Loader", "is_supported", "load_document"]
