"""The ACL file: who may read which documents, by path, per source.

Format (YAML)::

    # Applies to every source.
    default: everyone              # for paths no rule matches (optional)
    rules:                         # first match wins; paths relative to the source root
      - path: "hr/**"
        allow: ["group:hr", "user:cfo@example.com"]
      - path: "board/**"
        allow: ["group:board"]
    # Per source (keys are source names from lore.toml); optional.
    sources:
      finance-share:
        default: ["group:finance"]
        rules:
          - path: "public/**"
            allow: everyone
          - path: "people/**"
            allow: filesystem      # let the file's own mode decide

Principals are `everyone`, `user:<email>` and `group:<name>`; `allow` takes one or a list.
`allow: []` shares a document with nobody (better: exclude it from the source). The word
`filesystem` hands the decision to the file's mode (see `filemode.py`), e.g. to undo a
global default for one source.

Order for a file of source S: S's rules, then the global rules (first match wins), then
S's default, then the global default; with none of these the file's mode decides.

Paths use the same glob rules as the sources' include/exclude (`wcmatch`): `**` spans
folders, a pattern without `/` matches the file name at any depth (`*.xlsx`), `{a,b}`
alternates, case is ignored. A leading `/` is ignored and a trailing `/` means everything
below that folder (`hr/` = `hr/**`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from wcmatch import glob

from knowledge.errors import ConfigurationError
from knowledge.permissions.principals import parse_principal
from knowledge.sources.globs import GLOB_FLAGS

FILESYSTEM = "filesystem"
_TOP_KEYS = {"default", "rules", "sources"}
_SECTION_KEYS = {"default", "rules"}
_RULE_KEYS = {"path", "allow"}


@dataclass(frozen=True)
class Grant:
    """Who a matching document is shared with, and where the ACL file says so."""

    principals: frozenset[str] | None  # None: the file's mode decides (`filesystem`)
    where: str  # e.g. `rules[2]`, `sources.hr.default`


@dataclass(frozen=True)
class AclRule:
    pattern: str  # normalised glob, relative to the source root
    grant: Grant
    # Compiled once: a refresh matches every file against every rule (3 µs, not 40 µs, each).
    _matcher: glob.WcMatcher[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", glob.compile(self.pattern, flags=GLOB_FLAGS))

    def matches(self, relative_path: str) -> bool:
        return bool(self._matcher.match(relative_path))


@dataclass(frozen=True)
class AclSection:
    default: Grant | None = None
    rules: tuple[AclRule, ...] = ()


@dataclass(frozen=True)
class AclDecision:
    """What the ACL file says about one document: nothing (grant None), a default, or a rule."""

    grant: Grant | None
    rule: AclRule | None = None


@dataclass(frozen=True)
class AclFile:
    """A parsed ACL file. `origin` names it in explanations and errors."""

    origin: str
    everywhere: AclSection = field(default_factory=AclSection)
    sources: Mapping[str, AclSection] = field(default_factory=dict)

    def decide(self, source: str, relative_path: str) -> AclDecision:
        """The first matching rule (source's, then global), else a default, else nothing."""
        own = self.sources.get(source, AclSection())
        for rule in (*own.rules, *self.everywhere.rules):
            if rule.matches(relative_path):
                return AclDecision(rule.grant, rule)
        return AclDecision(own.default or self.everywhere.default)


def load_acl_file(path: Path) -> AclFile:
    """Read and validate an ACL file. Raises ConfigurationError saying what to fix."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"ACL file {path} does not exist. Create it or fix acl_file in lore.toml (LORE_ACL_FILE)."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"Cannot read ACL file {path}: {error}") from error
    return parse_acl(text, str(path))


def parse_acl(text: str, origin: str = "<acl>") -> AclFile:
    """Parse ACL YAML text (see the module docstring for the format)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigurationError(f"ACL file {origin} is not valid YAML: {error}") from error
    if data is None:
        return AclFile(origin)
    data = _mapping(data, "the top level", _TOP_KEYS, origin)
    everywhere = _section(data, "", origin)
    sources_data = _mapping(data.get("sources") or {}, "sources", None, origin)
    sources = {
        str(name): _section(
            _mapping(section or {}, f"sources.{name}", _SECTION_KEYS, origin), f"sources.{name}.", origin
        )
        for name, section in sources_data.items()
    }
    return AclFile(origin, everywhere, sources)


def check_acl_location(path: Path, roots: Sequence[Path]) -> None:
    """Refuse an ACL file inside an indexed folder: it would be indexed itself, and anyone
    able to write documents there could grant themselves access."""
    check_outside_sources(path, roots, "ACL file", "acl_file / LORE_ACL_FILE")


def check_outside_sources(path: Path, roots: Sequence[Path], what: str, setting: str) -> None:
    """Refuse a file that decides who reads what or what the bot says (the ACL file, the
    directory, the glossary, curated training files) inside an indexed folder: it would be
    indexed itself, and anyone able to write documents there could change it. `what` names
    the file, `setting` where it is configured."""
    target = Path(path).expanduser().resolve()
    for root in roots:
        folder = Path(root).expanduser().resolve()
        if target.is_relative_to(folder):
            raise ConfigurationError(
                f"{what} {target} lies inside the indexed folder {folder}. Move it outside every "
                f"source folder (e.g. next to lore.toml) and update {setting}."
            )


def check_source_names(acl: AclFile, names: Sequence[str]) -> None:
    """Refuse sections for sources that are not configured (a typo would silently grant nothing)."""
    unknown = sorted(set(acl.sources) - set(names))
    if unknown:
        raise ConfigurationError(
            f"ACL file {acl.origin} has rules for unknown source(s) {', '.join(unknown)}; "
            f"configured sources: {', '.join(names) or 'none'}. Fix the names under `sources:`."
        )


def normalise_pattern(pattern: str) -> str:
    """Paths are relative to the source root: drop a leading `/` or `./`; `dir/` means `dir/**`."""
    value = pattern.strip()
    while value.startswith(("/", "./")):
        value = value[2:] if value.startswith("./") else value[1:]
    if value.endswith("/"):
        value += "**"
    return value


# -- validation helpers ---------------------------------------------------------------------


def _mapping(value: Any, where: str, allowed: set[str] | None, origin: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigurationError(f"ACL file {origin}: {where} must be a mapping (key: value), not {value!r}.")
    if allowed is not None:
        unknown = sorted(str(key) for key in value if key not in allowed)
        if unknown:
            raise ConfigurationError(
                f"ACL file {origin}: unknown key(s) {', '.join(unknown)} in {where}; "
                f"expected {', '.join(sorted(allowed))}."
            )
    return value


def _section(data: Mapping[str, Any], prefix: str, origin: str) -> AclSection:
    default = None
    if "default" in data:
        default = _grant(data["default"], f"{prefix}default", origin)
    rules_data = data.get("rules") or []
    if not isinstance(rules_data, list):
        raise ConfigurationError(f"ACL file {origin}: {prefix}rules must be a list of {{path, allow}} items.")
    rules = tuple(_rule(item, f"{prefix}rules[{number}]", origin) for number, item in enumerate(rules_data, 1))
    return AclSection(default, rules)


def _rule(item: Any, where: str, origin: str) -> AclRule:
    item = _mapping(item, where, _RULE_KEYS, origin)
    missing = sorted(_RULE_KEYS - set(item))
    if missing:
        raise ConfigurationError(f"ACL file {origin}: {where} lacks {', '.join(missing)}; a rule needs path and allow.")
    raw = item["path"]
    if not isinstance(raw, str) or not normalise_pattern(raw):
        raise ConfigurationError(f'ACL file {origin}: {where}.path must be a non-empty glob such as "hr/**".')
    pattern = normalise_pattern(raw)
    return AclRule(pattern, _grant(item["allow"], f'{where} "{pattern}"', origin))


def _grant(value: Any, where: str, origin: str) -> Grant:
    if isinstance(value, str) and value.strip().casefold() == FILESYSTEM:
        return Grant(None, where)
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list):
        raise ConfigurationError(
            f"ACL file {origin}: {where} must be a principal or a list of them "
            "(everyone, user:<email>, group:<name>) or `filesystem`."
        )
    try:
        return Grant(frozenset(parse_principal(item) for item in values), where)
    except ConfigurationError as error:
        raise ConfigurationError(f"ACL file {origin}: {where}: {error}") from None
