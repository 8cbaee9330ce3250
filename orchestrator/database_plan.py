"""`plan` for the database side: the schema file, the app user and grants, the triggers, when the
database is reachable; and saying so when it is not yet."""

from __future__ import annotations

from orchestrator.errors import OperationFailed
from orchestrator.up_steps import UpContext, grant_plan, login_check, stream_settings, streamed


def plan_database(ctx: UpContext) -> bool:
    """Show what the database steps of `up` would do; True when they would change something."""
    from orchestrator.database.catalog import table_exists
    from orchestrator.database.grants import grants_status
    from orchestrator.database.schema import SchemaState, schema_status
    from orchestrator.database.triggers import plan_triggers

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
    schema = ctx.session.run(lambda conn: schema_status(conn, config), "the schema check")
    plan, check = grant_plan(ctx), login_check(ctx)
    grants = ctx.session.run(lambda conn: grants_status(conn, plan, login_check=check), "the grants check")
    settings = stream_settings(ctx)
    # Before the first `up` the canary (and tables the schema file creates) do not exist yet.
    tables = ctx.session.run(lambda conn: [t for schema, names in streamed(config)
                                           if all(table_exists(conn, schema, n) for n in names)
                                           for t in plan_triggers(conn, schema, names, settings)], "the trigger check")
    ui.emit("database_plan", reachable=True, cluster=deployment.cluster_id,
            schema={"state": schema.state.value, "details": schema.details},
            grants=list(grants.missing),
            triggers=[{"table": t.table, "columns": list(t.columns),
                       "changes": [{"name": c.name, "action": c.action, "reason": c.reason} for c in t.changes]}
                      for t in tables])
    ui.say("[bold]database[/] {name} on {cluster}", name=config.database.name, cluster=deployment.cluster_id)
    ui.text(f"  schema {schema.state.value}: {schema.details}")
    for line in grants.missing:
        ui.text(f"  grants: {line}")
    for table in tables:
        for change in table.changes:
            if change.action != "unchanged":
                ui.text(f"  trigger {change.name}: {change.action} ({change.reason}); "
                        f"columns {', '.join(table.columns)}")
    triggers_change = any(t.needs_work for t in tables)
    if schema.state is SchemaState.APPLIED and grants.done and not triggers_change:
        ui.say("  [dim]no database changes[/]")
        return False
    return schema.state is SchemaState.PENDING or not grants.done or triggers_change

