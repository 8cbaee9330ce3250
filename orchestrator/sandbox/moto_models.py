"""CloudFormation models moto 5.2.5 lacks, so our full template set deploys, updates and deletes in moto.

moto's CloudFormation silently skips AWS::RDS::DBCluster, AWS::RDS::DBClusterParameterGroup,
AWS::EC2::KeyPair and AWS::SecretsManager::Secret, fails on an Aurora AWS::RDS::DBInstance, and cannot
delete route tables (FACTS.md). No
library fills that gap, so this module does, through moto's own service backends: what the stacks
create is then visible to the RDS, EC2, SSM and Secrets Manager APIs as on AWS.

moto builds its type map from `CloudFormationModel.__subclasses__()` behind an lru_cache, which
`register()` clears and checks, and each class needs `__module__ = "moto.<service>...."`: moto's
model metaclass reads the service from it.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.rds.models import rds_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from orchestrator.sandbox import moto_fixes, moto_s3


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    tags = properties.get("Tags") or []
    return [{"Key": k, "Value": v} for k, v in tags.items()] if isinstance(tags, dict) else list(tags)


class _Model:
    """Shared plumbing: the physical id, attribute lookup, and no in-place update (replace instead).

    A mixin, not a CloudFormationModel: moto only looks at that class's direct subclasses.
    """

    attributes: dict[str, str] = {}

    def __init__(self, physical_id: str, account_id: str, region: str, **attrs: Any) -> None:
        self._physical_id = physical_id
        self.account_id = account_id
        self.region = region
        self.attrs = attrs

    @property
    def physical_resource_id(self) -> str:
        return self._physical_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attrs[self.attributes[attribute_name]]

    def is_created(self) -> bool:
        return True

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: Any, account_id: str, region_name: str) -> Any:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)


class AuroraCluster(_Model, CloudFormationModel):
    __module__ = "moto.rds.rds_streams"
    attributes = {"Endpoint.Address": "endpoint", "Endpoint.Port": "port", "DBClusterArn": "arn",
                  "MasterUserSecret.SecretArn": "secret_arn", "ReadEndpoint.Address": "reader_endpoint"}

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBCluster"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> AuroraCluster:
        props = cloudformation_json["Properties"]
        identifier = props.get("DBClusterIdentifier") or resource_name.lower().replace("_", "-")
        backend = rds_backends[account_id][region_name]
        cluster = backend.create_db_cluster({
            "db_cluster_identifier": identifier, "engine": props["Engine"],
            "engine_version": props.get("EngineVersion"), "master_username": props.get("MasterUsername"),
            "manage_master_user_password": props.get("ManageMasterUserPassword", False),
            "master_user_password": props.get("MasterUserPassword"), "database_name": props.get("DatabaseName"),
            "db_cluster_parameter_group_name": props.get("DBClusterParameterGroupName"),
            "db_subnet_group_name": props.get("DBSubnetGroupName"),
            "vpc_security_group_ids": props.get("VpcSecurityGroupIds", []),
            "storage_encrypted": props.get("StorageEncrypted", False), "port": props.get("Port"),
            "backup_retention_period": props.get("BackupRetentionPeriod", 1), "tags": _tags(props),
            "deletion_protection": props.get("DeletionProtection", False),
        })
        cluster.status = "available"  # CloudFormation returns once the cluster is available
        for role in props.get("AssociatedRoles", []):
            backend.add_role_to_db_cluster(identifier, role["RoleArn"], role.get("FeatureName"))
        secret = getattr(cluster, "master_user_secret", None)
        return cls(identifier, account_id, region_name, endpoint=cluster.endpoint, port=str(cluster.port),
                   arn=cluster.db_cluster_arn, reader_endpoint=cluster.reader_endpoint,
                   secret_arn=secret.secret_arn if secret else None,
                   final_snapshot=cloudformation_json.get("DeletionPolicy") == "Snapshot")

    def delete(self, account_id: str, region_name: str) -> None:
        backend = rds_backends[account_id][region_name]
        if self._physical_id in backend.clusters:
            snapshot = f"{self._physical_id}-final" if self.attrs["final_snapshot"] else None
            backend.delete_db_cluster(self._physical_id, snapshot)


class AuroraInstance(_Model, CloudFormationModel):
    """Replaces moto's AWS::RDS::DBInstance model, which ignores DBClusterIdentifier and fails for Aurora."""

    __module__ = "moto.rds.rds_streams"
    attributes = {"Endpoint.Address": "endpoint", "Endpoint.Port": "port", "DBInstanceArn": "arn"}

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBInstance"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> AuroraInstance:
        props = cloudformation_json["Properties"]
        identifier = props.get("DBInstanceIdentifier") or resource_name.lower().replace("_", "-")
        instance = rds_backends[account_id][region_name].create_db_instance({
            "db_instance_identifier": identifier, "db_cluster_identifier": props.get("DBClusterIdentifier"),
            "engine": props["Engine"], "db_instance_class": props["DBInstanceClass"],
            "publicly_accessible": props.get("PubliclyAccessible", False), "tags": _tags(props),
        })
        return cls(identifier, account_id, region_name, endpoint=instance.address, port=str(instance.port),
                   arn=instance.db_instance_arn)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = rds_backends[account_id][region_name]
        if self._physical_id in backend.databases:
            backend.delete_db_instance(self._physical_id, skip_final_snapshot=True)


