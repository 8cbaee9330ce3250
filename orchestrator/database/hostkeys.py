"""Which bastion host keys we trust, and how we learn them.

The host key is always verified. In the sandbox the target hands us the key itself; on AWS we
trust the SHA256 fingerprints cloud-init prints to the instance's console output at boot, read
through the EC2 API (which an attacker in the network path cannot forge).

cloud-init prints them once per instance, on its first boot, and the console output keeps only the
newest 64 KB: after a reboot the block may be gone for good. So the fingerprints read on the first
boot are kept in a tag on the instance itself (written through the EC2 API, like the console output
it came from) and trusted for that instance id from then on; a new instance (a replaced bastion) has
no tag, and its fingerprints are read again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.errors import OperationFailed

if TYPE_CHECKING:
    import paramiko

BEGIN_MARKER = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
END_MARKER = "-----END SSH HOST KEY FINGERPRINTS-----"
# A SHA-256 digest is 32 bytes: 43 base64 characters once OpenSSH strips the padding.
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_CONSOLE_LINE = re.compile(r"\b\d+\s+(?P<fp>SHA256:[A-Za-z0-9+/]{43})=?\s.*\((?P<type>[A-Z0-9-]+)\)\s*$")
# The instance tag keeping the fingerprints read on the instance's first boot (space-separated).
FINGERPRINT_TAG = "rds-streams:ssh-host-key-fingerprints"
# paramiko names RSA host keys by their signature algorithm during negotiation.
_NEGOTIATED_TYPES = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}


def fingerprint_of_blob(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob ("SHA256:" + unpadded base64)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_key_from_line(line: str) -> paramiko.PKey:
    """An OpenSSH public key line ("ssh-ed25519 AAAA... comment") as a paramiko key."""
    import paramiko

    parts = line.split()
    if len(parts) < 2:
        raise OperationFailed(f"not an OpenSSH public key line: {line[:40]!r}")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
    except (ValueError, paramiko.SSHException) as err:
        raise OperationFailed(f"not a usable {parts[0]} public key: {err}") from None


def load_private_key(text: str) -> paramiko.PKey:
    """A private key in OpenSSH or PEM form (ed25519, ECDSA or RSA), e.g. the key pair's from SSM."""
    import paramiko

    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise OperationFailed("the SSH private key could not be read as an unencrypted ed25519, ECDSA or RSA key",
                          hint="check the key pair's parameter in SSM (/ec2/keypair/<id>)")


def generate_ed25519_key() -> tuple[paramiko.PKey, str]:
    """A fresh client key and its OpenSSH public key line (for the sandbox's key pair and tests)."""
    import paramiko
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return paramiko.Ed25519Key.from_private_key(io.StringIO(private)), public.decode()


@dataclass(frozen=True)
class TrustedHostKeys:
    """The host keys a bastion may present, as fingerprints, and where we learnt them (for messages)."""

    fingerprints: tuple[str, ...]
    source: str
    # Host key algorithms to ask for, when known, so the server offers a key we can check.
    key_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.fingerprints:
            raise OperationFailed(f"no trusted SSH host key was given ({self.source}); refusing to connect unverified")
        for fp in self.fingerprints:
            if not FINGERPRINT.fullmatch(fp):
                raise OperationFailed(f"{fp!r} is not an OpenSSH SHA256 fingerprint (SHA256: and 43 base64 characters)")

    @classmethod
    def from_keys(cls, keys: Iterable[paramiko.PKey | str], *, source: str) -> TrustedHostKeys:
        """Trust exact keys: paramiko keys or OpenSSH public key lines."""
        parsed = [public_key_from_line(k) if isinstance(k, str) else k for k in keys]
        types: list[str] = []
        for key in parsed:
            types += [t for t in _NEGOTIATED_TYPES.get(key.get_name(), (key.get_name(),)) if t not in types]
        return cls(tuple(k.fingerprint for k in parsed), source, tuple(types))

    @classmethod
    def from_fingerprints(cls, fingerprints: Iterable[str], *, source: str) -> TrustedHostKeys:
        return cls(tuple(fp.strip().rstrip("=") for fp in fingerprints), source)

    def verify(self, key: paramiko.PKey, where: str) -> None:
        """Raise OperationFailed unless `key` is one we trust."""
        offered = key.fingerprint
        if offered in self.fingerprints:
            return
        raise OperationFailed(
            f"the SSH host key of {where} is not the trusted one: it offered {key.get_name()} {offered}, "
            f"expected {' or '.join(self.fingerprints)} ({self.source}). Nothing was sent to it.",
            hint="A replaced bastion (a new instance id) has its new key read at once. If this instance's host "
                 f"keys were regenerated on purpose, delete its tag {FINGERPRINT_TAG} so they are read again from "
                 "its console output; if not, someone may be intercepting the connection: do not connect, and "
                 "check the network path.",
        )

    def policy(self, where: str) -> paramiko.MissingHostKeyPolicy:
        """A paramiko policy that accepts only trusted keys (never AutoAdd, never the user's known_hosts)."""
        import paramiko

        trusted = self

        class _TrustedOnly(paramiko.MissingHostKeyPolicy):
            def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
                trusted.verify(key, where)

        return _TrustedOnly()


