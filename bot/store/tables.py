"""Every table of the answer-log database, on one `metadata`: the schema in one place, so that
`Database` creates them all without importing the modules that use them (which import
`Database`). `bot.store.schema` adds the columns a table gained since an older release."""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


answers_table = Table(
    "answers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("platform", String(16), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("display_name", String(256), nullable=False, default=""),
    Column("email", String(320), nullable=True),
    Column("conversation_id", String(512), nullable=True),
    Column("thread_id", String(512), nullable=True),
    Column("place", String(16), nullable=False, default="private"),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    # What the model wrote, when the quoted evidence replaced it as the answer too (audits).
    Column("generated", Text, nullable=True),
    Column("confident", Boolean, nullable=False),
    Column("citations", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    # Every retrieved passage (not only the ones given to the model): path, score, principals.
    Column("passages", JSON, nullable=False),
    # The principals retrieval was filtered by (the asker's, narrowed to what everyone in a
    # shared place may read); null when unfiltered.
    Column("readers", JSON, nullable=True),
    Column("model", String(256), nullable=False),
    Column("adapter", String(256), nullable=True),
    Column("timings", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    # The admin console pages the log newest first by these filters and counts answered / not
    # covered per day: with every column those queries read, they never touch the rows until the
    # page's 25 are chosen (added for #17; bot/store/schema.py creates it on older databases).
    Index("ix_answers_console", "created_at", "place", "platform", "confident", "id"),
)


feedback_table = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key: general feedback has no answer, and answers are purged on their own schedule.
    Column("answer_id", String(64), nullable=True, index=True),
    Column("platform", String(16), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("rating", String(16), nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("correction", Text, nullable=False, default=""),
    Column("conversation_id", String(512), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    # Added later (see bot/store/schema.py): who asked the rated question, and the review of a
    # correction (null when there is none).
    Column("asker_id", String(256), nullable=True),
    Column("review", String(16), nullable=True),
    Column("reviewed_by", String(256), nullable=True),
    Column("reviewed_at", DateTime(timezone=True), nullable=True),
)


thread_turns = Table(
    "thread_turns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("conversation_id", String(512), nullable=False),
    Column("thread_id", String(512), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    # Paths of the passages the answer cited, so a later turn can re-check who may see them.
    Column("sources", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)


# What the bot posted, on every platform: Slack needs to know the threads it answered in (replies
# there are follow-ups without a mention), Teams which answer a message showed (its built-in
# feedback names only the message). Replaced `slack_threads` and `teams_sent_answers` (see
# bot/store/schema.py, which copies their rows over).
sent_messages = Table(
    "sent_messages",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("conversation_id", String(512), primary_key=True),
    Column("message_id", String(256), primary_key=True),
    # The thread the message is in (Slack: the thread's ts, or the message's own for a new one).
    Column("thread_id", String(512), nullable=True),
    # Null for a message posted before its answer existed (Slack's placeholder).
    Column("answer_id", String(64), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=False, index=True),
    Index("ix_sent_messages_thread", "platform", "conversation_id", "thread_id"),
)


# Every time an admin console user opened an answer given in a private conversation (the
# console shows those only to `console.private_answers_viewers`, and keeps this trail).
private_answer_views = Table(
    "private_answer_views",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("answer_id", String(64), nullable=False, index=True),
    Column("viewer", String(320), nullable=False),
    Column("viewed_at", DateTime(timezone=True), nullable=False, index=True),
)


# Platform deliveries already handled (Slack event ids, Teams activity ids, ...), shared by every
# replica on one database: a retry landing on another replica finds its key here and is dropped.
delivery_keys = Table(
    "delivery_keys",
    metadata,
    Column("key", String(600), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False, index=True),
)


# Questions per user in fixed windows, shared by every replica on one database.
rate_counts = Table(
    "rate_counts",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("user_id", String(256), primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("count", Integer, nullable=False),
)


# The adapter `lore customize promote` (or the retraining) made the answering one, for every
# replica on one database: one row (id 1), with the adapter folder as a tar archive so that a
# replica on another machine can fetch it (bot/store/active_adapter.py).
active_adapter = Table(
    "active_adapter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=True),  # null: the base model
    Column("archive", LargeBinary, nullable=True),
    Column("promoted_at", DateTime(timezone=True), nullable=False),
)
