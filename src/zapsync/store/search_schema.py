"""The inbox's search indexes and the contacts' name order: database objects the models cannot
declare (trigram GIN and expression indexes on PostgreSQL, FTS5 tables kept by triggers on
SQLite), created by migration 0009 and left out of autogenerate's comparison.

What is searched, on both engines: a conversation's `search_name`; a contact's `search_name`
and its phone digits, with and without Brazil's ninth digit ("+5531987651234" is searched as
"5531987651234 553187651234"). `search_name` is `store.text.search_key(name)`, accent- and
case-free, written beside `name` by every writer (models' validators, `store.upsert`).

A later migration that rebuilds `contacts` or `conversations` on SQLite (batch mode) loses the
triggers and the expression index: it must call `create(bind)` again afterwards.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

# The phone digits as search reads them; `{p}` is the phone column. No bound parameters: on
# PostgreSQL a query must spell the indexed expression exactly for the index to serve it.
_PHONES = (
    "(replace({p}, '+', '') || CASE WHEN {p} LIKE '+55__9________' "
    "THEN ' ' || substr({p}, 2, 4) || substr({p}, 7) ELSE '' END)"
)


def phones_sql(column: str) -> str:
    return _PHONES.format(p=column)


def no_activity_default(dialect: str) -> sa.TextClause:
    """`NO_ACTIVITY` as each engine stores it (SQLite: SQLAlchemy's own datetime text)."""
    if dialect == "sqlite":
        return sa.text("'1970-01-01 00:00:00.000000'")
    return sa.text("'1970-01-01 00:00:00+00'")


CONTACTS_BY_NAME = "ix_contacts_by_name"
# The contacts' order: named first by lower(name), then the unnamed, each by id.
CONTACTS_ORDER_SQL = "(name IS NULL), coalesce(lower(name), '')"

PG_INDEXES = {
    "ix_conversations_search_trgm": (
        "CREATE INDEX ix_conversations_search_trgm ON conversations "
        "USING gin (search_name gin_trgm_ops)"
    ),
    "ix_contacts_search_trgm": (
        "CREATE INDEX ix_contacts_search_trgm ON contacts USING gin (search_name gin_trgm_ops)"
    ),
    "ix_contacts_phones_trgm": (
        "CREATE INDEX ix_contacts_phones_trgm ON contacts "
        f"USING gin (({phones_sql('phone_e164')}) gin_trgm_ops)"
    ),
}

CONVERSATION_FTS = "conversation_search"
CONTACT_FTS = "contact_search"
_FTS_SUFFIXES = ("", "_data", "_idx", "_content", "_docsize", "_config")

_CONTACT_VALUES = (
    "coalesce(NEW.search_name, ''), coalesce(" + phones_sql("NEW.phone_e164") + ", '')"
)
SQLITE_DDL = (
    # case_sensitive: the text is folded already, so a match is an exact substring, as
    # PostgreSQL's LIKE is.
    f"CREATE VIRTUAL TABLE {CONVERSATION_FTS} USING fts5(names, "
    "tokenize='trigram case_sensitive 1')",
    f"CREATE VIRTUAL TABLE {CONTACT_FTS} USING fts5(names, phones, "
    "tokenize='trigram case_sensitive 1')",
    f"""CREATE TRIGGER conversations_search_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO {CONVERSATION_FTS}(rowid, names) VALUES (NEW.id, coalesce(NEW.search_name, ''));
    END""",
    f"""CREATE TRIGGER conversations_search_update AFTER UPDATE OF search_name ON conversations
    BEGIN
        UPDATE {CONVERSATION_FTS} SET names = coalesce(NEW.search_name, '') WHERE rowid = NEW.id;
    END""",
    f"""CREATE TRIGGER conversations_search_delete AFTER DELETE ON conversations BEGIN
        DELETE FROM {CONVERSATION_FTS} WHERE rowid = OLD.id;
    END""",
    f"""CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
        INSERT INTO {CONTACT_FTS}(rowid, names, phones) VALUES (NEW.id, {_CONTACT_VALUES});
    END""",
    f"""CREATE TRIGGER contacts_search_update AFTER UPDATE OF search_name, phone_e164 ON contacts
    BEGIN
        DELETE FROM {CONTACT_FTS} WHERE rowid = OLD.id;
        INSERT INTO {CONTACT_FTS}(rowid, names, phones) VALUES (NEW.id, {_CONTACT_VALUES});
    END""",
    f"""CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
        DELETE FROM {CONTACT_FTS} WHERE rowid = OLD.id;
    END""",
    f"INSERT INTO {CONVERSATION_FTS}(rowid, names) "
    "SELECT id, coalesce(search_name, '') FROM conversations",
    f"INSERT INTO {CONTACT_FTS}(rowid, names, phones) SELECT id, coalesce(search_name, ''), "
    f"coalesce({phones_sql('phone_e164')}, '') FROM contacts",
)
SQLITE_TRIGGERS = (
    "conversations_search_insert",
    "conversations_search_update",
    "conversations_search_delete",
    "contacts_search_insert",
    "contacts_search_update",
    "contacts_search_delete",
)


def create(bind: sa.Connection) -> None:
    columns = f"organization_id, {CONTACTS_ORDER_SQL}, id"
    bind.execute(sa.text(f"CREATE INDEX {CONTACTS_BY_NAME} ON contacts ({columns})"))
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_DDL:
            bind.execute(sa.text(statement))
        return
    bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    for statement in PG_INDEXES.values():
        bind.execute(sa.text(statement))


def optimize(bind: sa.Connection) -> None:
    """Merge each SQLite search table's index into one b-tree. Rows written one by one (the
    triggers) leave segments behind, and a term is looked up in every one of them: at 120,000
    contacts, 16 segments made a common name's match take 5 ms instead of 3.5 (issue 12).
    About a second at that size; nothing to do on PostgreSQL."""
    if bind.dialect.name != "sqlite":
        return
    for table in (CONVERSATION_FTS, CONTACT_FTS):
        exists = bind.execute(
            sa.text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": table},
        ).first()
        if exists is not None:
            bind.execute(sa.text(f"INSERT INTO {table}({table}) VALUES ('optimize')"))


def drop(bind: sa.Connection) -> None:
    bind.execute(sa.text(f"DROP INDEX IF EXISTS {CONTACTS_BY_NAME}"))
    if bind.dialect.name == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            bind.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}"))
        for table in (CONVERSATION_FTS, CONTACT_FTS):
            bind.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        return
    for name in PG_INDEXES:
        bind.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))


# Names autogenerate must not compare: they are not in the models.
UNMODELLED = frozenset(
    {
        CONTACTS_BY_NAME,
        *PG_INDEXES,
        *(base + suffix for base in (CONVERSATION_FTS, CONTACT_FTS) for suffix in _FTS_SUFFIXES),
    }
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's `include_object`: everything but the objects above, and Procrastinate's
    tables (its schema, created by migration 0012, is its own)."""
    return name not in UNMODELLED and not (name or "").startswith("procrastinate_")
