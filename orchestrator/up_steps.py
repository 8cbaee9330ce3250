"""The steps of `up` after the stacks: each checks the real world before it acts, so `up` is
idempotent and resumes after a failure or Ctrl-C at any step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from orchestrator.aws import AwsClients
from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deploy.graph import stack_order
from orchestrator.deployment import DatabaseSession, Deployment, build_deployment
from orchestrator.errors import OperationFailed
from orchestrator.stream_context import grant_plan, login_check, stream_settings, streamed, streamed_drift, streamed_tables
from orchestrator.ui import UI


@dataclass
class UpContext:
    config: Config
    aws: AwsClients
    ui: UI
    cancel: CancelToken
    only: list[str] | None = None
    accept_edited_migrations: bool = False  # record edited applied migrations as they are now, not run again
    refresh_bastion: bool = False     # the bastion takes the current image (a replacement)
    sandbox: Any = None                 # orchestrator.sandbox.manager.Sandbox on the local target
    sandbox_state: Any = None
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    changed_stacks: list[str] = field(default_factory=list)
    confirmed_cluster_changes: bool = False   # the yes for changes to an attached cluster was given
    _attached: Any = None                     # orchestrator.attach.cluster.AttachedCluster, read once
    _deployment: Deployment | None = None
    _session: DatabaseSession | None = None

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            outputs = {stack: self.outputs_of(stack) for stack in stack_order(self.config)}
            absent = [self.config.stack_name(stack) for stack, values in outputs.items() if not values]
            if absent:
                raise OperationFailed(f"not deployed yet: {', '.join(absent)}", hint="run `rds-streams up` first")
            attached = self.attached_cluster() if self.config.attached else None
            self._deployment = build_deployment(self.config, outputs, self.aws, self.sandbox_state, attached=attached)
        return self._deployment

    def attached_cluster(self, *, refresh: bool = False) -> Any:
        """The attached cluster as AWS describes it now (refused with exit 2 if it cannot be streamed)."""
        if self._attached is None or refresh:
            from orchestrator.attach.cluster import describe_cluster

            self._attached = describe_cluster(self.aws.client("rds"), self.config)
        return self._attached

    @property
    def session(self) -> DatabaseSession:
        if self._session is None:
            self._session = DatabaseSession(self.config, self.deployment, self.aws, self.ui)
        return self._session

    def outputs_of(self, stack: str) -> dict[str, str]:
        if stack not in self.outputs:
            from orchestrator.deploy.stacks import describe_stack

            self.outputs[stack] = describe_stack(self.aws.client("cloudformation"), self.config.stack_name(stack)).outputs
        return self.outputs[stack]

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class DeployStacks:
    name = "stacks"

    def is_done(self, ctx: UpContext) -> bool:
        return False  # the change sets are the check: an unchanged stack costs one describe

    def run(self, ctx: UpContext) -> None:
        from orchestrator.deploy.assets import ConsumerCode
        from orchestrator.deploy.pinned import ssm_lookup
        from orchestrator.deploy.up import deploy_stacks

        external = None
        if ctx.config.attached:
            from orchestrator.attach.stack_inputs import attachment_inputs

            external = {"attachment": attachment_inputs(ctx)}
        code = ConsumerCode(ctx.config, s3=ctx.aws.client("s3"), ui=ctx.ui)
        result = deploy_stacks(ctx.aws.client("cloudformation"), ctx.config, ctx.only, ctx.ui, ctx.cancel,
                               image_lookup=ssm_lookup(ctx.aws.client("ssm")), refresh_bastion=ctx.refresh_bastion,
                               code=code, external=external)
        ctx.outputs.update(result.outputs)
        ctx.changed_stacks += result.changed


class BindSandbox:
    """Local target only: make the deployed stacks real on this machine."""

    name = "sandbox binding"

    def is_done(self, ctx: UpContext) -> bool:
        return False  # each part is idempotent and quick

    def run(self, ctx: UpContext) -> None:
        from orchestrator.sandbox.binding import bind_database, trust_key_pair

        state = ctx.sandbox_state
        bind_database(state, ctx.session.credentials("master"), ctx.config.database.name, ctx.config.sandbox.lambda_ms)
        if ctx.config.bastion.mode == "create":
            trust_key_pair(state, ctx.session.private_key())
        # The runner loads the deployed code when it starts: restart it when that code may have changed.
        if ctx.sandbox.runner_pid() is None or ctx.config.stack_name("consumer") in ctx.changed_stacks:
            from orchestrator.sandbox.function_code import prepare_deployed

            # A requirement that does not install fails `up` here, where the user sees why.
            prepare_deployed(ctx.aws, ctx.config.stack_name("consumer"), ctx.deployment.function_arn,
                             ctx.sandbox.root / "functions")
            ctx.sandbox.restart_runner(state)



class OpenTunnel:
    name = "tunnel"

    def is_done(self, ctx: UpContext) -> bool:
        return False

    def run(self, ctx: UpContext) -> None:
        tunnel = ctx.session.tunnel()
        if ctx.deployment.reach == "direct":
            ctx.ui.say("  directly to {host}:{port} ({why})", host=tunnel.local_host, port=tunnel.local_port,
                       why='[bastion] mode = "none"')
            return
        ctx.ui.say("  through {host}:{port} on 127.0.0.1:{local} (connect and auth {ms:.0f} ms)",
                   host=ctx.deployment.bastion_host, port=ctx.deployment.bastion_port, local=tunnel.local_port,
                   ms=tunnel.connect_seconds * 1000)


class ApplyMigrations:
    """Pending migrations in order; a migration that alters a streamed table re-fits its triggers
    under the same table lock as the DDL, so writers wait instead of failing."""

    name = "migrations"

    def is_done(self, ctx: UpContext) -> bool:
        from orchestrator.database.migrations import MigrationState, migration_status

        statuses = ctx.session.run(lambda conn: migration_status(conn, ctx.config), "the migrations check")
        return all(s.state is MigrationState.APPLIED for s in statuses)

    def run(self, ctx: UpContext) -> None:
        from orchestrator.database.migrations import accept_edited, apply_migrations
        from orchestrator.database.trigger_install import refit_triggers_locked

        config = ctx.config
        if ctx.accept_edited_migrations:
            accepted = ctx.session.run(lambda conn: accept_edited(conn, config), "the migrations")
            for name in accepted:
                ctx.ui.say("  accepted the edited {name} as it is now (not run again)", name=name)
        settings = stream_settings(ctx)

        def refit(conn: Any, tables: Any) -> None:
            for plan in refit_triggers_locked(conn, config.database.name, streamed_tables(config), settings, tables):
                for change in plan.changes:
                    if change.action != "unchanged":
                        ctx.ui.text(f"  {plan.table}: {change.action} {change.name} with the DDL, under its lock")

        result = ctx.session.run(lambda conn: apply_migrations(conn, config, refit, streamed_tables(config)),
                                 "the migrations")
        ctx.ui.text(f"  {result.statements_run} statement(s) from {', '.join(result.applied) or 'no migration'}")


class EnsureGrants:
    name = "grants"

    def is_done(self, ctx: UpContext) -> bool:
        from orchestrator.database.grants import grants_status

        plan, check = grant_plan(ctx), login_check(ctx)
        return ctx.session.run(lambda conn: grants_status(conn, plan, login_check=check), "the grants check").done

    def run(self, ctx: UpContext) -> None:
        from orchestrator.database.grants import ensure_grants
        from orchestrator.verify.canary import ensure_canary_table

        plan, check = grant_plan(ctx), login_check(ctx)

        def grant(conn: Any) -> Any:
            ensure_canary_table(conn)  # a table must exist to be granted on
            return ensure_grants(conn, plan, login_check=check)

        status = ctx.session.run(grant, "the grants")
        for line in status.missing:
            ctx.ui.text(f"  {line}")


class InstallOutbox:
    """The outbox, its delivering EVENT and where it delivers to. Installed in both delivery modes, so
    switching either way loses nothing: the event drains what outbox triggers wrote before a switch."""

    name = "outbox"

    def _settings(self, ctx: UpContext) -> dict[str, Any]:
        return {"function_arn": ctx.deployment.function_arn, "batch_size": ctx.config.stream.batch_size,
                "max_attempts": ctx.config.stream.max_attempts, "partitions": ctx.config.stream.partitions}

    def is_done(self, ctx: UpContext) -> bool:
        from orchestrator.database.outbox import outbox_installed

        settings = self._settings(ctx)
        return ctx.session.run(lambda conn: outbox_installed(conn, **settings), "the outbox check")

    def run(self, ctx: UpContext) -> None:
        from orchestrator.database.outbox import install_outbox

        settings = self._settings(ctx)
        ctx.session.run(lambda conn: install_outbox(conn, **settings), "the outbox")


class DrainOutbox:
    """Direct delivery only: records an outbox trigger wrote before the switch are delivered now."""

    name = "outbox drain"

    def is_done(self, ctx: UpContext) -> bool:
        from orchestrator.database.outbox import outbox_lag

        lag = ctx.session.run(outbox_lag, "the outbox check")
        return lag is None or lag.waiting == 0

    def run(self, ctx: UpContext) -> None:
        from orchestrator.database.outbox import require_empty

        ctx.session.run(lambda conn: require_empty(conn, timeout=120.0), "the outbox drain")


class InstallTriggers:
    name = "triggers"

    def is_done(self, ctx: UpContext) -> bool:
        from orchestrator.verify.canary import canary_exists

        if not ctx.session.run(canary_exists, "the canary check"):
            return False
        return all(d.in_sync for d in streamed_drift(ctx))

    def run(self, ctx: UpContext) -> None:
        from orchestrator.database.trigger_install import install_triggers
        from orchestrator.verify.canary import ensure_canary_table

        settings = stream_settings(ctx)

        def install(conn: Any) -> list[Any]:
            ensure_canary_table(conn)
            return [plan for schema, tables in streamed(ctx.config)
                    for plan in install_triggers(conn, schema, tables, settings)]

        plans = ctx.session.run(install, "the triggers")
        for plan in plans:
            for change in plan.changes:
                if change.action != "unchanged":
                    ctx.ui.text(f"  {plan.table}: {change.action} {change.name} ({change.reason})")


class SmokeTest:
    """A write as the app user (the path users' writes take, through the triggers in their definer's
    context) must reach the consumer's log: a row with a unique marker, inserted into the canary and
    deleted again."""

    name = "smoke test"
    timeout = 120.0

    def is_done(self, ctx: UpContext) -> bool:
        return False

    def run(self, ctx: UpContext) -> None:
        from orchestrator.database.probe import new_marker
        from orchestrator.verify.canary import CANARY_SCHEMA, CANARY_TABLE
        from orchestrator.verify.roundtrip import canary_write, find_marker
        from orchestrator.verify.sink_readers import open_reader

        marker = new_marker("smoke")
        started = time.time()
        reader = open_reader(ctx.aws, ctx.deployment, int(started * 1000) - 1000, [f"{CANARY_SCHEMA}.{CANARY_TABLE}"],
                             ctx.config.consumer.sink)
        try:
            conn = ctx.session.connect("app")
            try:
                canary_write(conn, marker)
            finally:
                conn.close()
            found = find_marker(reader, marker, timeout=self.timeout, cancel=ctx.cancel)
        finally:
            reader.close()
        if not found:
            raise OperationFailed(f"the app user's write {marker} on the canary did not reach "
                                  f"{reader.where} within {self.timeout:.0f} s",
                                  hint="check the consumer's log (`rds-streams logs`) and the cluster's egress to Lambda")
        latency = found[0][1] / 1000 - started
        ctx.ui.text(f"  the app user's write {marker} reached {reader.where} after {latency * 1000:.0f} ms")