def host_fingerprints_from_console_output(text: str) -> list[str]:
    """The SHA256 host key fingerprints cloud-init printed, from the last boot's block in `text`.

    Lines look like `ec2: 256 SHA256:<base64> root@ip-10-0-0-5 (ED25519)`, with or without the
    `ec2: ` prefix (or a timestamp). An empty list means the block is not there (yet).
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if BEGIN_MARKER in line]
    if not starts:
        return []
    fingerprints: list[str] = []
    for line in lines[starts[-1] + 1:]:
        if END_MARKER in line:
            return fingerprints
        match = _CONSOLE_LINE.search(line)
        if match and match["fp"] not in fingerprints:
            fingerprints.append(match["fp"])
    # A block still being written is not yet trustworthy: it may miss the key the server offers.
    return []


def bastion_host_keys(ec2_client: Any, instance_id: str, *, say: Callable[[str], None] = lambda _: None,
                      timeout: float = 900.0, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> TrustedHostKeys:
    """The bastion's host keys: kept in its tag since its first boot, else read from its console output
    (waiting for cloud-init) and kept in the tag for every later session."""
    from botocore.exceptions import ClientError

    instance = ec2_client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    kept = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get(FINGERPRINT_TAG, "").split()
    if kept:
        return TrustedHostKeys.from_fingerprints(kept, source=f"read on the first boot of {instance_id}, "
                                                              f"kept in its tag {FINGERPRINT_TAG}")
    say("  waiting for the bastion to publish its SSH host key fingerprints (can take minutes after its first boot)")
    trusted = wait_for_host_fingerprints(ec2_client, instance_id, latest=supports_latest_console_output(
        ec2_client, instance.get("InstanceType", "")), timeout=timeout, sleep=sleep, clock=clock)
    try:
        ec2_client.create_tags(Resources=[instance_id],
                               Tags=[{"Key": FINGERPRINT_TAG, "Value": " ".join(trusted.fingerprints)}])
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        say(f"  the host key fingerprints could not be kept in the tag {FINGERPRINT_TAG} of {instance_id} ({code}); "
            "after a reboot of the bastion they may no longer be readable: allow ec2:CreateTags on it")
    return trusted


def supports_latest_console_output(ec2_client: Any, instance_type: str) -> bool:
    """GetConsoleOutput's Latest works only on Nitro instance types (a Xen type such as t2 refuses it)."""
    from botocore.exceptions import ClientError

    try:
        described = ec2_client.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except ClientError:
        return False  # without Latest the output comes later, but on every type
    return bool(described) and (described[0].get("Hypervisor") == "nitro" or bool(described[0].get("BareMetal")))


def wait_for_host_fingerprints(ec2_client: Any, instance_id: str, *, latest: bool = True, timeout: float = 900.0,
                               sleep: Callable[[float], None] = time.sleep,
                               clock: Callable[[], float] = time.monotonic) -> TrustedHostKeys:
    """Poll the bastion's console output until cloud-init's fingerprints appear (minutes after boot)."""
    deadline = clock() + timeout
    delay = 5.0
    latest_arg = {"Latest": True} if latest else {}
    while True:
        response = ec2_client.get_console_output(InstanceId=instance_id, **latest_arg)
        # botocore decodes the base64 Output; it is absent until the instance has written any.
        fingerprints = host_fingerprints_from_console_output(response.get("Output") or "")
        if fingerprints:
            return TrustedHostKeys.from_fingerprints(fingerprints, source=f"console output of {instance_id}")
        remaining = deadline - clock()
        if remaining <= 0:
            raise OperationFailed(
                f"the bastion {instance_id} has not printed its SSH host key fingerprints to its console output "
                f"within {timeout:.0f} s, so its host key cannot be verified",
                hint="The console output can take several minutes after boot; run the command again. If it "
                     "never appears, check the instance's system log in the EC2 console.",
            )
        sleep(min(delay, remaining))
        delay = min(delay * 1.5, 30.0)
