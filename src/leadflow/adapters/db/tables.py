"""Tables. Alembic migrations (leadflow/migrations) create them; keep both in step."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigId = BigInteger().with_variant(Integer(), "sqlite")

config_versions = Table(
    "config_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", String(200), nullable=False, unique=True),
    Column("content", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False),
    Column("domain", String(300), unique=True),
    Column("industry", String(100)),
    Column("employees", Integer),
    Column("country", String(2)),
    Column("annual_revenue", Float),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("owner_id", Integer),  # the rep who owns the account: first in line for its contacts
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

contacts = Table(
    "contacts", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), unique=True),
    Column("phone", String(50)),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("title", String(200)),
    Column("seniority", String(50)),
    Column("account_role", String(50)),
    Column("country", String(2)),
    Column("region", String(100)),
    Column("language", String(10)),
    Column("source", String(100)),
    Column("account_id", Integer, ForeignKey("accounts.id"), index=True),
    Column("referred_by_id", Integer, ForeignKey("contacts.id", ondelete="SET NULL")),
    Column("owner_id", Integer),
    Column("attributes", JSON, nullable=False, default=dict),
    Column("consent", JSON, nullable=False, default=dict),
    Column("stage", String(50), nullable=False),
    Column("stage_entered_at", Float, nullable=False),
    Column("recycled_at", Float),
    Column("fit_score", Float, nullable=False, default=0.0),
    Column("fit_grade", String(1), nullable=False, default="D"),
    Column("persona", String(100)),
    Column("excluded_by", String(100)),
    Column("fit_detail", JSON, nullable=False, default=dict),
    Column("qualification", JSON, nullable=False, default=dict),
    Column("qualification_passed", Boolean, nullable=False, default=False),
    Column("temperature", String(10)),
    Column("temperature_until", Float),
    Column("last_event_at", Float),
    # An owned contact's engagement rank (a copy of contact_scores.engagement_rank; NULL when
    # nobody owns it), so that a rep's queue reads in order from one index.
    Column("queue_rank", Float),
    Column("mail_status", String(20)),  # bounced | complained: no more email
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_contacts_stage", "stage"),
    Index("ix_contacts_updated_at", "updated_at"),  # what changed since the last nurture pass
    Index("ix_contacts_temperature", "temperature"),
    Index("ix_contacts_owner_stage", "owner_id", "stage"),
    Index("ix_contacts_owner_queue", "owner_id", "temperature", "queue_rank", "id", "stage"),
    Index("ix_contacts_fit_grade", "fit_grade"),
    Index("ix_contacts_temperature_until", "temperature_until"),
    # The contact list's column sorts (and prefix search on names), read in index order.
    Index("ix_contacts_created_at", "created_at", "id"),
    Index("ix_contacts_fit_score", "fit_score", "id"),
    Index("ix_contacts_last_event_at", "last_event_at", "id"),
    Index("ix_contacts_name", "last_name", "first_name", "id"),
    Index("ix_contacts_first_name", "first_name"),
    Index("ix_contacts_owner_rank", "owner_id", "queue_rank", "id"),  # an owner's, by score
    # The list's usual filters together: counted without reading the rows they reject.
    Index("ix_contacts_stage_temperature_grade", "stage", "temperature", "fit_grade"),
    # The few recycled contacts, for the rescore's recycle baselines (no scan of wide rows).
    Index("ix_contacts_recycled", "id", "recycled_at",
          sqlite_where=text("recycled_at IS NOT NULL"),
          postgresql_where=text("recycled_at IS NOT NULL")),
    sqlite_autoincrement=True,  # a merged contact's id (webhooks told of it) is never reused
)

# A contact's engagement and signals: what events and rules make of it, and all that a rescore
# rewrites. One narrow row per contact, apart from the wide contact row, so that a rescore that
# changes every score rewrites 1M narrow rows and one index instead of 1M wide rows and four.
# ``rescored`` fingerprints the values a rescore wrote; any other write sets it to NULL, so the
# next rescore can tell unchanged rows apart without reading their JSON.
contact_scores = Table(
    "contact_scores", metadata,
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("engagement_score", Float, nullable=False, default=0.0),
    Column("engagement_t0", Float),
    Column("engagement_rank", Float, nullable=False),
    Column("engagement_breakdown", JSON, nullable=False, default=dict),
    Column("engagement_caps", JSON, nullable=False, default=dict),
    Column("recycle_baseline", Float, nullable=False, default=0.0),
    Column("signals", JSON, nullable=False, default=dict),
    Column("rescored", BigInteger),
    Index("ix_contact_scores_rank", "engagement_rank"),
)

identities = Table(
    "identities", metadata,
    Column("id", Integer, primary_key=True),
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("kind", String(20), nullable=False),  # anonymous_id | user_id | email
    Column("value", String(320), nullable=False),
    Index("uq_identities_kind_value", "kind", "value", unique=True),
)

event_shapes = Table(
    "event_shapes", metadata,
    Column("id", Integer, primary_key=True),
    Column("signature", Text, nullable=False, unique=True),
    Column("type", String(100), nullable=False),
    Column("url", Text),
    Column("content_stage", String(50)),
    Column("premium", Boolean),
    Column("campaign", String(200)),
    Column("utm_source", String(200)),
    Column("utm_medium", String(200)),
    Column("utm_campaign", String(200)),
)

events = Table(
    "events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Column("shape_id", Integer, ForeignKey("event_shapes.id"), nullable=False),
    Column("message_id", String(200)),
    Column("properties", JSON),
    Column("received_at", Float),
    Index("ix_events_contact_ts", "contact_id", "ts", "shape_id"),
    Index("uq_events_message_id", "message_id", unique=True,
          sqlite_where=text("message_id IS NOT NULL"),
          postgresql_where=text("message_id IS NOT NULL")),
)

stage_changes = Table(
    "stage_changes", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, nullable=False),
    Column("from_stage", String(50)),
    Column("to_stage", String(50), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("config_version", String(200), nullable=False),
    Column("reason", Text),
    Column("kind", String(20), nullable=False),
    Index("ix_stage_changes_contact_at", "contact_id", "at"),
    Index("ix_stage_changes_to_at", "to_stage", "at"),
)

milestones = Table(
    "milestones", metadata,
    Column("contact_id", Integer, primary_key=True),
    Column("key", String(50), primary_key=True),
    Column("reached_at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("config_version", String(200), nullable=False),
    Index("ix_milestones_key_at", "key", "reached_at"),
)

audit = Table(
    "audit", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("details", JSON, nullable=False, default=dict),
    Index("ix_audit_contact_at", "contact_id", "at"),
)

suppressions = Table(
    "suppressions", metadata,
    Column("hash", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(10), nullable=False),  # public | secret
    Column("prefix", String(20), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
    Column("user_id", Integer),  # the user a secret key acts as
)

# Ids that leave the database (webhook messages, delivery ids) are never reused on SQLite.
outbox = Table(
    "outbox", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("topic", String(100), nullable=False),
    Column("contact_id", Integer),
    Column("payload", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("relayed_at", Float),
    Index("ix_outbox_pending", "relayed_at", "id"),
    sqlite_autoincrement=True,
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("topics", JSON, nullable=False),
    Column("stages", JSON),  # stage.changed only into these stages (None: every stage)
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", Float, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"),
           nullable=False),
    Column("outbox_id", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("uid", String(40), nullable=False, unique=True),  # what receivers dedupe on
    Column("topic", String(100), nullable=False),
    Column("status", String(20), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", Float, nullable=False),
    Column("delivered_at", Float),
    UniqueConstraint("webhook_id", "outbox_id"),
    Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# Where a contact merged into another went: its id keeps answering.
contact_merges = Table(
    "contact_merges", metadata,
    Column("absorbed_id", Integer, primary_key=True, autoincrement=False),
    Column("survivor_id", Integer, nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_contact_merges_survivor", "survivor_id"),
)

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("team", String(100)),
    Column("password_hash", String(200)),
    Column("active", Boolean, nullable=False, default=True),
    Column("away_until", Float),
    Column("weight", Float, nullable=False, default=1.0),
    Column("territories", JSON, nullable=False, default=list),
    Column("assigned", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Follow-up work on a contact; an open task has no done_at.
tasks = Table(
    "tasks", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("title", String(300), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("done_at", Float),
    Column("done_by", String(200)),
    Column("outcome", Text),
    Column("reminded_at", Float),
    Column("escalated_at", Float),
    Index("ix_tasks_contact", "contact_id"),
    Index("ix_tasks_owner_open_due", "owner_id", "due_at",
          sqlite_where=text("done_at IS NULL"), postgresql_where=text("done_at IS NULL")),
    Index("ix_tasks_open_due", "due_at",
          sqlite_where=text("done_at IS NULL"), postgresql_where=text("done_at IS NULL")),
)

activities = Table(
    "activities", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id")),
    Column("kind", String(20), nullable=False),  # call | email | meeting | note
    Column("direction", String(10)),  # outbound | inbound
    Column("at", Float, nullable=False),
    Column("subject", String(500)),
    Column("body", Text),
    Column("outcome", String(100)),
    Column("message_id", String(300)),  # of an email, sent or received
    Column("created_by", String(200), nullable=False),
    Index("ix_activities_contact_at", "contact_id", "at"),
    Index("uq_activities_message_id", "message_id", unique=True,
          sqlite_where=text("message_id IS NOT NULL"),
          postgresql_where=text("message_id IS NOT NULL")),
)

opportunities = Table(
    "opportunities", metadata,
    Column("id", Integer, primary_key=True),
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id")),
    Column("owner_id", Integer, ForeignKey("users.id")),
    Column("name", String(300), nullable=False),
    Column("amount", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("expected_close", String(10)),  # ISO date
    Column("deal_stage", String(50), nullable=False),
    Column("probability", Float, nullable=False),
    Column("next_step", String(500)),
    Column("status", String(10), nullable=False),  # open | won | lost
    Column("lost_reason", String(100)),
    Column("closed_at", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
    Index("ix_opportunities_contact", "contact_id"),
    Index("ix_opportunities_owner_status", "owner_id", "status"),
    Index("ix_opportunities_status_stage", "status", "deal_stage"),
    sqlite_autoincrement=True,  # event ids are built from deal ids: never reuse one
)

# The content library: what nurture emails send and what "next best content" picks from.
content_items = Table(
    "content_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False, unique=True),
    Column("title", String(300), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("path", String(2000), nullable=False),  # what page-view events of it carry
    Column("maturity", String(20), nullable=False),
    Column("format", String(30), nullable=False),
    Column("premium", Boolean, nullable=False),
    Column("topics", JSON, nullable=False),
    Column("language", String(10), nullable=False),
    Column("summary", Text, nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_content_items_path", "path"),
)

# Forms: on a hosted landing page (/p/<key>) or posted from another site.
forms = Table(
    "forms", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False, unique=True),
    Column("name", String(300), nullable=False),
    Column("headline", String(300), nullable=False),
    Column("pitch", Text, nullable=False),
    Column("item_id", Integer, ForeignKey("content_items.id")),  # the content it gates
    Column("fields", JSON, nullable=False),  # progressive profiling: asked in this order
    Column("max_fields", Integer, nullable=False),
    Column("consent_label", Text, nullable=False),
    Column("newsletter", Boolean, nullable=False),  # offers a newsletter subscription
    Column("language", String(10), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Tracks defined through the API (the configuration file holds the others).
nurture_tracks = Table(
    "nurture_tracks", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False, unique=True),
    Column("definition", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# Where each contact is in each track: active (next step at next_at), done, or left.
enrollments = Table(
    "enrollments", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("track_key", String(100), nullable=False),
    Column("status", String(10), nullable=False),
    Column("step", Integer, nullable=False),
    Column("next_at", Float),
    Column("entered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("reason", String(300)),
    UniqueConstraint("contact_id", "track_key"),
    Index("ix_enrollments_track_status", "track_key", "status", "contact_id"),
    Index("ix_enrollments_due", "next_at",
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
)

# Every email leadflow sends for nurture, newsletters and forms, from queued to sent. The
# dedupe key makes each send happen once; no body or address is kept here.
mail_messages = Table(
    "mail_messages", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
    Column("category", String(20), nullable=False),  # transactional | marketing | newsletter
    Column("priority", Integer, nullable=False),
    Column("dedupe_key", String(300), nullable=False, unique=True),
    Column("template", String(50), nullable=False),
    Column("item_id", Integer, ForeignKey("content_items.id")),
    Column("track_key", String(100)),
    Column("step", Integer),
    Column("form_key", String(100)),
    Column("sender_id", Integer, ForeignKey("users.id")),  # a sales track: the owner
    Column("status", String(10), nullable=False),  # queued | sending | sent | skipped | failed
    Column("not_before", Float, nullable=False),
    Column("expires_at", Float),
    Column("created_at", Float, nullable=False),
    Column("claimed_at", Float),
    Column("sent_at", Float),
    Column("attempts", Integer, nullable=False),
    Column("message_id", String(300)),
    Column("subject", String(500)),
    Column("reason", String(300)),
    Column("opened_at", Float),
    Column("clicked_at", Float),
    Index("ix_mail_messages_due", "not_before", "priority",
          sqlite_where=text("status = 'queued'"), postgresql_where=text("status = 'queued'")),
    Index("ix_mail_messages_contact", "contact_id", "status", "claimed_at"),
    sqlite_autoincrement=True,  # links in sent emails name message ids: never reuse one
)

# Filters of the contact list saved under a name by a user (the web app's segments). The
# filters are the list's query parameters; ``shared``: every user sees the segment.
saved_segments = Table(
    "saved_segments", metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("filters", JSON, nullable=False),
    Column("shared", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("owner_id", "name"),
)

# Predictive conversion models trained on the install's own history (services/predictive.py):
# one row per training run, with its metrics and the fitted model; at most one is active.
# ``scored_through``: the active model's last scoring pass covered changes until then (NULL:
# every contact is still to be scored).
model_versions = Table(
    "model_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("target", String(100), nullable=False),
    Column("horizon_days", Float, nullable=False),
    Column("features", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("details", JSON, nullable=False),
    Column("examples", Integer, nullable=False),
    Column("positives", Integer, nullable=False),
    Column("model", LargeBinary, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("trained_by", String(200), nullable=False),
    Column("scored_through", Float),
    sqlite_autoincrement=True,  # a version number is never reused
)

# Each contact's probability from the active model, with its own top reasons.
contact_predictions = Table(
    "contact_predictions", metadata,
    Column("contact_id", Integer, ForeignKey("contacts.id", ondelete="CASCADE"),
           primary_key=True, autoincrement=False),
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"),
           nullable=False),
    Column("probability", Float, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("scored_at", Float, nullable=False),
    Index("ix_contact_predictions_version", "version_id"),
)
