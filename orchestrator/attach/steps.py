"""The steps `up` adds when attaching to an existing cluster, and the question that comes first.

`confirm_cluster_changes` runs before anything is touched: it reads the cluster (a cluster that cannot
be streamed is refused with exit 2), lists every API change the cluster needs, and asks for a yes
(without a terminal and without --yes it refuses, exit 2). The steps then record each change with its
previous value in our bookkeeping before making it, so `down` reverses exactly what `up` did.
"""

from __future__ import annotations

from typing import Any

from orchestrator.attach.changes import ClusterChange, apply_change, plan_changes, unsettled, wait_until_settled
from orchestrator.attach.record import RecordedChange, ensure_record, record, recorded


def role_arn(ctx: Any) -> str | None:
    return ctx.outputs_of("attachment").get("AuroraLambdaRoleArn")


def planned_changes(ctx: Any, *, refresh: bool = False) -> list[ClusterChange]:
    cluster = ctx.attached_cluster(refresh=refresh)
    return plan_changes(ctx.aws.client("rds"), ctx.config, cluster, role_arn(ctx))


def reboot_note(ctx: Any, changes: list[ClusterChange]) -> str | None:
    if not any(c.kind == "switch-group" for c in changes):
        return None
    members = ", ".join(ctx.attached_cluster().members) or "none"
    return (f"instances of {ctx.attached_cluster().identifier} ({members}) take the new parameter group only after "
            "a reboot: answering yes reboots them now; answer no to reboot them yourself in a maintenance window "
            "(`aws rds reboot-db-instance`), then run `up` again")


def show_changes(ui: Any, cluster: Any, changes: list[ClusterChange], note: str | None) -> None:
    ui.emit("cluster_changes", cluster=cluster.identifier, changes=[
        {"kind": c.kind, "target": c.target, "name": c.name, "previous": c.previous, "value": c.wanted}
        for c in changes], reboot=note)
    if not changes:
        ui.say("[dim]cluster {cluster}: no changes[/]", cluster=cluster.identifier)
        return
    ui.say("[bold]cluster {cluster}[/] (not ours: changed through the API, each change recorded for `down`)",
           cluster=cluster.identifier)
    for change in changes:
        ui.say("  [yellow]~[/] {what}", what=change.description)
    if note:
        ui.say("  [yellow]![/] {note}", note=note)


def confirm_cluster_changes(ctx: Any) -> None:
    """Before anything is touched: refuse what cannot be attached, list the cluster's changes, ask once."""
    cluster = ctx.attached_cluster()
    changes = planned_changes(ctx)
    if not changes:
        ctx.confirmed_cluster_changes = True
        return
    show_changes(ctx.ui, cluster, changes, reboot_note(ctx, changes))
    ctx.ui.confirm("Make these {n} change(s) to the cluster {cluster}, which rds-streams does not own?",
                   why=f"the cluster {cluster.identifier} (its role associations and parameter group "
                       f"{cluster.parameter_group}) needs {len(changes)} change(s)",
                   n=len(changes), cluster=cluster.identifier)
    ctx.confirmed_cluster_changes = True


class AttachCluster:
    """Associate our role and set the cluster parameters the stream needs (recorded first)."""

    name = "cluster changes"

    def is_done(self, ctx: Any) -> bool:
        if planned_changes(ctx, refresh=True):
            return False
        return unsettled(ctx.aws.client("rds"), ctx.attached_cluster().identifier, role_arn(ctx)) is None

    def run(self, ctx: Any) -> None:
        changes = planned_changes(ctx, refresh=True)
        if not ctx.confirmed_cluster_changes:
            confirm_cluster_changes(ctx)
        rds = ctx.aws.client("rds")
        ctx.session.run(ensure_record, "the bookkeeping")
        for change in changes:
            ctx.session.run(lambda conn, c=change: record(conn, c.as_record()), "the bookkeeping")
            apply_change(rds, change)
            ctx.ui.text(f"  {change.description}")
        if any(c.kind == "switch-group" for c in changes):
            self._reboot(ctx)
        ctx.attached_cluster(refresh=True)
        wait_until_settled(rds, ctx.attached_cluster().identifier, role_arn(ctx), ctx.cancel)

    def _reboot(self, ctx: Any) -> None:
        """The question listed the reboot; it was answered yes (or --yes), so the instances take the group now."""
        cluster = ctx.attached_cluster(refresh=True)
        rds = ctx.aws.client("rds")
        for member in cluster.members:
            rds.reboot_db_instance(DBInstanceIdentifier=member)
            ctx.ui.say("  rebooting {instance} so it takes the parameter group (you said yes)", instance=member)


class RecordDefiner:
    """Before the grants step: what the triggers' definer holds, so `down` gives back exactly that."""

    name = "definer record"

    def _key(self, account: str) -> str:
        return f"definer:{account}"

    def is_done(self, ctx: Any) -> bool:
        from orchestrator.database.grants_restore import definer_snapshot

        account, _ = ctx.session.run(lambda conn: definer_snapshot(conn, ctx.config), "the grants check")
        return any(r.key == self._key(account) for r in ctx.session.run(recorded, "the bookkeeping"))

    def run(self, ctx: Any) -> None:
        from orchestrator.database.grants_restore import definer_snapshot

        def snapshot(conn: Any) -> None:
            ensure_record(conn)
            account, state = definer_snapshot(conn, ctx.config)
            record(conn, RecordedChange(self._key(account), "definer-grants", account, account, True, state, None))

        ctx.session.run(snapshot, "the bookkeeping")
