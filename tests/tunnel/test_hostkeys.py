"""Learning the bastion's host key from its EC2 console output.

Real AWS cannot run here, so the one AWS-only call (ec2:GetConsoleOutput) is answered by botocore's
Stubber; everything after the call (botocore's base64 decoding, our parsing, the bounded wait) is real.
"""

from __future__ import annotations

import base64

import boto3
import pytest
from botocore.stub import Stubber

from orchestrator.database.hostkeys import (
    TrustedHostKeys,
    host_fingerprints_from_console_output,
    public_key_from_line,
    wait_for_host_fingerprints,
)
from orchestrator.errors import OperationFailed

ED25519 = "SHA256:pMmrnZm+XOWWNa0Wd6D7sxo9FmOeVY56IXw6hH/GYvA"
ECDSA = "SHA256:4c4e7tUKj3qAk2ZgS1MZRHM5Sb0kB3Q/AxbmfEzWJ1o"
RSA = "SHA256:Xb3mo1tVrmL0eLv6h0rKFm2oJw8Zf0yqUjvW0VdbAMk"

# As Amazon Linux 2023's cloud-init prints it, between the kernel's and systemd's chatter.
CONSOLE_WITH_PREFIX = f"""[   12.041236] cloud-init[1573]: Cloud-init v. 22.2.2 running 'modules:final'
ec2:
ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 {ECDSA} root@ip-10-0-0-12.eu-west-1.compute.internal (ECDSA)
ec2: 256 {ED25519} root@ip-10-0-0-12.eu-west-1.compute.internal (ED25519)
ec2: 3072 {RSA}= no comment (RSA)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= root@ip-10-0-0-12
-----END SSH HOST KEY KEYS-----
"""

CONSOLE_WITHOUT_PREFIX = f"""-----BEGIN SSH HOST KEY FINGERPRINTS-----
256 {ED25519} root@bastion (ED25519)
-----END SSH HOST KEY FINGERPRINTS-----
"""


def test_fingerprints_are_read_from_ec2_prefixed_lines_of_every_key_type() -> None:
    assert host_fingerprints_from_console_output(CONSOLE_WITH_PREFIX) == [ECDSA, ED25519, RSA]


def test_fingerprints_are_read_without_a_prefix() -> None:
    assert host_fingerprints_from_console_output(CONSOLE_WITHOUT_PREFIX) == [ED25519]


def test_the_last_boot_wins_when_the_block_appears_twice() -> None:
    rebooted = CONSOLE_WITH_PREFIX + "\nreboot: Restarting system\n" + CONSOLE_WITHOUT_PREFIX
    assert host_fingerprints_from_console_output(rebooted) == [ED25519]


@pytest.mark.parametrize("text", [
    "",
    "[    0.000000] Linux version 6.1.0\n",
    "-----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 " + ED25519 + " root@x (ED25519)\n",  # still being written
])
def test_no_fingerprints_until_the_whole_block_is_there(text: str) -> None:
    assert host_fingerprints_from_console_output(text) == []


def test_an_offered_key_matching_no_fingerprint_is_refused() -> None:
    key = public_key_from_line("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIbtKd89tYTCPhYr0PyEPnU1oftLzCs2KTXAMfAcUeXh")
    trusted = TrustedHostKeys.from_fingerprints([ED25519, ECDSA], source="console output of i-0abc")
    with pytest.raises(OperationFailed) as refused:
        trusted.verify(key, "the bastion 192.0.2.10:22")
    assert key.fingerprint in str(refused.value) and ED25519 in str(refused.value)
    assert "console output of i-0abc" in str(refused.value)


def test_a_malformed_fingerprint_is_refused() -> None:
    with pytest.raises(OperationFailed, match="not an OpenSSH SHA256 fingerprint"):
        TrustedHostKeys.from_fingerprints(["MD5:aa:bb"], source="config")


class FakeClock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def console_response(instance_id: str, text: str | None) -> dict:
    response = {"InstanceId": instance_id, "Timestamp": "2026-11-02T10:00:00Z"}
    if text is not None:
        response["Output"] = base64.b64encode(text.encode()).decode()  # the API sends it base64-encoded
    return response


def test_waiting_polls_until_cloud_init_has_printed_the_fingerprints() -> None:
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    clock = FakeClock()
    expected = {"InstanceId": "i-0abc", "Latest": True}
    with Stubber(ec2) as stub:
        stub.add_response("get_console_output", console_response("i-0abc", None), expected)
        stub.add_response("get_console_output", console_response("i-0abc", "[    1.2] booting\n"), expected)
        stub.add_response("get_console_output", console_response("i-0abc", CONSOLE_WITH_PREFIX), expected)
        trusted = wait_for_host_fingerprints(ec2, "i-0abc", timeout=600, sleep=clock.sleep, clock=clock.monotonic)
        stub.assert_no_pending_responses()
    assert trusted.fingerprints == (ECDSA, ED25519, RSA)
    assert "i-0abc" in trusted.source
    assert clock.sleeps == [5.0, 7.5]


def test_waiting_gives_up_at_its_bound_with_advice() -> None:
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    clock = FakeClock()
    with Stubber(ec2) as stub:
        for _ in range(6):
            stub.add_response("get_console_output", console_response("i-0abc", "[    1.2] booting\n"))
        with pytest.raises(OperationFailed, match="within 60 s") as timed_out:
            wait_for_host_fingerprints(ec2, "i-0abc", timeout=60, sleep=clock.sleep, clock=clock.monotonic)
    assert clock.now == 60  # it waited exactly its bound, never past it
    assert "run the command again" in (timed_out.value.hint or "")
