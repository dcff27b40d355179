"""Redaction: secrets never reach a training set (a model repeats what it learns to anyone).

Secrets (API keys, tokens, passwords, private keys) are always replaced; e-mail addresses and
phone numbers only when asked, because in a company handbook they are usually the very answer
("who do I ask?")."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import partial

PLACEHOLDER = "[REDACTED {kind}]"

# Order matters: a private key block is removed whole before the token patterns see its body.
_SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private_key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
    ),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("github_token", re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}")),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("api_key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    (
        "password",
        # `password: hunter2`, `api_key = "abc"`, `secret=...`: keep the key, drop the value.
        re.compile(
            r"(?i)\b((?:pass(?:word|wd|phrase)?|pwd|secret|api[_-]?key|access[_-]?token|"
            r"auth[_-]?token|client[_-]?secret)\b[\"']?\s*[:=]\s*)([\"']?)([^\s\"',;]{3,})\2"
        ),
    ),
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w.+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w])")
_MIN_PHONE_DIGITS = 9  # fewer digits are dates, amounts or version numbers


@dataclass(frozen=True)
class Redactor:
    """Replaces secrets (always) and e-mail addresses / phone numbers (when enabled)."""

    emails: bool = False
    phones: bool = False

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """`text` with every finding replaced by `[REDACTED kind]`, and the counts per kind."""
        counts: Counter[str] = Counter()
        for kind, pattern in _SECRETS:
            text = pattern.sub(partial(_replace, kind=kind, counts=counts), text)
        if self.emails:
            text = _EMAIL.sub(partial(_replace, kind="email", counts=counts), text)
        if self.phones:
            text = _PHONE.sub(partial(_phone, counts=counts), text)
        return text, counts


def _replace(match: re.Match[str], kind: str, counts: Counter[str]) -> str:
    counts[kind] += 1
    if kind == "password":
        return f"{match.group(1)}{PLACEHOLDER.format(kind=kind)}"
    return PLACEHOLDER.format(kind=kind)


def _phone(match: re.Match[str], counts: Counter[str]) -> str:
    if sum(char.isdigit() for char in match.group(0)) < _MIN_PHONE_DIGITS:
        return match.group(0)
    counts["phone"] += 1
    return PLACEHOLDER.format(kind="phone")
