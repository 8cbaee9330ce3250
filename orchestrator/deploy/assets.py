"""The consumer's package in the assets bucket: the CodeKey parameter `up` and `plan` pass to the
consumer stack (uploading first on `up`), and emptying the bucket of our objects for `down`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import Config
from orchestrator.package.consumer import ASSETS_PREFIX, build_consumer_package, package_key
from orchestrator.package.zipper import Package
from orchestrator.ui import UI


@dataclass
class ConsumerCode:
    """Your consumer's package, built once per command and uploaded at most once."""

    config: Config
    s3: Any = None                       # needed to upload (up), not to plan
    ui: UI | None = None
    _package: Package | None = field(default=None, repr=False)

    @property
    def package(self) -> Package:
        if self._package is None:
            self._package = build_consumer_package(self.config)
        return self._package

    @property
    def key(self) -> str:
        return package_key(self.config, self.package)

    def parameters(self, stack: str, outputs: dict[str, dict[str, str]], *, upload: bool) -> list[dict[str, str]]:
        """The consumer stack's CodeKey (your own code only); on `up` the package is in the bucket first."""
        from blueprints.consumer import CODE_KEY

        if stack != "consumer" or self.config.consumer.source is None:
            return []
        if upload:
            self.upload(outputs["assets"]["BucketName"])
        return [{"ParameterKey": CODE_KEY, "ParameterValue": self.key}]

    def changed_note(self, stack: str, deployed: dict[str, str]) -> list[str]:
        """A line for `plan` when the consumer's package differs from the deployed one."""
        from blueprints.consumer import CODE_KEY

        if stack != "consumer" or self.config.consumer.source is None or deployed.get(CODE_KEY) == self.key:
            return []
        before = deployed.get(CODE_KEY, "").rsplit("/", 1)[-1].removesuffix(".zip")[:16] or "the inline logger"
        return [f"your consumer's code changed: package {before} -> {self.package.short_hash} "
                f"(from {self.config.consumer.source}); `up` uploads and deploys it"]

    def upload(self, bucket: str) -> None:
        """Put the package at its key unless it is there already (the key carries the hash)."""
        from botocore.exceptions import ClientError

        package, key = self.package, self.key
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        self.s3.put_object(Bucket=bucket, Key=key, Body=package.data, ContentType="application/zip",
                           Metadata={"sha256": package.sha256}, ServerSideEncryption="AES256")
        if self.ui is not None:
            self.ui.emit("package_uploaded", bucket=bucket, key=key, sha256=package.sha256, bytes=len(package.data))
            self.ui.say("  uploaded your consumer's package ({size} bytes, sha256 {hash}) to s3://{bucket}/{key}",
                        size=len(package.data), hash=package.short_hash, bucket=bucket, key=key)


@dataclass(frozen=True)
class BucketContents:
    ours: list[dict[str, str]]      # object versions and delete markers under our prefix
    foreign: list[str]              # keys somebody else put there


def bucket_contents(s3: Any, bucket: str) -> BucketContents:
    ours: list[dict[str, str]] = []
    foreign: set[str] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if item["Key"].startswith(ASSETS_PREFIX):
                ours.append({"Key": item["Key"], "VersionId": item.get("VersionId") or "null"})
            else:
                foreign.add(item["Key"])
    return BucketContents(ours=ours, foreign=sorted(foreign))


def empty_our_objects(s3: Any, bucket: str, contents: BucketContents) -> int:
    """Delete every version of our objects (a versioned bucket keeps them otherwise); returns how many."""
    for start in range(0, len(contents.ours), 1000):  # DeleteObjects takes at most 1,000
        s3.delete_objects(Bucket=bucket, Delete={"Objects": contents.ours[start:start + 1000], "Quiet": True})
    return len(contents.ours)
