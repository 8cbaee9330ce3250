"""The database stack: the Aurora MySQL cluster with its Lambda role, parameter group, subnet group,
security groups, app-user secret, and the bastion that reaches it."""

from __future__ import annotations

from awacs import awslambda as lambda_actions
from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import GetAtt, Output, Parameter, Ref, Template, ec2, iam, rds, secretsmanager

from blueprints.bastion import bastion_image, bastion_instance, bastion_security_group, key_pair
from blueprints.common import new_template, tag_everything
from orchestrator.config import Config, Dialect

APP_USER = "rds_streams_app"
MASTER_USER = "rds_admin"
EXTENDED_SUPPORT = "open-source-rds-extended-support"
EXTENDED_SUPPORT_NOTE = ("Aurora MySQL 2 left standard support on 2024-10-31: a v2 cluster bills RDS Extended Support "
                         "per vCPU-hour on top of its instances; engine_version 8.0.mysql_aurora.3.* avoids it")


def upstream_parameters(t: Template) -> dict[str, Parameter]:
    """Values from the network and consumer stacks' Outputs (Parameters, never exports)."""
    specs = {
        "VpcId": "AWS::EC2::VPC::Id",
        "PublicSubnetId": "AWS::EC2::Subnet::Id",
        "PrivateSubnetIds": "List<AWS::EC2::Subnet::Id>",
        "ConsumerFunctionArn": "String",
    }
    return {name: t.add_parameter(Parameter(name, Type=kind)) for name, kind in specs.items()}


def lambda_invoke_role(t: Template, function_arn: Parameter) -> iam.Role:
    """Assumed by Aurora; may invoke the consumer function and nothing else."""
    role = t.add_resource(iam.Role(
        "AuroraLambdaRole", Path="/service-role/",
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow, Principal=Principal("Service", ["rds.amazonaws.com"]), Action=[AssumeRole],
        )]),
        Policies=[iam.Policy(PolicyName="InvokeConsumer", PolicyDocument=PolicyDocument(
            Version="2012-10-17",
            Statement=[Statement(Effect=Allow, Action=[lambda_actions.InvokeFunction],
                                 Resource=[Ref(function_arn)])],
        ))],
    ))
    t.add_output(Output("AuroraLambdaRoleArn", Value=GetAtt(role, "Arn")))
    return role


def cluster_parameter_group(t: Template, config: Config, role: iam.Role) -> rds.DBClusterParameterGroup:
    parameters = {"aws_default_lambda_role": GetAtt(role, "Arn")}
    if config.database.dialect is Dialect.V3:
        # Triggers run as their definer; its AWS_LAMBDA_ACCESS role must be active without SET ROLE.
        parameters["activate_all_roles_on_login"] = "1"
    if config.stream.delivery == "outbox":
        parameters["event_scheduler"] = "ON"
    return t.add_resource(rds.DBClusterParameterGroup(
        "ClusterParameterGroup", Family=config.database.parameter_group_family,
        Description=f"{config.project.name}: Aurora may call the consumer Lambda", Parameters=parameters,
    ))


def database_security_group(t: Template, vpc_id: Parameter, bastion_group: ec2.SecurityGroup) -> ec2.SecurityGroup:
    return t.add_resource(ec2.SecurityGroup(
        "DatabaseSecurityGroup", GroupDescription="MySQL from the bastion only", VpcId=Ref(vpc_id),
        SecurityGroupIngress=[ec2.SecurityGroupRule(
            IpProtocol="tcp", FromPort=3306, ToPort=3306,
            SourceSecurityGroupId=GetAtt(bastion_group, "GroupId"), Description="MySQL from the bastion",
        )],
    ))


def app_user_secret(t: Template, config: Config) -> secretsmanager.Secret:
    secret = t.add_resource(secretsmanager.Secret(
        "AppUserSecret", Description=f"{config.project.name}: the application user's MySQL credentials",
        GenerateSecretString=secretsmanager.GenerateSecretString(
            SecretStringTemplate=f'{{"username": "{APP_USER}"}}', GenerateStringKey="password",
            PasswordLength=32, ExcludeCharacters="\"'@/\\`",
        ),
    ))
    t.add_output(Output("AppSecretArn", Value=Ref(secret)))
    return secret


def aurora_cluster(t: Template, config: Config, params: dict[str, Parameter], role: iam.Role,
                   parameter_group: rds.DBClusterParameterGroup, security_group: ec2.SecurityGroup) -> rds.DBCluster:
    # `deletion` is what `down` does; a change that replaces the cluster always keeps a snapshot of the
    # old one, even under --yes (UpdateReplacePolicy: Delete would drop its data).
    policy = "Snapshot" if config.database.deletion == "snapshot" else "Delete"
    subnet_group = t.add_resource(rds.DBSubnetGroup(
        "DatabaseSubnetGroup", DBSubnetGroupDescription="The private subnets",
        SubnetIds=Ref(params["PrivateSubnetIds"]),
    ))
    # Aurora MySQL 2 left standard support on 2024-10-31: a v2 cluster bills RDS Extended Support (per
    # vCPU-hour, on top of the instances). Said explicitly, so the template shows it; README and plan say so.
    lifecycle = {"EngineLifecycleSupport": EXTENDED_SUPPORT} if config.database.dialect is Dialect.V2 else {}
    cluster = t.add_resource(rds.DBCluster(
        "Cluster", Engine="aurora-mysql", EngineVersion=config.database.engine_version,
        DatabaseName=config.database.name, MasterUsername=MASTER_USER, ManageMasterUserPassword=True,
        StorageEncrypted=True, DBClusterParameterGroupName=Ref(parameter_group),
        DBSubnetGroupName=Ref(subnet_group), VpcSecurityGroupIds=[GetAtt(security_group, "GroupId")],
        AssociatedRoles=[rds.DBClusterRole(RoleArn=GetAtt(role, "Arn"))],
        BackupRetentionPeriod=1, DeletionProtection=False, **lifecycle,
        DeletionPolicy=policy, UpdateReplacePolicy="Snapshot",
    ))
    for index in range(1, config.database.instances + 1):
        t.add_resource(rds.DBInstance(
            f"ClusterInstance{index}", Engine="aurora-mysql", DBClusterIdentifier=Ref(cluster),
            DBInstanceClass=config.database.instance_class, PubliclyAccessible=False,
        ))
    t.add_output(Output("ClusterIdentifier", Value=Ref(cluster)))
    t.add_output(Output("ClusterEndpoint", Value=GetAtt(cluster, "Endpoint.Address")))
    t.add_output(Output("ClusterPort", Value=GetAtt(cluster, "Endpoint.Port")))
    t.add_output(Output("MasterSecretArn", Value=GetAtt(cluster, "MasterUserSecret.SecretArn")))
    return cluster


def database_template(config: Config) -> Template:
    t = new_template(config, "database", "Aurora MySQL cluster that streams changes, and its bastion")
    params = upstream_parameters(t)
    image = bastion_image(t, config)
    role = lambda_invoke_role(t, params["ConsumerFunctionArn"])
    parameter_group = cluster_parameter_group(t, config, role)
    bastion_group = bastion_security_group(t, config, params["VpcId"])
    database_group = database_security_group(t, params["VpcId"], bastion_group)
    aurora_cluster(t, config, params, role, parameter_group, database_group)
    app_user_secret(t, config)
    pair = key_pair(t, config)
    bastion_instance(t, config, image, params["PublicSubnetId"], bastion_group, pair)
    return tag_everything(t, config)
