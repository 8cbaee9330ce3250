"""`down` on an attached cluster: remove only what `up` added, in reverse, and never the cluster, its
data or its users' objects. Our triggers (known from our bookkeeping, whatever their names), our app
user, what the definer was granted, the API changes (role association, parameters back to their
recorded values, the group copy after switching back), then our bookkeeping schema. Our stacks go
after this (the tunnel runs through the attachment stack's bastion)."""

from __future__ import annotations

from typing import Any

from orchestrator.attach.changes import reverse_change
from orchestrator.attach.record import forget, recorded
from orchestrator.database.sqltext import quote_identifier

BOOKKEEPING_SCHEMA = "rds_streams"
_OUR_TRIGGERS = ("SELECT t.`schema_name`, t.`trigger_name` FROM `rds_streams`.`triggers` t JOIN information_schema.TRIGGERS i "
                 "ON i.TRIGGER_SCHEMA = t.`schema_name` AND i.TRIGGER_NAME = t.`trigger_name`")


def _our_triggers(conn: Any) -> list[tuple[str, str]]:
    import pymysql

    with conn.cursor() as cursor:
        try:
            cursor.execute(_OUR_TRIGGERS)
        except pymysql.err.ProgrammingError as err:
            if err.args and err.args[0] in (1049, 1146):  # no bookkeeping: no trigger is ours
                return []
            raise
        return [(row[0], row[1]) for row in cursor.fetchall()]


def remove_database_objects(conn: Any, config: Any, app_user: str) -> list[str]:
    """Our triggers, app user and definer grants; returns what went (names only)."""
    from orchestrator.database.grants_restore import drop_app_user, restore_definer

    removed = []
    with conn.cursor() as cursor:
        for schema, trigger in _our_triggers(conn):
            cursor.execute(f"DROP TRIGGER IF EXISTS {quote_identifier(schema)}.{quote_identifier(trigger)}")
            removed.append(f"dropped trigger {schema}.{trigger}")
    if drop_app_user(conn, app_user):
        removed.append(f"dropped user {app_user}")
    for change in recorded(conn):
        if change.kind == "definer-grants" and change.previous is not None:
            removed += restore_definer(conn, config, change.target, change.previous)
            forget(conn, change.key)
    return removed


def reverse_cluster_changes(conn: Any, rds: Any, say: Any) -> list[str]:
    """The recorded API changes, newest first; each record goes once its change is undone (so a `down`
    that stops part way resumes where it stopped)."""
    done = []
    for change in recorded(conn):
        if change.kind == "definer-grants":
            continue
        reverse_change(rds, change, say)
        forget(conn, change.key)
        done.append(_undone(change))
    return done


def drop_bookkeeping(conn: Any) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (BOOKKEEPING_SCHEMA,))
        exists = cursor.fetchone()[0]
        cursor.execute(f"DROP DATABASE IF EXISTS {quote_identifier(BOOKKEEPING_SCHEMA)}")
    return bool(exists)


def _undone(change: Any) -> str:
    if change.kind == "associate-role":
        return f"role {change.name} no longer associated with {change.target}"
    if change.kind == "copy-group":
        return f"deleted the parameter group copy {change.name}"
    if change.kind == "switch-group":
        return f"cluster {change.target} back on parameter group {change.previous}"
    before = "unset" if not change.had_value else repr(change.previous)
    return f"{change.name} in {change.target} back to {before}"


def detach(ctx: Any) -> list[str]:
    """Everything of ours inside and on the cluster; the stacks are deleted by the caller afterwards."""
    from orchestrator.database.credentials import read_secret_credentials
    from orchestrator.database.outbox import require_empty
    from orchestrator.errors import OperationFailed

    try:
        deployment = ctx.deployment
    except OperationFailed as err:
        ctx.ui.say("[yellow]![/] the database is not reachable through our stacks ({err}): nothing of ours is "
                   "removed from inside it", err=err)
        return []
    try:
        app_user = read_secret_credentials(ctx.aws.client("secretsmanager"), deployment.app_secret_arn).username
    except Exception:  # the secret may be gone already: the app user's name is ours in any case
        from blueprints.database import APP_USER

        app_user = APP_USER
    rds = ctx.aws.client("rds")
    removed = ctx.session.run(lambda conn: remove_database_objects(conn, ctx.config, app_user), "the teardown")
    # Committed changes the outbox still holds are delivered before its schema goes (the triggers are gone,
    # so nothing new arrives); a failure stops `down` here, with the outbox and our record intact.
    ctx.session.run(lambda conn: require_empty(conn, timeout=120.0), "the outbox drain")
    removed += ctx.session.run(lambda conn: reverse_cluster_changes(conn, rds, ctx.ui.text), "the cluster changes")
    if ctx.session.run(drop_bookkeeping, "the bookkeeping"):
        removed.append(f"dropped schema {BOOKKEEPING_SCHEMA} (our bookkeeping, outbox and canary)")
    return removed
