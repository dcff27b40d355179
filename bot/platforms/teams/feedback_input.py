"""Reads the two ways feedback arrives from Teams into the store's `Feedback`:

- Teams' built-in 👍/👎 (`channelData.feedbackLoopEnabled`): an invoke named
  `message/submitAction` whose value is
  `{"actionName": "feedback", "actionValue": {"reaction": "like"|"dislike", "feedback": "<JSON>"}}`,
  the inner JSON holding `feedbackText`; `replyToId` names the rated message.
- The card's fallback Action.Submit buttons: a message activity whose `value` is the button's
  data (`cards.FEEDBACK_ACTION`, answer id, rating) plus the inputs of the 👎 form.
"""

from __future__ import annotations

import json
from typing import Any

from botbuilder.schema import Activity

from bot.platforms.teams.questions import asker, where
from bot.platforms.teams.rendering import FEEDBACK_ACTION
from bot.store.feedback import Feedback, Rating
from knowledge.errors import LoreError

SUBMIT_ACTION_INVOKE = "message/submitAction"
_REACTIONS: dict[str, Rating] = {"like": "helpful", "dislike": "not_helpful"}
_RATINGS = {"helpful", "not_helpful"}
MAX_TEXT_CHARS = 4000


class MalformedFeedbackError(LoreError):
    """A feedback payload from Teams does not have the expected shape."""


def is_card_feedback(activity: Activity) -> bool:
    """True for a message activity that is the submit of our card's feedback buttons."""
    value = activity.value
    return isinstance(value, dict) and value.get("action") == FEEDBACK_ACTION


def from_submit_action(activity: Activity, answer_id: str | None) -> Feedback:
    """Feedback from Teams' built-in feedback buttons (`message/submitAction` invoke)."""
    value = activity.value
    if not isinstance(value, dict) or value.get("actionName") != "feedback":
        raise MalformedFeedbackError("message/submitAction value is not a feedback action")
    action = value.get("actionValue")
    if not isinstance(action, dict) or action.get("reaction") not in _REACTIONS:
        raise MalformedFeedbackError("feedback reaction must be 'like' or 'dislike'")
    return Feedback(
        answer_id=answer_id,
        platform="teams",
        user_id=asker(activity).user_id,
        rating=_REACTIONS[action["reaction"]],
        text=_clip(_feedback_text(action.get("feedback"))),
        conversation_id=where(activity).conversation_id,
    )


def from_card_submit(activity: Activity) -> Feedback:
    """Feedback from the card's fallback 👍 button or 👎 form."""
    value: dict[str, Any] = activity.value
    rating = value.get("rating")
    if rating not in _RATINGS:
        raise MalformedFeedbackError("card feedback rating must be 'helpful' or 'not_helpful'")
    answer_id = value.get("answerId")
    return Feedback(
        answer_id=answer_id if isinstance(answer_id, str) and answer_id else None,
        platform="teams",
        user_id=asker(activity).user_id,
        rating=rating,
        text=_clip(_string(value.get("whatWasWrong"))),
        correction=_clip(_string(value.get("correction"))),
        conversation_id=where(activity).conversation_id,
    )


def _feedback_text(raw: object) -> str:
    # Teams sends the form as a JSON string; older clients sent an object or nothing.
    if raw is None or raw == "":
        return ""
    if isinstance(raw, str):
        text = raw
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            return text.strip()
    if isinstance(raw, dict):
        return _string(raw.get("feedbackText"))
    raise MalformedFeedbackError("feedback must be a JSON object with feedbackText")


def _string(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _clip(text: str) -> str:
    return text[:MAX_TEXT_CHARS]
