"""The bastion host of the database stack: the only way in to the private cluster."""

from __future__ import annotations

from troposphere import Base64, GetAtt, Output, Parameter, Ref, Sub, Template, ec2

from orchestrator.config import Config

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"
IMAGE_PARAMETER = "BastionImageId"


def image_source(config: Config) -> str:
    """AWS's public SSM parameter naming the current Amazon Linux 2023 for the bastion's architecture."""
    return AMI_PARAMETER.format(arch=config.bastion.architecture)


def bastion_image(t: Template, config: Config) -> Parameter:
    """The bastion's image id, a plain value that `up` fills in. An SSM-typed parameter would be resolved
    again on every change set, so each Amazon Linux release would replace the bastion (a new host key,
    dropped tunnels) on the next `up`: `up` resolves the image once, when the stack is created, passes
    the stack's own value back on every update, and resolves it anew only for `up --refresh-bastion`."""
    return t.add_parameter(Parameter(
        IMAGE_PARAMETER, Type="AWS::EC2::Image::Id",
        Description=f"Amazon Linux 2023 image for the bastion, from {image_source(config)} when first deployed "
                    "(rds-streams up --refresh-bastion takes the current one)",
    ))


def bastion_security_group(t: Template, config: Config, vpc_id: Parameter) -> ec2.SecurityGroup:
    return t.add_resource(ec2.SecurityGroup(
        "BastionSecurityGroup", GroupDescription="SSH to the bastion from the allowed range only",
        VpcId=Ref(vpc_id),
        SecurityGroupIngress=[ec2.SecurityGroupRule(
            IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp=config.bastion.allowed_cidr,
            Description="SSH from bastion.allowed_cidr",
        )],
    ))


def key_pair(t: Template, config: Config) -> ec2.KeyPair:
    """AWS keeps the private key in SSM Parameter Store at /ec2/keypair/<KeyPairId>."""
    pair = t.add_resource(ec2.KeyPair(
        "BastionKeyPair", KeyName=f"{config.project.name}-bastion", KeyType="ed25519",
    ))
    t.add_output(Output("KeyPairId", Value=GetAtt(pair, "KeyPairId")))
    t.add_output(Output("KeyPairName", Value=Ref(pair)))
    return pair


# The key pair may forward to the cluster endpoint on 3306 and do nothing else: no shell, no command, no
# PTY, no other forward (cloud-init has installed it for ec2-user by the time user scripts run).
FORWARD_ONLY_USER_DATA = """#!/bin/bash
set -euo pipefail
keys=/home/ec2-user/.ssh/authorized_keys
sed -i -E 's#^(ssh-|ecdsa-|sk-)#restrict,port-forwarding,permitopen="${ClusterEndpoint}:3306",command="/bin/false" \\1#' "$keys"
cat > /etc/ssh/sshd_config.d/10-rds-streams.conf <<'CONF'
AllowTcpForwarding local
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PermitTTY no
CONF
systemctl reload sshd
"""


def forward_only_user_data(endpoint: object = None, port: object = None) -> Base64:
    """Forwards to our cluster's endpoint, or to `endpoint`/`port` (an attached cluster's, as Parameters)."""
    text = FORWARD_ONLY_USER_DATA if port is None else FORWARD_ONLY_USER_DATA.replace(":3306", ":${ClusterPort}")
    values = {"ClusterEndpoint": endpoint if endpoint is not None else GetAtt("Cluster", "Endpoint.Address")}
    if port is not None:
        values["ClusterPort"] = port
    return Base64(Sub(text, **values))


def bastion_instance(t: Template, config: Config, image: Parameter, subnet_id: Parameter,
                     group: ec2.SecurityGroup, pair: ec2.KeyPair, user_data: Base64 | None = None) -> ec2.Instance:
    instance = t.add_resource(ec2.Instance(
        "Bastion", ImageId=Ref(image), InstanceType=config.bastion.instance_type, KeyName=Ref(pair),
        SubnetId=Ref(subnet_id), SecurityGroupIds=[Ref(group)],
        MetadataOptions=ec2.MetadataOptions(HttpTokens="required", HttpEndpoint="enabled"),
        UserData=user_data or forward_only_user_data(),
    ))
    t.add_output(Output("BastionInstanceId", Value=Ref(instance)))
    t.add_output(Output("BastionPublicIp", Value=GetAtt(instance, "PublicIp")))
    return instance
