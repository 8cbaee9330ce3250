"""A private sshd on loopback standing in for the bastion (see FACTS.md, sshd and paramiko).

It trusts the given public keys for the current OS user, keeps its own ed25519 host key under
`base_dir` (so a restart offers the same key, as a rebooted bastion does), and allows local TCP
forwarding and nothing else: no command, no shell, no PTY, no socket forwarding, no listening. It
runs as root (CI) and as an ordinary user, so a key that could run commands would hand that user
out; `restricted_key_line` limits a key further to one forward.
"""

from __future__ import annotations

import base64
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import OperationFailed
from orchestrator.sandbox.processes import find_binary, port_open, read_pid, stop_pid, wait_until

if TYPE_CHECKING:
    import paramiko

# Compiled into OpenSSH: as root, sshd refuses to start without it (privilege separation chroot).
PRIVSEP_DIR = Path("/run/sshd")


@dataclass
class SshServer:
    """One sshd under `base_dir`, listening on 127.0.0.1:`port`, trusting `authorized_keys`
    (OpenSSH public key lines) for `login_user`."""

    base_dir: Path
    port: int
    authorized_keys: Sequence[str] = field(default_factory=list)
    on_spawn: Callable[[str, int], None] | None = field(default=None, repr=False)

    @property
    def login_user(self) -> str:
        # Unprivileged sshd can only log in the user it runs as, so the sandbox always uses that one.
        return pwd.getpwuid(os.geteuid()).pw_name

    @property
    def host_key_path(self) -> Path:
        return self.base_dir / "ssh_host_ed25519_key"

    @property
    def config_path(self) -> Path:
        return self.base_dir / "sshd_config"

    @property
    def authorized_keys_path(self) -> Path:
        return self.base_dir / "authorized_keys"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / "sshd.pid"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "sshd.log"

    @property
    def host_public_key(self) -> str:
        """The host key as an OpenSSH public key line ("ssh-ed25519 AAAA..."): what clients must trust."""
        self._ensure_host_key()
        return " ".join(self.host_key_path.with_suffix(".pub").read_text().split()[:2])

    @property
    def host_key(self) -> paramiko.PKey:
        import paramiko

        key_type, blob = self.host_public_key.split()
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))

    def running_pid(self) -> int | None:
        return read_pid(self.pid_file)

    def start(self, *, timeout: float = 10.0) -> None:
        if self.running_pid() and port_open(self.port):
            return
        sshd = find_binary("sshd", "openssh-server")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._ensure_host_key()
        self.authorized_keys_path.write_text("".join(line.strip() + "\n" for line in self.authorized_keys))
        self.config_path.write_text(self._config_text())
        if os.geteuid() == 0:
            self._ensure_privsep()
        self.pid_file.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen([sshd, "-D", "-f", str(self.config_path), "-E", str(self.log_file)],
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        if self.on_spawn is not None:
            self.on_spawn("sshd", process.pid)
        # sshd writes its pid file only after it listens, so the file is the readiness signal.
        wait_until(lambda: self.running_pid() == process.pid and port_open(self.port), timeout=timeout,
                   what=f"sshd on port {self.port}", alive=lambda: process.poll() is None, log=self.log_file)

    def stop(self) -> None:
        pid = self.running_pid()
        if pid:
            self.drop_sessions()
            stop_pid(pid, timeout=10.0)
        self.pid_file.unlink(missing_ok=True)

    def drop_sessions(self) -> int:
        """Kill the per-connection sshd processes, as a bastion reboot or a network drop would.

        Stopping only the listening sshd leaves established sessions running, so tests of
        reconnection need this. Returns how many sessions were dropped.
        """
        pid = self.running_pid()
        if not pid:
            return 0
        sessions = _children(pid)
        for child in sessions:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(sessions)

    def _ensure_host_key(self) -> None:
        if self.host_key_path.exists():
            return
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # sshd refuses a host key that others can read.
        fd = os.open(self.host_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private)
        self.host_key_path.with_suffix(".pub").write_bytes(public + b" rds-streams-sandbox-bastion\n")

    def _config_text(self) -> str:
        root_login = ["PermitRootLogin prohibit-password"] if os.geteuid() == 0 else []
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys_path}",
            # Keys live under /tmp or .rds-streams/, whose modes sshd would otherwise reject.
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            *root_login,
            f"AllowUsers {self.login_user}",
            "AllowTcpForwarding local",
            "AllowStreamLocalForwarding no",
            "PermitListen none",
            "PermitUserRC no",
            "ForceCommand /bin/false",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "GatewayPorts no",
            "PermitTTY no",
            "ClientAliveInterval 15",
            # Tests and `up` open many forwards at once; the default 10:30:100 drops some pre-auth.
            "MaxStartups 100:30:200",
            "LogLevel VERBOSE",
        ]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _ensure_privsep() -> None:
        try:
            pwd.getpwnam("sshd")
        except KeyError:
            raise OperationFailed("the privilege separation user 'sshd' does not exist, so sshd cannot run as root",
                                  hint="install it with: apt-get install -y openssh-server") from None
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)


def restricted_key_line(public_key_line: str, forward_to: str) -> str:
    """An authorized_keys line that lets the key open one forward (to `host:port`) and nothing else."""
    return f'restrict,port-forwarding,permitopen="{forward_to}",command="/bin/false" {public_key_line.strip()}'


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ValueError):
            continue
    return children
