"""What CloudFormation cannot do to a cluster it does not own, done through the RDS API: associate
our role (AddRoleToDBCluster), set the cluster parameters the stream needs in the cluster's own
parameter group (ModifyDBClusterParameterGroup) or, where the cluster uses an AWS default group
(which cannot be modified), in a copy of it we create and attach (CopyDBClusterParameterGroup,
ModifyDBCluster). Each change is planned against what AWS says now (so it is idempotent), recorded
with the previous value before it is made, and reversed exactly by `down`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.attach.cluster import AttachedCluster
from orchestrator.attach.record import RecordedChange
from orchestrator.config import Config, Dialect

ROLE_PENDING = "(the attachment stack's role, once deployed)"


@dataclass(frozen=True)
class ClusterChange:
    key: str
    kind: str            # associate-role | copy-group | set-parameter | switch-group
    target: str          # cluster identifier or parameter group name
    name: str            # role ARN, parameter name or group name
    previous: str | None
    wanted: str
    why: str

    @property
    def description(self) -> str:
        if self.kind == "associate-role":
            return f"associate the role {self.name} with the cluster {self.target} (AddRoleToDBCluster)"
        if self.kind == "copy-group":
            return (f"copy the default parameter group {self.previous} to {self.name} "
                    "(CopyDBClusterParameterGroup): a default group cannot be modified")
        if self.kind == "switch-group":
            return (f"attach the parameter group {self.wanted} to the cluster {self.target} instead of {self.previous} "
                    "(ModifyDBCluster); its instances need a reboot to take it")
        before = "unset" if self.previous is None else self.previous
        return f"set {self.name} = {self.wanted} in the parameter group {self.target} (was {before}): {self.why}"

    def as_record(self) -> RecordedChange:
        return RecordedChange(self.key, self.kind, self.target, self.name, self.previous is not None,
                              self.previous, self.wanted)


def wanted_parameters(config: Config, role_arn: str) -> dict[str, tuple[str, str]]:
    """Parameter -> (value, why)."""
    wanted = {"aws_default_lambda_role": (role_arn, "the role Aurora uses to call Lambda")}
    if config.database.dialect is Dialect.V3:
        wanted["activate_all_roles_on_login"] = ("1", "sessions get AWS_LAMBDA_ACCESS without SET ROLE")
    if config.stream.delivery == "outbox":
        wanted["event_scheduler"] = ("ON", "the outbox's delivering EVENT runs")
    return wanted


def copy_group_name(config: Config, cluster: AttachedCluster) -> str:
    return f"{config.project.name}-{cluster.identifier}"[:255].lower()


def current_parameters(rds: Any, group: str, names: set[str]) -> dict[str, str | None]:
    """Values of `names` in `group` (None when unset); reads every page (AWS lists all ~500 parameters)."""
    values: dict[str, str | None] = dict.fromkeys(names)
    kwargs: dict[str, Any] = {"DBClusterParameterGroupName": group}
    while True:
        page = rds.describe_db_cluster_parameters(**kwargs)
        for parameter in page.get("Parameters", []):
            if parameter["ParameterName"] in names:
                values[parameter["ParameterName"]] = parameter.get("ParameterValue")
        if not page.get("Marker"):
            return values
        kwargs["Marker"] = page["Marker"]


def plan_changes(rds: Any, config: Config, cluster: AttachedCluster, role_arn: str | None) -> list[ClusterChange]:
    """Every change still needed, in the order they are made; empty when the cluster is as we need it."""
    role = role_arn or ROLE_PENDING
    changes: list[ClusterChange] = []
    if role_arn is None or role_arn not in cluster.role_arns:
        changes.append(ClusterChange(f"role:{cluster.identifier}", "associate-role", cluster.identifier, role,
                                     None, role, "Aurora assumes it to invoke the consumer"))
    wanted = wanted_parameters(config, role)
    group = cluster.parameter_group
    if cluster.uses_default_group:
        copy = copy_group_name(config, cluster)
        changes.append(ClusterChange(f"group-copy:{copy}", "copy-group", copy, copy, group, copy,
                                     "a default group cannot be modified"))
        changes += [ClusterChange(f"parameter:{copy}:{name}", "set-parameter", copy, name, None, value, why)
                    for name, (value, why) in wanted.items()]
        changes.append(ClusterChange(f"group:{cluster.identifier}", "switch-group", cluster.identifier, copy, group,
                                     copy, "the cluster takes the copy with our parameters"))
        return changes
    current = current_parameters(rds, group, set(wanted))
    for name, (value, why) in wanted.items():
        if current.get(name) != value:
            changes.append(ClusterChange(f"parameter:{group}:{name}", "set-parameter", group, name, current.get(name),
                                         value, why))
    return changes


def apply_change(rds: Any, change: ClusterChange) -> None:
    if change.kind == "associate-role":
        rds.add_role_to_db_cluster(DBClusterIdentifier=change.target, RoleArn=change.name)
    elif change.kind == "copy-group":
        rds.copy_db_cluster_parameter_group(
            SourceDBClusterParameterGroupIdentifier=change.previous, TargetDBClusterParameterGroupIdentifier=change.name,
            TargetDBClusterParameterGroupDescription=f"rds-streams: {change.previous} with the stream's parameters")
    elif change.kind == "set-parameter":
        rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=change.target, Parameters=[
            {"ParameterName": change.name, "ParameterValue": change.wanted, "ApplyMethod": "immediate"}])
    elif change.kind == "switch-group":
        rds.modify_db_cluster(DBClusterIdentifier=change.target, DBClusterParameterGroupName=change.wanted,
                              ApplyImmediately=True)


def reverse_change(rds: Any, change: RecordedChange, say: Callable[[str], None]) -> None:
    """Undo one recorded change; a change already undone (or never made) is left as it is."""
    from botocore.exceptions import ClientError

    try:
        if change.kind == "associate-role":
            rds.remove_role_from_db_cluster(DBClusterIdentifier=change.target, RoleArn=change.name)
        elif change.kind == "copy-group":
            try:
                rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=change.name)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "InvalidDBParameterGroupState":
                    raise
                # Instances not yet rebooted onto their own group still use the copy; we never reboot them.
                say(f"kept the parameter group copy {change.name}: instances still use it until their next reboot; "
                    f"then delete it with: aws rds delete-db-cluster-parameter-group "
                    f"--db-cluster-parameter-group-name {change.name}")
        elif change.kind == "set-parameter":
            if change.had_value:
                rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName=change.target, Parameters=[
                    {"ParameterName": change.name, "ParameterValue": change.previous, "ApplyMethod": "immediate"}])
            else:
                rds.reset_db_cluster_parameter_group(DBClusterParameterGroupName=change.target, ResetAllParameters=False,
                                                     Parameters=[{"ParameterName": change.name,
                                                                  "ApplyMethod": "immediate"}])
        elif change.kind == "switch-group":
            rds.modify_db_cluster(DBClusterIdentifier=change.target, DBClusterParameterGroupName=change.previous,
                                  ApplyImmediately=True)
            say(f"the cluster {change.target} is back on {change.previous}; its instances take it at their next reboot")
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("DBClusterRoleNotFound", "DBClusterRoleNotFoundFault", "DBParameterGroupNotFound",
                    "DBParameterGroupNotFoundFault"):
            return  # already undone
        raise


def unsettled(rds: Any, identifier: str, role_arn: str | None) -> str | None:
    """Why the cluster cannot take our triggers yet (None when it can): our role not yet ACTIVE, or an
    instance whose parameter group is not in sync (a newly attached group waits for its reboot). A
    trigger installed before would fail the user's writes (Aurora calls Lambda inside them)."""
    raw = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    for role in raw.get("AssociatedRoles", []):
        if role["RoleArn"] == role_arn and role.get("Status", "ACTIVE") != "ACTIVE":
            return f"the role association is {role.get('Status')}"
    pending = [m["DBInstanceIdentifier"] for m in raw.get("DBClusterMembers", [])
               if m.get("DBClusterParameterGroupStatus", "in-sync") != "in-sync"]
    if pending:
        return f"instance(s) {', '.join(pending)} have not taken the parameter group yet (pending reboot)"
    return None


def wait_until_settled(rds: Any, identifier: str, role_arn: str | None, cancel: Any, *,
                       timeout: float = 1800.0, poll: float = 10.0) -> None:
    import time

    from orchestrator.errors import OperationFailed

    deadline = time.monotonic() + timeout
    while (reason := unsettled(rds, identifier, role_arn)) is not None:
        if time.monotonic() > deadline:
            raise OperationFailed(f"the cluster {identifier} is not ready for the stream's triggers: {reason}",
                                  hint="reboot its instances (aws rds reboot-db-instance) if a parameter group is "
                                       "pending, then run `rds-streams up` again; no trigger was installed")
        if cancel.wait(poll):
            cancel.raise_if_cancelled(f"stopped while waiting for {identifier}: {reason}")
