"""The network stack: VPC, one public subnet with an internet gateway, two private subnets in two
AZs, and the private subnets' way to reach Lambda (NAT gateway or a Lambda interface endpoint)."""

from __future__ import annotations

import ipaddress

from troposphere import GetAtt, GetAZs, Join, Output, Ref, Select, Sub, Template, ec2

from blueprints.common import new_template, tag_everything
from orchestrator.config import Config


def subnet_cidrs(vpc_cidr: str) -> list[str]:
    """Public, private A, private B: the first three blocks of eight bits fewer host bits (at most /28)."""
    network = ipaddress.IPv4Network(vpc_cidr)
    blocks = network.subnets(new_prefix=min(network.prefixlen + 8, 28))
    return [str(next(blocks)) for _ in range(3)]


def vpc(t: Template, config: Config) -> ec2.VPC:
    resource = t.add_resource(ec2.VPC(
        "Vpc", CidrBlock=config.network.cidr, EnableDnsSupport=True, EnableDnsHostnames=True,
    ))
    t.add_output(Output("VpcId", Value=Ref(resource)))
    return resource


def public_subnet(t: Template, vpc_: ec2.VPC, cidr: str) -> ec2.Subnet:
    gateway = t.add_resource(ec2.InternetGateway("InternetGateway"))
    attachment = t.add_resource(ec2.VPCGatewayAttachment(
        "InternetGatewayAttachment", VpcId=Ref(vpc_), InternetGatewayId=Ref(gateway),
    ))
    subnet = t.add_resource(ec2.Subnet(
        "PublicSubnet", VpcId=Ref(vpc_), CidrBlock=cidr, AvailabilityZone=Select(0, GetAZs("")),
        MapPublicIpOnLaunch=True,
    ))
    table = t.add_resource(ec2.RouteTable("PublicRouteTable", VpcId=Ref(vpc_)))
    t.add_resource(ec2.Route(
        "PublicDefaultRoute", RouteTableId=Ref(table), DestinationCidrBlock="0.0.0.0/0",
        GatewayId=Ref(gateway), DependsOn=attachment.title,
    ))
    t.add_resource(ec2.SubnetRouteTableAssociation(
        "PublicSubnetRouteTableAssociation", SubnetId=Ref(subnet), RouteTableId=Ref(table),
    ))
    t.add_output(Output("PublicSubnetId", Value=Ref(subnet)))
    return subnet


def private_subnets(t: Template, vpc_: ec2.VPC, cidrs: list[str]) -> tuple[list[ec2.Subnet], ec2.RouteTable]:
    table = t.add_resource(ec2.RouteTable("PrivateRouteTable", VpcId=Ref(vpc_)))
    subnets = []
    for index, (suffix, cidr) in enumerate(zip("AB", cidrs, strict=True)):
        subnet = t.add_resource(ec2.Subnet(
            f"PrivateSubnet{suffix}", VpcId=Ref(vpc_), CidrBlock=cidr,
            AvailabilityZone=Select(index, GetAZs("")),
        ))
        t.add_resource(ec2.SubnetRouteTableAssociation(
            f"PrivateSubnet{suffix}RouteTableAssociation", SubnetId=Ref(subnet), RouteTableId=Ref(table),
        ))
        subnets.append(subnet)
    t.add_output(Output("PrivateSubnetIds", Value=Join(",", [Ref(s) for s in subnets])))
    return subnets, table


def nat_egress(t: Template, public: ec2.Subnet, private_table: ec2.RouteTable) -> None:
    address = t.add_resource(ec2.EIP("NatAddress", Domain="vpc", DependsOn="InternetGatewayAttachment"))
    nat = t.add_resource(ec2.NatGateway(
        "NatGateway", AllocationId=GetAtt(address, "AllocationId"), SubnetId=Ref(public),
    ))
    t.add_resource(ec2.Route(
        "PrivateDefaultRoute", RouteTableId=Ref(private_table), DestinationCidrBlock="0.0.0.0/0",
        NatGatewayId=Ref(nat),
    ))


def lambda_endpoint_egress(t: Template, config: Config, vpc_: ec2.VPC, private: list[ec2.Subnet]) -> None:
    group = t.add_resource(ec2.SecurityGroup(
        "LambdaEndpointSecurityGroup", GroupDescription="HTTPS to the Lambda endpoint from inside the VPC",
        VpcId=Ref(vpc_),
        SecurityGroupIngress=[ec2.SecurityGroupRule(
            IpProtocol="tcp", FromPort=443, ToPort=443, CidrIp=config.network.cidr,
            Description="Aurora calling Lambda",
        )],
    ))
    t.add_resource(ec2.VPCEndpoint(
        "LambdaEndpoint", VpcId=Ref(vpc_), VpcEndpointType="Interface",
        ServiceName=Sub("com.amazonaws.${AWS::Region}.lambda"), PrivateDnsEnabled=True,
        SubnetIds=[Ref(s) for s in private], SecurityGroupIds=[Ref(group)],
    ))


def network_template(config: Config) -> Template:
    t = new_template(config, "network", "VPC, subnets and egress for Aurora to reach Lambda")
    public_cidr, *private_cidrs = subnet_cidrs(config.network.cidr)
    vpc_ = vpc(t, config)
    public = public_subnet(t, vpc_, public_cidr)
    private, private_table = private_subnets(t, vpc_, private_cidrs)
    if config.network.egress == "nat":
        nat_egress(t, public, private_table)
    else:
        lambda_endpoint_egress(t, config, vpc_, private)
    return tag_everything(t, config)
