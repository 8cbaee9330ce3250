"""The sandbox's bastion: a private sshd on loopback."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.database.hostkeys import generate_ed25519_key
from orchestrator.sandbox.processes import free_port, pid_alive, port_open
from orchestrator.sandbox.sshd import SshServer


def test_the_fixture_sshd_listens_on_loopback_with_pubkey_only(sshd: SshServer) -> None:
    assert port_open(sshd.port)
    config = sshd.config_path.read_text()
    for line in ("ListenAddress 127.0.0.1", "PasswordAuthentication no", "StrictModes no", "UsePAM no",
                 f"HostKey {sshd.host_key_path}", f"PidFile {sshd.pid_file}", f"AllowUsers {sshd.login_user}"):
        assert line in config.splitlines()
    assert ("PermitRootLogin prohibit-password" in config) == (os.geteuid() == 0)
    assert sshd.host_public_key.startswith("ssh-ed25519 AAAA")
    assert sshd.host_key.fingerprint.startswith("SHA256:")


def test_a_restarted_sshd_offers_the_same_host_key_and_stops_for_good(tmp_path: Path) -> None:
    server = SshServer(tmp_path / "bastion", free_port(), [generate_ed25519_key()[1]])
    server.start()
    first_pid, first_key = server.running_pid(), server.host_public_key
    assert (server.host_key_path.stat().st_mode & 0o077) == 0  # sshd refuses a readable host key
    server.stop()
    assert first_pid is not None and not pid_alive(first_pid)
    assert not port_open(server.port)

    server.start()
    try:
        assert server.running_pid() not in (None, first_pid)
        assert server.host_public_key == first_key
    finally:
        server.stop()
    assert server.running_pid() is None
