"""Markdown (what the model writes) to Slack's mrkdwn (what Slack renders).

Slack's mrkdwn is not Markdown: bold is `*x*`, italic `_x_`, strike `~x~`, links `<url|text>`,
no headings, and `&`, `<`, `>` must be escaped or Slack reads them as control sequences.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*```")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+|mailto:[^\s)]+)\)")
_BARE_URL = re.compile(r"https?://[^\s<>()\x01]+[^\s<>()\x01.,;:!?'\"]")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_PROTECTED = re.compile(r"\x01(\d+)\x01")
# Sentinels for "a bold marker goes here", so the italic pass does not see bold's asterisks.
_BOLD_MARK = "\x02"


def escape(text: str) -> str:
    """Escape the three characters Slack treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Convert a Markdown answer to mrkdwn: emphasis, links, lists, headings and code."""
    lines: list[str] = []
    in_code = False
    for line in markdown.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            # Slack wants the fence without a language tag.
            in_code = not in_code
            lines.append("```")
            continue
        lines.append(escape(line) if in_code else _convert_line(line))
    if in_code:
        lines.append("```")  # an unclosed fence would swallow the rest of the message
    return "\n".join(lines)


def _convert_line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        return f"*{_convert_inline(heading.group(1))}*"
    bullet = _BULLET.match(line)
    if bullet and not _is_rule(line):
        indent = "    " * (len(bullet.group(1).expandtabs(4)) // 2)
        return f"{indent}• {_convert_inline(bullet.group(2))}"
    if line.startswith(">"):
        # Block quotes are the same in both; keep the marker unescaped.
        return ">" + _convert_inline(line[1:])
    return _convert_inline(line)


def _is_rule(line: str) -> bool:
    return bool(re.fullmatch(r"\s*([-*_])(\s*\1){2,}\s*", line))


def _convert_inline(text: str) -> str:
    protected: list[str] = []

    def protect(fragment: str) -> str:
        protected.append(fragment)
        return f"\x01{len(protected) - 1}\x01"

    # Code and links first: nothing inside them may be reformatted.
    text = _INLINE_CODE.sub(lambda m: protect(f"`{escape(m.group(1))}`"), text)
    text = _LINK.sub(lambda m: protect(_link(m.group(2), m.group(1))), text)
    text = _BARE_URL.sub(lambda m: protect(f"<{escape(m.group(0))}>"), text)
    text = escape(text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD_MARK, "*")
    return _PROTECTED.sub(lambda m: protected[int(m.group(1))], text)


def _link(url: str, label: str) -> str:
    # `|` and `>` end the label early in Slack's link syntax.
    label = escape(label).replace("|", "¦")
    return f"<{escape(url)}|{label}>"


def link(url: str, label: str) -> str:
    """A mrkdwn link, or the escaped label alone when `url` is not a web address."""
    if url.startswith(("http://", "https://")):
        return _link(url, label)
    return escape(label)


def plain_text(markdown: str) -> str:
    """The answer without Markdown syntax, for notification text (`text` beside `blocks`)."""
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", markdown)
    text = re.sub(r"^\s{0,3}#{1,6}\s+", "", text, flags=re.MULTILINE)
    text = re.sub(r"```[^\n]*\n?", "", text)
    text = text.replace("**", "").replace("__", "").replace("~~", "").replace("`", "")
    return text.strip()
