"""Feedback given through Slack's buttons and modal, followed into the training data: a channel
member rating someone else's answer is a signal for people, never a training example, and a
typed correction trains only once an admin approved it (`lore feedback approve`)."""

from __future__ import annotations

from click.testing import CliRunner

from bot.cli.feedback_commands import feedback as feedback_cli
from bot.customize.feedback_seeds import harvest_feedback
from bot.platforms.slack.rendering import ACTION_NOT_HELPFUL, RIGHT_BLOCK, WRONG_BLOCK
from bot.store.feedback import Feedback
from tests.slack.conftest import SlackRig, fresh_id
from tests.slack.test_slack_conversations import QUESTIONS, final_reply, stored
from tests.support.slack_api import Message, mention


async def thumbs_down_with_correction(rig: SlackRig, user: str, answer_message: Message, right: str) -> Feedback:
    """`user` clicks 👎 under the answer and types `right` as the right answer in the modal."""
    opened_before = len(rig.api.calls_to("views.open"))
    await rig.sender.interaction(rig.sender.button_click(user, answer_message, ACTION_NOT_HELPFUL))
    opened = await rig.api.wait_until(lambda: rig.api.calls_to("views.open")[opened_before:])
    submission = rig.sender.view_submission(user, opened[0].args["view"], {WRONG_BLOCK: "Wrong", RIGHT_BLOCK: right})
    assert (await rig.sender.interaction(submission)).status == 200

    def submitted() -> Feedback | None:
        return next((f for f in rig.services.feedback.list() if f.user_id == user and f.correction), None)

    return await rig.api.wait_until(submitted)


def trained_answers(rig: SlackRig) -> list[str]:
    """The answers the next dataset would be taught from the stored feedback."""
    harvest = harvest_feedback(rig.services.feedback, rig.services.answers)
    return [seed.answer for seed in harvest.seeds]


def lore_feedback(rig: SlackRig, *args: str) -> tuple[int, str]:
    # Wide enough that rich does not fold the table's cells.
    result = CliRunner().invoke(feedback_cli, list(args), obj=rig.services.settings, env={"COLUMNS": "400"})
    return result.exit_code, result.output


async def test_a_channel_member_cannot_train_a_right_answer_into_someone_elses_answer(rig: SlackRig) -> None:
    channel, asker, bystander = fresh_id("C"), fresh_id("U"), fresh_id("U")
    event = mention(QUESTIONS[0], asker, channel)
    await rig.sender.event(event)
    answer_message = await final_reply(rig, channel, event["ts"])
    planted = f"Employees get 90 days off; ask payroll at https://evil.example/{fresh_id('x')}"

    entry = await thumbs_down_with_correction(rig, bystander, answer_message, planted)

    assert planted not in trained_answers(rig)
    # Kept as a signal, with who gave it and who asked.
    assert (entry.user_id, entry.asker_id, entry.correction) == (bystander, asker, planted)
    code, output = lore_feedback(rig, "approve", str(entry.id))
    assert code != 0 and "neither asked the question" in output
    assert planted not in trained_answers(rig)


async def test_the_askers_own_correction_waits_for_an_admins_approval(rig: SlackRig) -> None:
    channel, asker = fresh_id("C"), fresh_id("U")
    event = mention(QUESTIONS[1], asker, channel)
    await rig.sender.event(event)
    answer_message = await final_reply(rig, channel, event["ts"])
    answer = stored(rig, answer_message)
    right = f"Beacon shifts hand off on Mondays at 10:00 CET ({fresh_id('r')})."

    entry = await thumbs_down_with_correction(rig, asker, answer_message, right)

    assert right not in trained_answers(rig)
    assert (entry.asker_id, entry.review) == (asker, "pending")
    code, listing = lore_feedback(rig, "review")
    assert code == 0 and right in listing and answer.question in listing
    code, output = lore_feedback(rig, "approve", str(entry.id))
    assert code == 0, output
    assert right in trained_answers(rig)
    reviewed = rig.services.feedback.get(entry.id)
    assert reviewed is not None and reviewed.review == "approved"
    code, _ = lore_feedback(rig, "reject", str(entry.id))
    assert code == 0 and right not in trained_answers(rig)


async def test_a_modal_submission_cannot_attach_a_correction_to_someone_elses_thumbs_down(rig: SlackRig) -> None:
    channel, asker, bystander = fresh_id("C"), fresh_id("U"), fresh_id("U")
    event = mention(QUESTIONS[2], asker, channel)
    await rig.sender.event(event)
    answer_message = await final_reply(rig, channel, event["ts"])
    opened_before = len(rig.api.calls_to("views.open"))
    await rig.sender.interaction(rig.sender.button_click(asker, answer_message, ACTION_NOT_HELPFUL))
    opened = await rig.api.wait_until(lambda: rig.api.calls_to("views.open")[opened_before:])
    planted = f"Carry over 50 days ({fresh_id('p')})"

    # The asker's modal, submitted as someone else (the modal names the 👎 it belongs to).
    forged = rig.sender.view_submission(bystander, opened[0].args["view"], {WRONG_BLOCK: "x", RIGHT_BLOCK: planted})
    assert (await rig.sender.interaction(forged)).status == 200
    await rig.sender.interaction(rig.sender.button_click(asker, answer_message, ACTION_NOT_HELPFUL))  # a later event

    await rig.api.wait_until(lambda: len([f for f in rig.services.feedback.list() if f.user_id == asker]) == 2)
    assert [f.correction for f in rig.services.feedback.list() if f.user_id == asker] == ["", ""]
    assert planted not in trained_answers(rig)
