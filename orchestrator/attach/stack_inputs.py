"""The attachment stack's parameters, read from the attached cluster and its VPC (never guessed)."""

from __future__ import annotations

from typing import Any

from orchestrator.attach.cluster import AttachedCluster, LambdaRoute, lambda_route, public_subnet
from orchestrator.config import Config
from orchestrator.errors import ConfigError


def our_endpoint(cfn: Any, config: Config) -> str | None:
    """The Lambda endpoint our attachment stack made, if any: not counted as one the VPC already has."""
    from orchestrator.deploy.stacks import describe_stack

    return describe_stack(cfn, config.stack_name("attachment")).outputs.get("LambdaEndpointId")


def route_of(aws: Any, config: Config, cluster: AttachedCluster) -> LambdaRoute:
    ours = our_endpoint(aws.client("cloudformation"), config)
    return lambda_route(aws.client("ec2"), cluster, config.project.region, ignore=(ours,) if ours else ())


def inputs_for(aws: Any, config: Config, cluster: AttachedCluster) -> dict[str, str]:
    route = route_of(aws, config, cluster)
    needs_group = route.needs_endpoint or config.bastion.mode == "create"
    if needs_group and not cluster.security_group_ids:
        raise ConfigError(f"{config.source}: [database] cluster: {cluster.identifier} has no VPC security group, which "
                          "the Lambda endpoint and our bastion need to let the cluster in",
                          hint="attach a security group to the cluster, or use [bastion] mode = \"none\" with a NAT route")
    inputs = {
        "VpcId": cluster.vpc_id, "SubnetIds": ",".join(cluster.subnet_ids),
        "ClusterSecurityGroupId": cluster.security_group_ids[0] if cluster.security_group_ids else "",
        "AddLambdaEndpoint": "true" if route.needs_endpoint else "false",
    }
    if config.bastion.mode == "create":
        subnet = public_subnet(aws.client("ec2"), cluster)
        if subnet is None:
            raise ConfigError(f"{config.source}: [bastion] mode: \"create\" puts our bastion in a public subnet of "
                              f"{cluster.vpc_id}, and none of its subnets routes to an internet gateway",
                              hint="use mode = \"existing\" (your bastion) or \"none\" (a VPN reaches the endpoint)")
        inputs.update(PublicSubnetId=subnet, ClusterEndpoint=cluster.endpoint, ClusterPort=str(cluster.port))
    return inputs


def attachment_inputs(ctx: Any) -> dict[str, str]:
    return inputs_for(ctx.aws, ctx.config, ctx.attached_cluster())
