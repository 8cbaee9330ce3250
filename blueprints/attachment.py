"""The attachment stack: what `up` adds around a cluster it does not own ([database] cluster).

The role Aurora assumes to invoke the consumer, the app user's secret, a Lambda interface endpoint in
the cluster's VPC where its subnets have no route to Lambda (the AddLambdaEndpoint parameter, decided
by `up` from the route tables), and with `[bastion] mode = "create"` our bastion in a public subnet of
that VPC with a rule on the cluster's security group letting it in. Everything else done to the
cluster (role association, parameters) is an API step recorded in our bookkeeping: CloudFormation
cannot change a cluster it does not own.
"""

from __future__ import annotations

from troposphere import Equals, Output, Parameter, Ref, Sub, Template, ec2

from blueprints.bastion import bastion_image, bastion_instance, bastion_security_group, forward_only_user_data, key_pair
from blueprints.common import new_template, tag_everything
from blueprints.database import app_user_secret, lambda_invoke_role
from orchestrator.config import Config

ENDPOINT_CONDITION = "AddLambdaEndpoint"


def cluster_parameters(t: Template, config: Config) -> dict[str, Parameter]:
    """The consumer's ARN (from its stack's Outputs) and what `up` read from the attached cluster."""
    specs = {
        "ConsumerFunctionArn": ("String", "the consumer function Aurora invokes"),
        "VpcId": ("String", "the attached cluster's VPC"),
        "SubnetIds": ("CommaDelimitedList", "the subnets of the cluster's subnet group"),
        "ClusterSecurityGroupId": ("String", "the cluster's (first) VPC security group"),
    }
    if config.bastion.mode == "create":  # our bastion forwards to the endpoint and is let in on the port
        specs["ClusterEndpoint"] = ("String", "the cluster's writer endpoint")
        specs["ClusterPort"] = ("Number", "the cluster's port")
    params = {name: t.add_parameter(Parameter(name, Type=kind, Description=text)) for name, (kind, text) in specs.items()}
    params[ENDPOINT_CONDITION] = t.add_parameter(Parameter(
        ENDPOINT_CONDITION, Type="String", AllowedValues=["true", "false"], Default="false",
        Description="true when the cluster's subnets have neither a NAT route nor a Lambda endpoint"))
    t.add_condition(ENDPOINT_CONDITION, Equals(Ref(params[ENDPOINT_CONDITION]), "true"))
    return params


def lambda_endpoint(t: Template, params: dict[str, Parameter]) -> None:
    """Only the cluster's security group may reach it, on 443."""
    group = t.add_resource(ec2.SecurityGroup(
        "LambdaEndpointSecurityGroup", Condition=ENDPOINT_CONDITION, VpcId=Ref(params["VpcId"]),
        GroupDescription="HTTPS to the Lambda endpoint from the attached cluster",
        SecurityGroupIngress=[ec2.SecurityGroupRule(
            IpProtocol="tcp", FromPort=443, ToPort=443, SourceSecurityGroupId=Ref(params["ClusterSecurityGroupId"]),
            Description="Aurora calling Lambda",
        )],
    ))
    endpoint = t.add_resource(ec2.VPCEndpoint(
        "LambdaEndpoint", Condition=ENDPOINT_CONDITION, VpcId=Ref(params["VpcId"]), VpcEndpointType="Interface",
        ServiceName=Sub("com.amazonaws.${AWS::Region}.lambda"), PrivateDnsEnabled=True,
        SubnetIds=Ref(params["SubnetIds"]), SecurityGroupIds=[Ref(group)],
    ))
    t.add_output(Output("LambdaEndpointId", Condition=ENDPOINT_CONDITION, Value=Ref(endpoint)))


def our_bastion(t: Template, config: Config, params: dict[str, Parameter]) -> None:
    public_subnet = t.add_parameter(Parameter("PublicSubnetId", Type="String",
                                              Description="a subnet of the cluster's VPC routed to an internet gateway"))
    image = bastion_image(t, config)
    group = bastion_security_group(t, config, params["VpcId"])
    t.add_resource(ec2.SecurityGroupIngress(
        "ClusterIngressFromBastion", GroupId=Ref(params["ClusterSecurityGroupId"]), IpProtocol="tcp",
        FromPort=Ref(params["ClusterPort"]), ToPort=Ref(params["ClusterPort"]),
        SourceSecurityGroupId=Ref(group), Description=f"{config.project.name}: MySQL from the rds-streams bastion",
    ))
    pair = key_pair(t, config)
    bastion_instance(t, config, image, public_subnet, group, pair,
                     user_data=forward_only_user_data(Ref(params["ClusterEndpoint"]), Ref(params["ClusterPort"])))


def attachment_template(config: Config) -> Template:
    t = new_template(config, "attachment", f"what rds-streams adds to the cluster {config.database.cluster}")
    params = cluster_parameters(t, config)
    lambda_invoke_role(t, params["ConsumerFunctionArn"])
    app_user_secret(t, config)
    lambda_endpoint(t, params)
    if config.bastion.mode == "create":
        our_bastion(t, config, params)
    return tag_everything(t, config)
