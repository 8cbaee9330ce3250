"""`down` for the stacks: delete in reverse dependency order, then report and remove leftovers."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.aws import AwsClients
from orchestrator.cancel import CancelToken
from orchestrator.config import Config
from orchestrator.deploy.graph import dependencies, selected, stack_order, waves
from orchestrator.deploy.stacks import Phase, StackState, describe_stack, refuse_foreign
from orchestrator.deploy.watch import Watched, wait_for
from orchestrator.errors import UsageError
from orchestrator.ui import UI

DELETE_TIMEOUT = 60 * 60.0


@dataclass
class DownReport:
    deleted: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)   # leftovers we owned and removed
    kept: list[str] = field(default_factory=list)      # leftovers kept on purpose (say how to remove them)


def destroy_stacks(aws: AwsClients, config: Config, only: list[str] | None, ui: UI,
                   cancel: CancelToken, *, confirmed: bool = False) -> DownReport:
    """`confirmed`: the caller's question already covered deleting the stacks."""
    cfn = aws.client("cloudformation")
    order = stack_order(config)
    keys = selected(only, with_dependencies=False, order=order)
    states = {key: describe_stack(cfn, config.stack_name(key)) for key in order}
    _refuse_orphaning(keys, states)
    existing = [key for key in keys if states[key].phase is not Phase.ABSENT]
    for key in existing:
        refuse_foreign(states[key], config.owner_tag, "delete")
    report = DownReport()
    bucket = states["assets"].outputs.get("BucketName")
    if "assets" in existing and bucket and _holds_foreign_content(aws, bucket, report):
        existing.remove("assets")
    if existing:
        names = ", ".join(states[k].name for k in reversed(existing))
        cluster_note = ("" if "database" not in existing else
                        ", and with them the Aurora cluster and its data" + (
                            " (a final snapshot is kept)" if config.database.deletion == "snapshot" else
                            " (no final snapshot: database.deletion = \"delete\")"))
        if not confirmed:
            ui.confirm("Delete {names}{note}?", why=f"down deletes {names}", names=names, note=cluster_note)
        if "consumer" in existing:
            report.removed += _sink_leftovers(aws, states["consumer"])
        for wave in reversed(waves(existing)):
            watched = [Watched(name=states[k].name, action="delete", total=0, state=states[k]) for k in wave]
            if "assets" in wave and bucket:
                _empty_assets(aws, bucket, report)
            for stack in watched:
                cfn.delete_stack(StackName=stack.name)
            wait_for(cfn, watched, ui, cancel, timeout=DELETE_TIMEOUT)
            report.deleted += [w.name for w in watched]
            report.kept += [f"{w.name}: {e['LogicalResourceId']} ({e['ResourceType']}) retained"
                            for w in watched for e in w.skipped]
    _leftovers(aws, config, keys, states, report)
    _show(report, ui)
    return report


def _holds_foreign_content(aws: AwsClients, bucket: str, report: DownReport) -> bool:
    """A bucket holding objects we did not put there is left, stack and all, with a way out."""
    from orchestrator.deploy.assets import bucket_contents

    foreign = bucket_contents(aws.client("s3"), bucket).foreign
    if not foreign:
        return False
    shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    report.kept.append(f"the assets bucket {bucket} and its stack: it holds {len(foreign)} object(s) rds-streams did "
                       f"not put there ({shown}); move or delete them (every version), then run `rds-streams down` again")
    return True


def _empty_assets(aws: AwsClients, bucket: str, report: DownReport) -> None:
    from orchestrator.deploy.assets import bucket_contents, empty_our_objects

    s3 = aws.client("s3")
    removed = empty_our_objects(s3, bucket, bucket_contents(s3, bucket))
    if removed:
        report.removed.append(f"{removed} package object version(s) from the assets bucket {bucket}")


def _sink_leftovers(aws: AwsClients, consumer: StackState) -> list[str]:
    """Before the consumer stack goes: what a killed `verify` left on an EventBridge sink."""
    if consumer.outputs.get("SinkKind") != "eventbridge":
        return []
    from orchestrator.verify.sink_readers import remove_verify_leftovers

    return remove_verify_leftovers(aws.client("events"), aws.client("sqs"), consumer.outputs["SinkTarget"])


def _refuse_orphaning(keys: list[str], states: dict[str, StackState]) -> None:
    for key in states:
        if key in keys or states[key].phase is Phase.ABSENT:
            continue
        needed = [d for d in dependencies(key) if d in keys]
        if needed:
            raise UsageError(f"{states[key].name} still uses {', '.join(needed)}; deleting it first would break it",
                             hint=f"add --only {key}, or run `rds-streams down` without --only")


def _leftovers(aws: AwsClients, config: Config, keys: list[str], states: dict[str, StackState],
               report: DownReport) -> None:
    if "consumer" in keys:
        logs = aws.client("logs")
        group = f"/aws/lambda/{config.consumer.function_name}"
        found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if any(g["logGroupName"] == group for g in found):
            logs.delete_log_group(logGroupName=group)
            report.removed.append(f"log group {group}")
    if "database" in keys:
        _database_leftovers(aws, config, states["database"], report)
    if "attachment" in keys:
        _our_secrets(aws, config, report)


def _database_leftovers(aws: AwsClients, config: Config, state: StackState, report: DownReport) -> None:
    cluster = state.outputs.get("ClusterIdentifier")
    if cluster:
        rds = aws.client("rds")
        snapshots = rds.describe_db_cluster_snapshots(DBClusterIdentifier=cluster, SnapshotType="manual")
        for snapshot in snapshots.get("DBClusterSnapshots", []):
            report.kept.append(
                f"final snapshot {snapshot['DBClusterSnapshotIdentifier']} (database.deletion = \"snapshot\"); "
                f"remove it with: aws rds delete-db-cluster-snapshot --db-cluster-snapshot-identifier "
                f"{snapshot['DBClusterSnapshotIdentifier']}")
    _our_secrets(aws, config, report)


def _our_secrets(aws: AwsClients, config: Config, report: DownReport) -> None:
    """Secrets carrying our ownership tag (the app user's); an attached cluster's own are never tagged so."""
    secrets = aws.client("secretsmanager")
    (key, value), = config.owner_tag.items()
    listed = secrets.list_secrets(Filters=[{"Key": "tag-key", "Values": [key]},
                                           {"Key": "tag-value", "Values": [value]}]).get("SecretList", [])
    for secret in listed:
        if not secret.get("DeletedDate"):
            secrets.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
            report.removed.append(f"secret {secret['Name']}")


def _show(report: DownReport, ui: UI) -> None:
    ui.emit("down", deleted=report.deleted, removed=report.removed, kept=report.kept)
    if not report.deleted and not report.removed:
        ui.say("nothing to delete: no stack of this project exists")
    for name in report.deleted:
        ui.say("[green]deleted[/] {name}", name=name)
    for item in report.removed:
        ui.say("[green]removed leftover[/] {item}", item=item)
    for item in report.kept:
        ui.say("[yellow]kept[/] {item}", item=item)