class AuroraClusterParameterGroup(_Model, CloudFormationModel):
    __module__ = "moto.rds.rds_streams"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::RDS::DBClusterParameterGroup"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> AuroraClusterParameterGroup:
        props = cloudformation_json["Properties"]
        name = (props.get("DBClusterParameterGroupName") or resource_name).lower()
        backend = rds_backends[account_id][region_name]
        group = backend.create_db_cluster_parameter_group(name, props["Family"], props["Description"], _tags(props))
        group.update_cluster_parameters(
            {"ParameterName": key, "ParameterValue": str(value), "ApplyMethod": "pending-reboot"}
            for key, value in props.get("Parameters", {}).items()
        )
        return cls(name, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = rds_backends[account_id][region_name]
        if self._physical_id in backend.db_cluster_parameter_groups:
            backend.delete_db_cluster_parameter_group(self._physical_id)


class Ec2KeyPair(_Model, CloudFormationModel):
    """As AWS does, the private key of a created pair is kept in SSM at /ec2/keypair/<KeyPairId>."""

    __module__ = "moto.ec2.rds_streams"
    attributes = {"KeyPairId": "key_pair_id", "KeyFingerprint": "fingerprint"}

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::EC2::KeyPair"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> Ec2KeyPair:
        props = cloudformation_json["Properties"]
        tags = {t["Key"]: t["Value"] for t in _tags(props)}
        ec2 = ec2_backends[account_id][region_name]
        if props.get("PublicKeyMaterial"):
            pair = ec2.import_key_pair(props["KeyName"], props["PublicKeyMaterial"].encode(), tags)
        else:
            pair = ec2.create_key_pair(props["KeyName"], props.get("KeyType", "rsa"), tags)
            ssm_backends[account_id][region_name].put_parameter(
                name=f"/ec2/keypair/{pair.id}", description=f"private key of {pair.key_name}",
                value=pair.key_material, parameter_type="SecureString", allowed_pattern=None, keyid=None,
                overwrite=True, tags=None, data_type="text", tier=None, policies=None,
            )
        return cls(pair.key_name, account_id, region_name, key_pair_id=pair.id, fingerprint=pair.key_fingerprint)

    def delete(self, account_id: str, region_name: str) -> None:
        ec2_backends[account_id][region_name].delete_key_pair(self._physical_id)
        ssm = ssm_backends[account_id][region_name]
        ssm._parameters.pop(f"/ec2/keypair/{self.attrs['key_pair_id']}", None)


class Secret(_Model, CloudFormationModel):
    __module__ = "moto.secretsmanager.rds_streams"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> Secret:
        props = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if generate:
            password = json.loads(backend.get_random_password(
                password_length=int(generate.get("PasswordLength", 32)),
                exclude_characters=generate.get("ExcludeCharacters", ""),
                exclude_numbers=generate.get("ExcludeNumbers", False),
                exclude_punctuation=generate.get("ExcludePunctuation", False),
                exclude_uppercase=generate.get("ExcludeUppercase", False),
                exclude_lowercase=generate.get("ExcludeLowercase", False),
                include_space=generate.get("IncludeSpace", False),
                require_each_included_type=generate.get("RequireEachIncludedType", True),
            ))["RandomPassword"]
            if "SecretStringTemplate" in generate:
                value = json.dumps({**json.loads(generate["SecretStringTemplate"]),
                                    generate["GenerateStringKey"]: password})
            else:
                value = password
        name = props.get("Name") or resource_name
        backend.create_secret(name=name, secret_string=value, secret_binary=None,
                              description=props.get("Description"), tags=_tags(props),
                              kms_key_id=props.get("KmsKeyId"), client_request_token=None,
                              replica_regions=[], force_overwrite=False)
        return cls(backend.describe_secret(name).arn, account_id, region_name, name=name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = secretsmanager_backends[account_id][region_name]
        if backend.secrets.get(self._physical_id) or backend.secrets.get(self.attrs["name"]):
            backend.delete_secret(self._physical_id, recovery_window_in_days=None,
                                  force_delete_without_recovery=True)


def register() -> None:
    """Make sure moto's CloudFormation sees our models; call before anything parses a template."""
    moto_fixes.apply()
    moto_s3.apply()
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    model_map = parsing.get_model_map()
    for model in (AuroraCluster, AuroraInstance, AuroraClusterParameterGroup, Ec2KeyPair, Secret, moto_s3.BucketPolicy):
        assert model_map[model.cloudformation_type()] is model, model


register()
