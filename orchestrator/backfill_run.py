"""`rds-streams backfill` and `up`'s backfill step: which tables, checked, backfilled one after another
with their progress shown. The chunk loop is orchestrator/database/backfill.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.database.backfill import BackfillOptions, BackfillState
from orchestrator.errors import OperationFailed, UsageError
from orchestrator.ui import UI

if TYPE_CHECKING:
    from orchestrator.up_steps import UpContext


def backfill_command(config: Config, ui: UI, cancel: CancelToken, tables: Sequence[str],
                     options: BackfillOptions) -> list[BackfillState]:
    """The command: against what `up` deployed (read from the real world; it starts nothing)."""
    from orchestrator.lifecycle import context_for
    from orchestrator.stream_context import streamed_tables

    known = streamed_tables(config)
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise UsageError(f"not a streamed table: {', '.join(unknown)} (streamed: {', '.join(known)})",
                         hint=f"name tables from [[stream.tables]] in {config.source}")
    ctx = context_for(config, ui, cancel)
    try:
        return backfill_tables(ctx, list(tables) or known, options)
    finally:
        ctx.close()


def backfill_tables(ctx: Any, tables: Sequence[str], options: BackfillOptions) -> list[BackfillState]:
    """Backfill `tables` of the user's schema, in order, on a connection of their own."""
    from orchestrator.database import backfill
    from orchestrator.database.catalog import read_table_shape
    from orchestrator.stream_context import stream_settings

    config, ui = ctx.config, ctx.ui
    _require_triggers(ctx, tables)
    settings = stream_settings(ctx)
    conn = ctx.session.connect("master", database=config.database.name)
    results = []
    try:
        locking = backfill.prepare_session(conn)
        backfill.ensure_bookkeeping(conn)
        if config.stream.delivery == "outbox":
            _require_outbox(conn)
        for table in tables:
            shape = read_table_shape(conn, config.database.name, table)
            state = backfill.begin(conn, shape, options)
            if state is None:
                ui.say("  {table}: no unfinished backfill to resume", table=shape.qualified_name)
                ui.emit("backfill", table=shape.qualified_name, status="nothing to resume")
                continue
            how = "resumed" if state.chunks_done else "started"
            ui.emit("backfill", table=shape.qualified_name, status=how, run_id=state.run_id,
                    rows_done=state.rows_done, rows_total=state.rows_total)
            ui.say("[bold]→[/] backfill {table} ({how} at row {done} of about {total}, {delivery} delivery)",
                   table=shape.qualified_name, how=how, done=state.rows_done, total=state.rows_total,
                   delivery=config.stream.delivery)
            first = state.rows_done
            with ui.progress(shape.qualified_name, state.rows_total) as update, _resumable(shape.qualified_name):
                final = backfill.run_backfill(
                    conn, shape, settings, state, options, ctx.cancel,
                    lambda done, first=first, update=update: update(
                        done.state.rows_done, (done.state.rows_done - first) / max(done.seconds, 1e-6)),
                    locking)
            ui.emit("backfill", table=shape.qualified_name, status="done", run_id=final.run_id,
                    rows_done=final.rows_done, chunks=final.chunks_done)
            ui.say("[green]✓[/] backfill {table}: {rows} rows in {chunks} chunks", table=shape.qualified_name,
                   rows=final.rows_done, chunks=final.chunks_done)
            results.append(final)
    finally:
        conn.close()
    return results


@contextmanager
def _resumable(table: str) -> Iterator[None]:
    """A connection lost mid-way (tunnel, failover) ends the command with how to go on: the chunk that
    was running rolled back, the next run resumes there."""
    import pymysql

    try:
        yield
    except pymysql.err.OperationalError as err:
        if err.args and err.args[0] in _CONNECTION_LOST:
            raise OperationFailed(f"backfill of {table}: the database connection was lost ({err.args[-1]})",
                                  hint="run `rds-streams backfill` again: it resumes at the chunk that was running") from err
        raise


_CONNECTION_LOST = frozenset({2003, 2006, 2013, 2055})


def _require_triggers(ctx: Any, tables: Sequence[str]) -> None:
    """Live changes must already be captured: the snapshot is only consistent interleaved with them."""
    from orchestrator.stream_context import streamed_drift

    schema = ctx.config.database.name
    off = [d.table for d in streamed_drift(ctx) if d.schema == schema and d.table in tables and not d.in_sync]
    if off:
        raise OperationFailed(f"the triggers of {', '.join(off)} are not installed as `up` would install them, so "
                              "changes made during a backfill could be missed",
                              hint="run `rds-streams up`, then the backfill")


def _require_outbox(conn: Any) -> None:
    from orchestrator.database.outbox import outbox_lag

    if outbox_lag(conn) is None:
        raise OperationFailed("outbox delivery is configured but the outbox is not installed",
                              hint="run `rds-streams up`, then the backfill")


def pending_backfills(ctx: Any) -> list[str]:
    """Tables marked `backfill = true` that were never backfilled to the end (up's step)."""
    from orchestrator.database.backfill import read_all_states

    wanted = [t.name for t in ctx.config.stream.tables if t.backfill]
    if not wanted:
        return []
    states = ctx.session.run(read_all_states, "the backfill check") or []
    done = {s["table"] for s in states if s["schema"] == ctx.config.database.name and s["finished_at"] is not None}
    return [t for t in wanted if t not in done]


class BackfillTables:
    """Tables marked `backfill = true` get their existing rows emitted the first time they are streamed
    (an unfinished backfill, e.g. of an interrupted `up`, resumes at its next chunk)."""

    name = "backfill"

    def is_done(self, ctx: UpContext) -> bool:
        return not pending_backfills(ctx)

    def run(self, ctx: UpContext) -> None:
        backfill_tables(ctx, pending_backfills(ctx), BackfillOptions())
