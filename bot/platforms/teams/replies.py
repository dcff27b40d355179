"""The fixed things the Teams bot says: welcome, help and acknowledgements (busy, slow-down
and apology texts are the conversation service's, the same on every platform)."""

from __future__ import annotations

from bot.platforms.teams.questions import Scope

_HOW_TO_ASK = {
    "personal": "Just type your question here.",
    "groupChat": "Mention me (**@Lore**) with your question.",
    "channel": "Mention me (**@Lore**) with your question; I answer in the same thread, "
    "and you can mention me again in that thread to follow up.",
}


def help_text(scope: Scope) -> str:
    """What the bot can do and how to ask, for the place the user is in."""
    return (
        "I answer questions from the company's own documents and show the sources I used.\n\n"
        f"- {_HOW_TO_ASK[scope]}\n"
        "- **ask** _question_: ask a question.\n"
        "- **feedback** _text_: tell us about my latest answer to you (or about me in general).\n"
        "- **help**: show this message.\n\n"
        "Rate any answer with 👍 or 👎 so it gets better."
    )


def welcome_text(scope: Scope) -> str:
    """Sent once when the bot is added to a chat, group chat or team."""
    return "👋 Hi, I'm **Lore**, the company's internal assistant.\n\n" + help_text(scope)


def feedback_thanks(about_answer: bool) -> str:
    if about_answer:
        return "Thanks, your feedback on my latest answer has been recorded."
    return "Thanks, your feedback has been recorded."


FEEDBACK_NEEDS_TEXT = "Please add what you'd like to tell us, e.g. `feedback the VPN answer is outdated`."
EMPTY_QUESTION = "What would you like to know? Type a question, or **help** to see what I can do."
