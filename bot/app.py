"""The app factory: the one place the bot's parts are constructed and wired together.

The CLI, `lore serve` and the platform adapters all take a `Services`; tests build one with
`tests/support/stack.py`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from bot.adapter_registry import adapter_registry
from bot.conversation.memory import ConversationMemory
from bot.conversation.service import ConversationService
from bot.core.access import AccessPolicy
from bot.core.agent import Agent
from bot.core.glossary import glossary_for
from bot.core.links import LinkPolicy
from bot.customize.retention import CustomizationRetention
from bot.identity.directory import Directory
from bot.model import generation_defaults, lazy_model
from bot.model.base import Model
from bot.model.writing import WritingPolicy, measured_writing
from bot.policies import build_access_policy, build_directory, build_permission_policy
from bot.private_files import private_folder
from bot.settings import LoreSettings
from bot.store.answers import AnswerLog
from bot.store.database import Database
from bot.store.delivery_keys import DeliveryKeys
from bot.store.feedback import FeedbackStore
from bot.store.rate_counts import RateCounts
from bot.store.sent_messages import SentMessages
from bot.store.threads import ThreadMemory
from knowledge.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

DAY_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Services:
    """Everything a running bot uses, built once per process."""

    settings: LoreSettings
    knowledge: KnowledgeBase
    model: Model
    database: Database
    answers: AnswerLog
    threads: ThreadMemory
    feedback: FeedbackStore
    agent: Agent
    access: AccessPolicy  # who may see what where; adapters check "share in channel" with it
    sent_messages: SentMessages  # what the platforms posted (Slack threads, Teams answer cards)
    # Who belongs to which groups, and which chat accounts are whom (None: no directory file).
    directory: Directory | None = None

    @property
    def memory(self) -> ConversationMemory:
        """The answer log and thread memory, as the conversation layer reads and writes them."""
        return ConversationMemory(self.answers, self.threads)

    @cached_property
    def conversation(self) -> ConversationService:
        """The conversation service every platform (and `lore chat`) asks through: one
        worker pool for the whole process, built on first use."""
        rate_limits = {
            "slack": self.settings.slack.rate_limit_per_minute,
            "teams": self.settings.teams.rate_limit_per_minute,
        }
        if not self.shares_database:
            return ConversationService(self.agent, self.memory, self.feedback, rate_limits=rate_limits)
        # Replicas on one database: a retry landing on another replica, and a user's questions
        # spread over several, are counted there.
        database = self.database
        return ConversationService(
            self.agent,
            self.memory,
            self.feedback,
            rate_limits=rate_limits,
            seen=DeliveryKeys(database),
            limiter=lambda platform, limit: RateCounts(database, platform, limit),
        )

    @property
    def shares_database(self) -> bool:
        """Whether other processes may answer from the same database (PostgreSQL): then
        de-duplication and rate limits live in it, not in this process."""
        return self.database.engine.dialect.name == "postgresql"

    def purge_expired(self) -> int:
        """Delete answers, thread turns and the messages the platforms posted, older than
        `agent.answer_retention_days`; feedback older than `agent.feedback_retention_days`;
        datasets, training runs and adapters past `customize.*_retention_days` (never the active
        adapter). Returns how many rows and folders went. Run at start-up and by whoever
        schedules housekeeping."""
        days = self.settings.agent.answer_retention_days
        purged = self.answers.purge_older_than(days) + self.threads.purge_older_than(days)
        purged += self.sent_messages.purge_older_than(days)
        purged += self.feedback.purge_older_than(self.settings.agent.feedback_retention_days)
        # Platforms retry within minutes and rate windows last one: a day is plenty.
        purged += DeliveryKeys(self.database).purge_older_than(DAY_SECONDS)
        purged += RateCounts.purge_all_older_than(self.database, DAY_SECONDS)
        purged += CustomizationRetention.of(self.settings, adapter_registry(self.settings, self.database)).purge()
        return purged

    def close(self) -> None:
        """Release the index, the database and the model."""
        if "conversation" in self.__dict__:  # built: stop its workers
            self.conversation.close()
        self.knowledge.close()
        self.database.close()
        self.model.close()


def build_services(settings: LoreSettings, model: Model | None = None, database: Database | None = None) -> Services:
    """Construct the bot from `settings`. The model is loaded here (eagerly) unless one is given,
    e.g. an already-loaded model shared between services, or a test's tiny model. `database`:
    the configured database already opened (the services close it), else opened here."""
    try:
        knowledge = build_knowledge(settings)
    except BaseException:
        if database is not None:
            database.close()
        raise
    try:
        database = database or Database(settings.database)
        if model is None:
            # Loaded on first use: with evidence-only answers nothing needs the weights.
            model = lazy_model(settings.model, settings.home, adapter_registry(settings, database))
        directory = build_directory(settings)
        access = build_access_policy(settings, directory)
        answers = AnswerLog(database)
        threads = ThreadMemory(database, max_turns=settings.agent.history_turns)
        agent = Agent(
            knowledge.retriever,
            model,
            settings.agent,
            settings.retrieval,
            glossary=glossary_for(settings),
            generation=generation_defaults(settings.model),
            embedder=knowledge.embedder,
            filters_for=access.filters_for,
            writes=WritingPolicy(settings.agent, measured_writing(settings.home)).allows,
            # Links in answers and quotes stay links only to where the sources themselves live.
            links=LinkPolicy.for_prefixes(prefix for source in settings.sources for prefix in source.link_prefixes()),
        )
        services = Services(
            settings=settings,
            knowledge=knowledge,
            model=model,
            database=database,
            answers=answers,
            threads=threads,
            feedback=FeedbackStore(database),
            agent=agent,
            access=access,
            sent_messages=SentMessages(database),
            directory=directory,
        )
    except BaseException:
        knowledge.close()
        if database is not None:
            database.close()
        raise
    purged = services.purge_expired()
    if purged:
        log.info("Purged %d answer-log rows and customization folders past their retention", purged)
    return services


def build_knowledge(settings: LoreSettings) -> KnowledgeBase:
    """The index of the configured sources, with the configured ACL file and file-mode mapping
    deciding who may read each file: every command that reads or refreshes the index builds it
    here, so none of them sees (or stores) documents as readable by everyone by mistake."""
    private_folder(settings.home)  # created owner-only: it will hold the answer log and datasets
    return KnowledgeBase(
        settings.home,
        settings.sources,
        settings.index,
        settings.retrieval,
        permissions=build_permission_policy(settings),
        catalog_url=settings.shared_database_url,
    )
