"""Fixes to moto 5.2.5's own CloudFormation behaviour that our stacks run into (see moto_models.py).

Each function replaces one moto method; `apply()` installs them all and is idempotent.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.cloudformation.models import ChangeSet, Stack
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.internet_gateways import InternetGateway
from moto.ec2.models.nat_gateways import NatGateway
from moto.ec2.models.route_tables import RouteTable
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
EC2_DELETES = {RouteTable: _delete_route_table, NatGateway: _delete_nat_gateway,
               ElasticAddress: _release_address, InternetGateway: _delete_internet_gateway,
               VPCEndPoint: _delete_vpc_endpoint}


def _apply_change_set(self: ChangeSet) -> None:
    """moto applies a change set's resources but keeps the stack's old template, parameters and
    outputs, so a stack created through a change set reports no Outputs. Do what update_stack does."""
    stack = self.stack
    stack.resource_map.update(self.template_dict, self.parameters)
    stack.template = self.template
    stack._parse_template()
    if self.parameters:
        stack.parameters = self.parameters
    stack.description = self.template_dict.get("Description")
    stack.output_map = stack._create_output_map()


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


def apply() -> None:
    for model, delete in EC2_DELETES.items():
        model.delete = delete  # type: ignore[attr-defined]
    ChangeSet.apply = _apply_change_set  # type: ignore[method-assign]
    Stack.outputs = property(_outputs_unless_deleted)  # type: ignore[assignment,method-assign]
    LambdaFunction.update_from_cloudformation_json = classmethod(_update_lambda_with_inline_code)  # type: ignore[method-assign,assignment]
