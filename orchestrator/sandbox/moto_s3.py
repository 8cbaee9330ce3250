"""The assets stack's S3 resources in moto 5.2.5, whose CloudFormation creates a bucket without its
versioning or public access block and has no AWS::S3::BucketPolicy at all (skipped silently).

The bucket gets the versioning and public access block its template asks for, so `down` meets the
object versions it meets on AWS. The TLS-only bucket policy is accepted but not put on the bucket:
moto's policy check ignores Conditions, so a deny-unless-TLS statement would deny everything (and
the sandbox's moto speaks plain HTTP on loopback anyway).
"""

from __future__ import annotations

from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.models import FakeBucket, s3_backends
from moto.utilities.utils import get_partition

_create_bucket = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _create_bucket_as_declared(cls: type[FakeBucket], resource_name: str, cloudformation_json: Any, account_id: str,
                               region_name: str, **kwargs: Any) -> FakeBucket:
    bucket = _create_bucket(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    properties = cloudformation_json.get("Properties", {})
    backend = s3_backends[account_id][get_partition(region_name)]
    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning:
        backend.put_bucket_versioning(bucket.name, versioning)
    if properties.get("PublicAccessBlockConfiguration"):
        backend.put_public_access_block(bucket.name, properties["PublicAccessBlockConfiguration"])
    return bucket


class BucketPolicy(CloudFormationModel):
    __module__ = "moto.s3.rds_streams"

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> BucketPolicy:
        return cls(cloudformation_json["Properties"]["Bucket"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: Any, account_id: str, region_name: str) -> BucketPolicy:
        return cls(cloudformation_json["Properties"]["Bucket"])

    def delete(self, account_id: str, region_name: str) -> None:
        pass  # nothing was put on the bucket (see the module's docstring)

    def is_created(self) -> bool:
        return True


def apply() -> None:
    FakeBucket.create_from_cloudformation_json = classmethod(_create_bucket_as_declared)  # type: ignore[method-assign,assignment]
