"""Links in what the bot shows: only links to the hosts of the configured sources stay links.

A document everyone may read can tell the model to write `[the IT portal](https://x/?q=…)`
with words of a passage only the asker may read in the URL: one click (or a link preview
fetched by the chat platform) sends them to whoever runs `x`. So every link in the model's
text and in quoted passage text is checked against the hosts of the sources' `url_prefix`
(where Lore's own citation links point). A foreign link keeps its label and loses its URL;
a bare foreign URL is replaced by `LINK_REMOVED`. The URL is not shown even as plain text:
chat clients turn URL-looking text into links and fetch previews of it, and a reader who
needs a link from a document opens the document through its (trusted) citation link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LINK_REMOVED = "(link removed)"

# A Markdown link or image: [label](url "title") / ![alt](url).
_MARKDOWN = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^\s)<>]*)>?(?:\s+\"[^\"\n]*\")?\s*\)")
# Slack's link syntax: <url|label> or <url>.
_SLACK = re.compile(r"<((?:[a-z][a-z0-9+.-]*:|www\.)[^|>\s]*)(?:\|([^>\n]*))?>", re.IGNORECASE)
# Anything a chat client may turn into a link: a URL with a scheme, `www.…`, `mailto:…`, or a
# host name followed by a path or query (`x.example.com/?q=…`).
_BARE = re.compile(
    r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\bmailto:)[^\s<>\"'`\x00]+"
    r"|\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}(?::\d+)?[/?][^\s<>\"'`\x00]*",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?'\")]}*_"  # punctuation after a URL in prose, not part of it


@dataclass(frozen=True)
class LinkPolicy:
    """Which URLs may be shown as links: http(s) URLs whose host (and port) is one of
    `hosts`. No hosts: no link in generated or quoted text is trusted."""

    hosts: frozenset[str] = frozenset()

    @classmethod
    def for_prefixes(cls, prefixes: Iterable[str | None]) -> LinkPolicy:
        """The hosts of the sources' `url_prefix` values (file:// prefixes add none)."""
        return cls(frozenset(host for prefix in prefixes if prefix and (host := _host(prefix))))

    def allows(self, url: str) -> bool:
        host = _host(url)
        return host is not None and host in self.hosts


def defuse_links(text: str, policy: LinkPolicy) -> str:
    """`text` with every link the policy does not allow turned into plain text: a labelled
    link keeps its label, an image its alt text, a bare URL becomes `LINK_REMOVED`. Allowed
    links stay (Slack-style ones become Markdown links, which every renderer converts)."""

    def markdown(match: re.Match[str]) -> str:
        image, label, url = match.group(1), match.group(2).strip(), match.group(3)
        label = _defuse_bare(label, policy)
        if policy.allows(url):
            return f"[{label or url}]({url})"  # an image becomes a link: no automatic fetch
        return label if label and not image else label or LINK_REMOVED

    def slack(match: re.Match[str]) -> str:
        url, label = match.group(1), _defuse_bare((match.group(2) or "").strip(), policy)
        if policy.allows(url):
            return f"[{label or url}]({url})"
        return label or LINK_REMOVED

    # Markdown and Slack links are kept out of the bare-URL pass with placeholders.
    kept: list[str] = []

    def keep(replacement: str) -> str:
        kept.append(replacement)
        return f"\x00{len(kept) - 1}\x00"

    text = _MARKDOWN.sub(lambda m: keep(markdown(m)), text.replace("\x00", ""))
    text = _SLACK.sub(lambda m: keep(slack(m)), text)
    text = _defuse_bare(text, policy)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


def foreign_links(text: str, policy: LinkPolicy) -> list[str]:
    """The URLs in `text` (in any link syntax, or bare) that `policy` does not allow."""
    urls = [m.group(3) for m in _MARKDOWN.finditer(text)]
    text = _MARKDOWN.sub(lambda m: m.group(2), text)
    urls += [m.group(1) for m in _SLACK.finditer(text)]
    text = _SLACK.sub(lambda m: m.group(2) or "", text)
    urls += [_url(m.group(0)) for m in _BARE.finditer(text)]
    return [url for url in urls if not policy.allows(url)]


def without_urls(text: str) -> str:
    """`text` with links reduced to their labels and bare URLs removed: the words a reader
    reads, so the grounding check never counts words hidden in a URL."""
    text = _MARKDOWN.sub(lambda m: m.group(2), text)
    text = _SLACK.sub(lambda m: m.group(2) or "", text)
    return _BARE.sub(lambda m: m.group(0)[len(m.group(0).rstrip(_TRAILING) or m.group(0)) :], text)


def _defuse_bare(text: str, policy: LinkPolicy) -> str:
    def bare(match: re.Match[str]) -> str:
        found = match.group(0)
        end = len(found.rstrip(_TRAILING) or found)
        if policy.allows(_url(found)):
            return found
        return LINK_REMOVED + found[end:]

    return _BARE.sub(bare, text)


def _url(found: str) -> str:
    """A bare URL without the prose punctuation that followed it, with `https://` before a
    scheme-less one (`www.…`, `host/path`), as a browser would open it."""
    url = found.rstrip(_TRAILING) or found
    if "://" not in url and not url.lower().startswith("mailto:"):
        return "https://" + url
    return url


def _host(url: str) -> str | None:
    """`host[:port]` of an http(s) URL, lower-cased; None for anything else, or for a URL a
    browser might read differently (backslashes, white space, control characters)."""
    if re.search(r"[\\\s\x00-\x1f\x7f]", url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    return parts.hostname.lower() + (f":{port}" if port is not None else "")
