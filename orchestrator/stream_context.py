"""What several commands read of a deployed stream: its stream settings, the streamed tables, the
triggers' drift, the cascades covered, the app user's grant plan. Below the commands, so `up`'s steps,
`plan`, `status`, `verify` and `backfill` share it and none reaches into another's code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.config import Config

if TYPE_CHECKING:
    from orchestrator.up_steps import UpContext


def grant_plan(ctx: UpContext) -> Any:
    """The app user also writes verify's canary: verify and the smoke test write as that user."""
    from orchestrator.database.grants import GrantPlan
    from orchestrator.verify.canary import CANARY_SCHEMA, CANARY_TABLE

    return GrantPlan.for_config(ctx.config, ctx.session.credentials("app"), tables=((CANARY_SCHEMA, CANARY_TABLE),))


def login_check(ctx: UpContext) -> Any:
    """Whether the app user's secret still logs in (it may have been rotated)."""
    from orchestrator.database.connect import can_log_in

    tunnel = ctx.session.tunnel()
    return lambda creds: can_log_in(tunnel.local_host, tunnel.local_port, creds, tls=ctx.session.tls())


def stream_settings(ctx: UpContext) -> Any:
    from orchestrator.database.triggers import StreamSettings

    return StreamSettings.from_config(ctx.config, function_arn=ctx.deployment.function_arn,
                                      event_source_arn=ctx.deployment.event_source_arn)


def streamed_tables(config: Config) -> list[str]:
    return [table.name for table in config.stream.tables]


def streamed(config: Config) -> list[tuple[str, list[str]]]:
    """Schemas and their streamed tables: the user's, and verify's canary in our bookkeeping schema."""
    from orchestrator.verify.canary import CANARY_SCHEMA, CANARY_TABLE

    return [(config.database.name, streamed_tables(config)), (CANARY_SCHEMA, [CANARY_TABLE])]


def streamed_drift(ctx: UpContext) -> list[Any]:
    """Installed triggers against what would be generated now, for every streamed table and the canary."""
    from orchestrator.database.trigger_install import trigger_drift

    settings = stream_settings(ctx)
    return ctx.session.run(lambda conn: [d for schema, tables in streamed(ctx.config)
                                         for d in trigger_drift(conn, schema, tables, settings)], "the trigger check")


def cascade_report(ctx: UpContext) -> list[str]:
    """The chains of cascading foreign keys whose changes the triggers emit, for status and verify."""
    from orchestrator.database.cascades import cascade_paths_covered

    return ctx.session.run(lambda conn: [p for schema, tables in streamed(ctx.config)
                                         for p in cascade_paths_covered(conn, schema, tables)], "the cascade check")
