"""`plan` for the database side: the migrations, the app user and grants, the triggers, when the
database is reachable; and saying so when it is not yet."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import OperationFailed
from orchestrator.stream_context import grant_plan, login_check, stream_settings, streamed
from orchestrator.up_steps import UpContext


def plan_database(ctx: UpContext) -> bool:
    """Show what the database steps of `up` would do; True when they would change something."""
    from orchestrator.database.catalog import table_exists
    from orchestrator.database.grants import grants_status
    from orchestrator.database.migrations import MigrationState, migration_status
    from orchestrator.database.trigger_install import plan_triggers

    ui, config = ctx.ui, ctx.config
    try:
        deployment = ctx.deployment
        ctx.session.tunnel()
    except OperationFailed as err:
        ui.emit("database_plan", reachable=False, reason=str(err))
        names = ", ".join(t.name for t in config.stream.tables)
        ui.say("[dim]database: not reachable yet ({err}); `up` will create the schema, user, grants and "
               "triggers for {names}[/]", err=err, names=names)
        return True
    migrations = ctx.session.run(lambda conn: migration_status(conn, config), "the migrations check")
    plan, check = grant_plan(ctx), login_check(ctx)
    grants = ctx.session.run(lambda conn: grants_status(conn, plan, login_check=check), "the grants check")
    settings = stream_settings(ctx)
    def trigger_plans(conn: Any) -> tuple[list[Any], list[str]]:
        # Before the first `up` the canary (and tables a pending migration creates) do not exist yet.
        plans, absent = [], []
        for schema, names in streamed(config):
            present = [n for n in names if table_exists(conn, schema, n)]
            absent += [n for n in names if n not in present and schema == config.database.name]
            plans += plan_triggers(conn, schema, present, settings) if present else []
        return plans, absent

    tables, absent = ctx.session.run(trigger_plans, "the trigger check")
    ui.emit("database_plan", reachable=True, cluster=deployment.cluster_id,
            migrations=[{"file": m.migration.file_name, "state": m.state.value, "details": m.details,
                         "refits_triggers_of": _refitted(m, config)} for m in migrations],
            grants=list(grants.missing),
            triggers=[{"table": t.table, "columns": list(t.columns),
                       "changes": [{"name": c.name, "action": c.action, "reason": c.reason} for c in t.changes]}
                      for t in tables])
    ui.say("[bold]database[/] {name} on {cluster}", name=config.database.name, cluster=deployment.cluster_id)
    for m in migrations:
        if m.state is not MigrationState.APPLIED:
            if m.state is MigrationState.EDITED:
                ui.say("  [red]![/] migration {state}: {details}", state=m.state.value, details=m.details)
            else:
                ui.say("  migration {state}: {details}", state=m.state.value, details=m.details)
            for table in _refitted(m, config):
                ui.say("    alters streamed table {table}: its triggers are re-generated with the DDL, under one "
                       "table lock", table=table)
    for line in grants.missing:
        ui.text(f"  grants: {line}")
    for table in tables:
        for change in table.changes:
            if change.action != "unchanged":
                ui.text(f"  trigger {change.name}: {change.action} ({change.reason}); "
                        f"columns {', '.join(table.columns)}")
    for name in absent:
        ui.say("  table {name} does not exist yet: `up` installs its triggers after the migrations, which must "
               "create it", name=name)
    triggers_change = any(t.needs_work for t in tables) or bool(absent)
    migrations_pending = any(m.state is not MigrationState.APPLIED for m in migrations)
    if not migrations_pending and grants.done and not triggers_change:
        ui.say("  [dim]no database changes[/]")
        return False
    return migrations_pending or not grants.done or triggers_change


def _refitted(status: Any, config: Any) -> list[str]:
    """Streamed tables a pending migration alters (their triggers are re-generated under its lock)."""
    from orchestrator.database.migrations import MigrationState

    if status.state is MigrationState.APPLIED:
        return []
    streamed_names = {t.name.lower() for t in config.stream.tables}
    return [t for t in status.migration.altered_tables(config.database.name) if t.lower() in streamed_names]

