"""Fixes to moto 5.2.5's own CloudFormation behaviour that our stacks run into (see moto_models.py).

Each function replaces one moto method; `apply()` installs them all and is idempotent.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.cloudformation import parsing
from moto.cloudformation.models import Change, ChangeSet, Stack
from moto.cloudformation.parsing import ResourceMap
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.internet_gateways import InternetGateway
from moto.ec2.models.nat_gateways import NatGateway
from moto.ec2.models.route_tables import RouteTable
from moto.ec2.models.security_groups import SecurityGroupIngress
from moto.ec2.models.vpcs import VPCEndPoint


def _delete_route_table(self: RouteTable, account_id: str, region_name: str) -> None:
    """What CloudFormation does: drop the table's associations and routes, then the table."""
    backend = ec2_backends[account_id][region_name]
    if self.id not in backend.route_tables:
        return
    self._associations.clear()
    self._routes.clear()
    backend.delete_route_table(self.id)


def _delete_nat_gateway(self: NatGateway, account_id: str, region_name: str) -> None:
    ec2_backends[account_id][region_name].delete_nat_gateway(self.id)


def _release_address(self: ElasticAddress, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    if self in backend.addresses:
        backend.release_address(address=self.public_ip)


def _delete_internet_gateway(self: InternetGateway, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    if self.vpc:
        backend.detach_internet_gateway(self.id, self.vpc.id)
    if self.id in backend.internet_gateways:
        backend.delete_internet_gateway(self.id)


def _delete_vpc_endpoint(self: VPCEndPoint, account_id: str, region_name: str) -> None:
    ec2_backends[account_id][region_name].delete_vpc_endpoints([self.id])


# moto's CloudFormation has no delete for these, so a deleted stack would leave them behind, where
# CloudFormation proper deletes them.
def _revoke_ingress(self: SecurityGroupIngress, account_id: str, region_name: str) -> None:
    """moto keeps an AWS::EC2::SecurityGroupIngress rule after its stack is deleted; CloudFormation revokes
    it, and on an attached cluster's own security group it must (that group is not ours). The rule is
    dropped from the group directly: moto deletes a stack's resources in no dependency order, so the
    rule's source group may be gone already, which moto's revoke refuses."""
    props = self.properties
    group = self.security_group

    def ours(rule: Any) -> bool:
        return (rule.ip_protocol == str(props.get("IpProtocol")) and rule.from_port == int(props.get("FromPort"))
                and rule.to_port == int(props.get("ToPort"))
                and (rule.source_group or {}).get("GroupId") == props.get("SourceSecurityGroupId")
                and (rule.ip_range or {}).get("CidrIp") == props.get("CidrIp"))

    group.ingress_rules = [rule for rule in group.ingress_rules if not ours(rule)]


EC2_DELETES = {SecurityGroupIngress: _revoke_ingress, RouteTable: _delete_route_table, NatGateway: _delete_nat_gateway,
               ElasticAddress: _release_address, InternetGateway: _delete_internet_gateway,
               VPCEndPoint: _delete_vpc_endpoint}


def _apply_change_set(self: ChangeSet) -> None:
    """moto applies a change set's resources but keeps the stack's old template, parameters and
    outputs, so a stack created through a change set reports no Outputs. Do what update_stack does."""
    stack = self.stack
    stack.resource_map.update(self.template_dict, self.parameters)
    stack.template = self.template
    stack._parse_template()
    stack.parameters = self.parameters or {}  # a template that takes none any more keeps none
    stack.description = self.template_dict.get("Description")
    stack.output_map = stack._create_output_map()


def _diff_with_parameters(self: ChangeSet) -> list[Change]:
    """moto lists a change set's resources from the template alone, so a change of parameters only (the
    consumer's new package key) showed as no change at all; CloudFormation lists the resources that
    use a changed parameter as modified, and moto's own update does too (ResourceMap.update)."""
    resource_map = self.stack.resource_map
    names = resource_map.build_resource_diff(self.template_dict, self.parameters)
    new, old = self.template_dict.get("Resources", {}), resource_map._resource_json_map
    return [Change(action=action, logical_resource_id=name, resource_type=(old if action == "Remove" else new)[name]["Type"])
            for action in ("Add", "Modify", "Remove") for name in names[action]]


_stack_outputs = Stack.outputs
_update_lambda = LambdaFunction.update_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _update_lambda_with_inline_code(cls: type[LambdaFunction], original_resource: Any, new_resource_name: str,
                                    cloudformation_json: Any, account_id: str, region_name: str) -> Any:
    """moto zips an inline ZipFile on create but not on update, where it 500s; so a changed handler
    could never be deployed. Zip it here as the create path does."""
    code = cloudformation_json["Properties"].get("Code", {})
    if "ZipFile" in code:
        cloudformation_json = copy.deepcopy(cloudformation_json)
        zipped = cls._create_zipfile_from_plaintext_code(code["ZipFile"])
        cloudformation_json["Properties"]["Code"]["ZipFile"] = base64.b64encode(zipped).decode()
    return _update_lambda(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)


def _outputs_unless_deleted(self: Stack) -> list[dict[str, Any]] | None:
    """moto evaluates Outputs lazily, and for a deleted stack that re-creates the deleted resources
    (a key pair, say) behind its back. A deleted stack has no outputs on AWS either."""
    if self.status == "DELETE_COMPLETE":
        return None
    return _stack_outputs.fget(self)


_resource_map_update = ResourceMap.update
_parse_and_update_resource = parsing.parse_and_update_resource


def _update_forgetting_removed(self: ResourceMap, template: dict[str, Any],
                               parameters: dict[str, Any] | None = None) -> None:
    """moto deletes a resource a stack update removes but keeps it in its cache, so a later update that
    adds it back gets the deleted one (an SQS queue reported UPDATE_COMPLETE that does not exist).
    CloudFormation creates it again: forget removed resources, so re-adding creates them."""
    before = set(self._resource_json_map)
    # moto keeps the parameters of the previous template when the new one takes none, then fails on
    # them (KeyError): a consumer going back from your package to the inline logger. Forget them.
    dropped = set(self.resolved_parameters) - set(template.get("Parameters", {}))
    for name in dropped:
        self.resolved_parameters.pop(name, None)
        self._parsed_resources.pop(name, None)
    if not parameters:
        self.input_parameters = {}
    _resource_map_update(self, template, parameters)
    for name in before - set(template.get("Resources", {})):
        self._parsed_resources.pop(name, None)


def _set_log_group_retention(group: Any, properties: dict[str, Any]) -> None:
    group.retention_in_days = properties.get("RetentionInDays")


# Types whose moto model cannot update: what CloudFormation changes in place for the properties our
# templates set. Anything else keeps the resource as it is (as an update needing no replacement does).
IN_PLACE_UPDATES = {"AWS::Logs::LogGroup": _set_log_group_retention}


def _update_or_keep(logical_id: str, resource_json: dict[str, Any], resources_map: ResourceMap, account_id: str,
                    region_name: str) -> Any:
    """moto turns a modified resource whose model has no update (LogGroup, Instance, Subnet, VPC, ...)
    into None, which drops every Output that names it ("up fails for good" after a retention change).
    Keep the resource and apply the change as CloudFormation would."""
    updated = _parse_and_update_resource(logical_id, resource_json, resources_map, account_id, region_name)
    if updated is not None:
        return updated
    current = resources_map._parsed_resources.get(logical_id)
    if current is None or isinstance(current, str):
        return current
    in_place = IN_PLACE_UPDATES.get(resource_json.get("Type", ""))
    if in_place is not None:
        in_place(current, parsing.clean_json(resource_json.get("Properties", {}), resources_map))
    return current


def _reset_db_cluster_parameter_group(self: Any) -> Any:
    """moto 5.2.5 has no ResetDBClusterParameterGroup; `down` uses it to unset a parameter an attached
    cluster did not have before `up`. As AWS: the named parameters (or all) return to their default,
    which in moto (it lists only what was set) means not set."""
    from moto.core.responses import ActionResult
    from moto.rds.exceptions import DBParameterGroupNotFoundError

    name = self.params.get("DBClusterParameterGroupName")
    group = self.backend.db_cluster_parameter_groups.get(name)
    if group is None:
        raise DBParameterGroupNotFoundError(name)
    if self.params.get("ResetAllParameters"):
        group.parameters.clear()
    for parameter in self.params.get("Parameters", []):
        group.parameters.pop(parameter.original_dict()["ParameterName"], None)
    return ActionResult({"DBClusterParameterGroupName": name})


def _remove_role_from_db_cluster(self: Any) -> Any:
    """moto 5.2.5 has no RemoveRoleFromDBCluster; `down` uses it on an attached cluster. As AWS: an
    unknown cluster or a role not associated is a fault naming it."""
    from moto.core.responses import EmptyResult
    from moto.rds.exceptions import DBClusterNotFoundError, RDSClientError

    identifier, role_arn = self.params.get("DBClusterIdentifier"), self.params.get("RoleArn")
    cluster = self.backend.clusters.get(identifier)
    if cluster is None:
        raise DBClusterNotFoundError(identifier)
    kept = [role for role in cluster._associated_roles if role.role_arn != role_arn]
    if len(kept) == len(cluster._associated_roles):
        raise RDSClientError("DBClusterRoleNotFound", f"Role {role_arn} is not associated with {identifier}")
    cluster._associated_roles = kept
    return EmptyResult()


def apply() -> None:
    from moto.rds.responses import RDSResponse

    RDSResponse.remove_role_from_db_cluster = _remove_role_from_db_cluster  # type: ignore[attr-defined]
    RDSResponse.reset_db_cluster_parameter_group = _reset_db_cluster_parameter_group  # type: ignore[attr-defined]
    for model, delete in EC2_DELETES.items():
        model.delete = delete  # type: ignore[attr-defined]
    ChangeSet.apply = _apply_change_set  # type: ignore[method-assign]
    ChangeSet.diff = _diff_with_parameters  # type: ignore[method-assign]
    Stack.outputs = property(_outputs_unless_deleted)  # type: ignore[assignment,method-assign]
    LambdaFunction.update_from_cloudformation_json = classmethod(_update_lambda_with_inline_code)  # type: ignore[method-assign,assignment]
    ResourceMap.update = _update_forgetting_removed  # type: ignore[method-assign]
    parsing.parse_and_update_resource = _update_or_keep
