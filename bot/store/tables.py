"""Imports every module that defines a table, so `Database` creates them all."""
import bot.adapters.teams.sent_answers  # noqa: F401  (teams_sent_answers)
import bot.store.feedback  # noqa: F401  (feedback)
import bot.adapters.slack.threads  # noqa: F401  (slack_threads)
import bot.store.answers  # noqa: F401  (answers)
import bot.store.threads  # noqa: F401  (thread_turns)
