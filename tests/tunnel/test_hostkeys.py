"""Learning the bastion's host key from its EC2 console output, and keeping it for that instance.

Real AWS cannot run here, so the EC2 calls (GetConsoleOutput, and DescribeInstances, DescribeInstanceTypes
and CreateTags around it) are answered by botocore's Stubber, which checks each request against EC2's
API model; everything after the calls (botocore's base64 decoding, our parsing, the bounded wait, the
SSH connection to a real sshd) is real.
"""

from __future__ import annotations

import base64
import dataclasses

import boto3
import pytest
from botocore.stub import Stubber

from orchestrator.database.hostkeys import (
    FINGERPRINT_TAG,
    TrustedHostKeys,
    bastion_host_keys,
    host_fingerprints_from_console_output,
    public_key_from_line,
    wait_for_host_fingerprints,
)
from orchestrator.database.tunnel import TunnelSpec, open_tunnel
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.sshd import SshServer

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


def ec2_client():
    return boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def instance_response(instance_id: str, instance_type: str = "t4g.nano", kept: list[str] | None = None) -> dict:
    tags = [{"Key": "rds-streams:project", "Value": "rds-streams"}]
    if kept:
        tags.append({"Key": FINGERPRINT_TAG, "Value": " ".join(kept)})
    return {"Reservations": [{"Instances": [{"InstanceId": instance_id, "InstanceType": instance_type, "Tags": tags}]}]}


def instance_type_response(instance_type: str, hypervisor: str) -> dict:
    return {"InstanceTypes": [{"InstanceType": instance_type, "Hypervisor": hypervisor, "BareMetal": False}]}


def first_boot(stub: Stubber, instance_id: str, console: str, fingerprints: list[str],
               instance_type: str = "t4g.nano", hypervisor: str = "nitro") -> None:
    """What EC2 answers on a bastion's first boot, and the tag we must write."""
    stub.add_response("describe_instances", instance_response(instance_id, instance_type),
                      {"InstanceIds": [instance_id]})
    stub.add_response("describe_instance_types", instance_type_response(instance_type, hypervisor),
                      {"InstanceTypes": [instance_type]})
    latest = {"Latest": True} if hypervisor == "nitro" else {}
    stub.add_response("get_console_output", console_response(instance_id, console),
                      {"InstanceId": instance_id, **latest})
    stub.add_response("create_tags", {}, {"Resources": [instance_id],
                                          "Tags": [{"Key": FINGERPRINT_TAG, "Value": " ".join(fingerprints)}]})


def console_for(fingerprint: str) -> str:
    return f"ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 {fingerprint} root@ip-10-0-0-5 (ED25519)\n" \
           "ec2: -----END SSH HOST KEY FINGERPRINTS-----\n"


AFTER_A_REBOOT = "[    0.000000] Linux version 6.1.0\n[    3.2] systemd[1]: Started sshd.service\n"  # no block


def connects(spec: TunnelSpec, trusted: TrustedHostKeys) -> bool:
    with open_tunnel(dataclasses.replace(spec, host_keys=trusted)) as opened:
        return opened.connect_seconds > 0


def test_fingerprints_read_on_the_first_boot_are_kept_in_a_tag_on_the_instance(
        sshd: SshServer, tunnel_spec: TunnelSpec) -> None:
    fingerprint = public_key_from_line(sshd.host_public_key).fingerprint
    ec2, clock = ec2_client(), FakeClock()
    with Stubber(ec2) as stub:
        first_boot(stub, "i-0abc", console_for(fingerprint), [fingerprint])
        trusted = bastion_host_keys(ec2, "i-0abc", sleep=clock.sleep, clock=clock.monotonic)
        stub.assert_no_pending_responses()  # the tag was written with exactly these fingerprints
    assert trusted.fingerprints == (fingerprint,) and "console output of i-0abc" in trusted.source
    assert connects(tunnel_spec, trusted)


def test_after_a_reboot_the_kept_fingerprints_still_connect_to_the_same_instance(
        sshd: SshServer, tunnel_spec: TunnelSpec) -> None:
    fingerprint = public_key_from_line(sshd.host_public_key).fingerprint
    ec2, clock, said = ec2_client(), FakeClock(), []
    with Stubber(ec2) as stub:
        stub.add_response("describe_instances", instance_response("i-0abc", kept=[fingerprint]),
                          {"InstanceIds": ["i-0abc"]})
        # Were the console read, it would hold no block any more (cloud-init prints it once per instance).
        stub.add_response("get_console_output", console_response("i-0abc", AFTER_A_REBOOT))
        trusted = bastion_host_keys(ec2, "i-0abc", say=said.append, timeout=900, sleep=clock.sleep,
                                    clock=clock.monotonic)
    assert clock.now == 0 and said == [], "connects at once: no wait for a block that will not come"
    assert trusted.fingerprints == (fingerprint,) and FINGERPRINT_TAG in trusted.source
    assert connects(tunnel_spec, trusted)


def test_a_new_instance_id_reads_its_fingerprints_again() -> None:
    ec2, clock = ec2_client(), FakeClock()
    with Stubber(ec2) as stub:
        first_boot(stub, "i-0old", CONSOLE_WITHOUT_PREFIX, [ED25519])
        first_boot(stub, "i-0new", console_for(ECDSA), [ECDSA])  # the replaced bastion: other keys, no tag yet
        old = bastion_host_keys(ec2, "i-0old", sleep=clock.sleep, clock=clock.monotonic)
        new = bastion_host_keys(ec2, "i-0new", sleep=clock.sleep, clock=clock.monotonic)
        stub.assert_no_pending_responses()
    assert old.fingerprints == (ED25519,) and new.fingerprints == (ECDSA,)


def test_latest_console_output_is_asked_only_on_nitro_instance_types() -> None:
    ec2, clock = ec2_client(), FakeClock()
    with Stubber(ec2) as stub:  # a Xen type: GetConsoleOutput must not carry Latest
        first_boot(stub, "i-0xen", CONSOLE_WITHOUT_PREFIX, [ED25519], instance_type="t2.micro", hypervisor="xen")
        trusted = bastion_host_keys(ec2, "i-0xen", sleep=clock.sleep, clock=clock.monotonic)
        stub.assert_no_pending_responses()
    assert trusted.fingerprints == (ED25519,)


def test_fingerprints_that_cannot_be_kept_are_still_used_and_the_user_is_told() -> None:
    ec2, clock, said = ec2_client(), FakeClock(), []
    with Stubber(ec2) as stub:
        stub.add_response("describe_instances", instance_response("i-0abc"))
        stub.add_response("describe_instance_types", instance_type_response("t4g.nano", "nitro"))
        stub.add_response("get_console_output", console_response("i-0abc", CONSOLE_WITHOUT_PREFIX))
        stub.add_client_error("create_tags", "UnauthorizedOperation", http_status_code=403)
        trusted = bastion_host_keys(ec2, "i-0abc", say=said.append, sleep=clock.sleep, clock=clock.monotonic)
    assert trusted.fingerprints == (ED25519,)
    assert "UnauthorizedOperation" in said[-1] and "ec2:CreateTags" in said[-1]
