"""The assets stack: the bucket our deployment packages live in (like the CDK's bootstrap bucket or
SAM's managed bucket). Created first on `up`; emptied of our objects and removed by `down`.

Versioned (a package being deployed is never overwritten under a running update), encrypted, private
(public access blocked, owner-enforced), TLS only. Old package versions expire on their own.
"""

from __future__ import annotations

from awacs import s3 as s3_actions
from awacs.aws import Bool, Condition, Deny, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Output, Ref, Sub, Template, s3

from blueprints.common import new_template, tag_everything
from orchestrator.config import Config

NONCURRENT_DAYS = 30  # how long a replaced package stays recoverable


def assets_bucket(t: Template) -> s3.Bucket:
    bucket = t.add_resource(s3.Bucket(
        "AssetsBucket",
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                SSEAlgorithm="AES256"))]),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
        OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[s3.LifecycleRule(
            Id="ExpireReplacedPackages", Status="Enabled",
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=NONCURRENT_DAYS),
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=1))]),
        DeletionPolicy="Delete", UpdateReplacePolicy="Retain",
    ))
    t.add_output(Output("BucketName", Value=Ref(bucket)))
    t.add_output(Output("BucketArn", Value=GetAtt(bucket, "Arn")))
    return bucket


def tls_only_policy(t: Template, bucket: s3.Bucket) -> s3.BucketPolicy:
    return t.add_resource(s3.BucketPolicy(
        "AssetsBucketPolicy", Bucket=Ref(bucket),
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"), Action=[s3_actions.Action("*")],
            Resource=[GetAtt(bucket, "Arn"), Sub("${Arn}/*", Arn=GetAtt(bucket, "Arn"))],
            Condition=Condition(Bool("aws:SecureTransport", False)),
        )]),
    ))


def assets_template(config: Config) -> Template:
    t = new_template(config, "assets", "the bucket that holds the consumer's deployment packages")
    bucket = assets_bucket(t)
    tls_only_policy(t, bucket)
    return tag_everything(t, config)
