"""Where the sandbox's services listen, kept in .rds-streams/state.json so every command (and the
runner process) finds the same ones."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


@dataclass
class SandboxState:
    root: Path
    region: str
    consumer_stack: str
    moto_port: int
    mariadb_port: int
    sshd_port: int

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def mariadb_dir(self) -> Path:
        return self.root / "mariadb"

    @property
    def sshd_dir(self) -> Path:
        return self.root / "sshd"

    @property
    def mariadb_socket(self) -> Path:
        return self.mariadb_dir / "mysqld.sock"

    @property
    def sshd_user(self) -> str:
        from orchestrator.sandbox.sshd import SshServer

        return SshServer(self.sshd_dir, self.sshd_port).login_user

    @property
    def sshd_host_key(self) -> str:
        from orchestrator.sandbox.sshd import SshServer

        return SshServer(self.sshd_dir, self.sshd_port).host_public_key

    @classmethod
    def load(cls, root: Path) -> SandboxState:
        raw = json.loads((root / STATE_FILE).read_text())
        return cls(root=root, **{k: v for k, v in raw.items() if k != "root"})

    @classmethod
    def exists(cls, root: Path) -> bool:
        return (root / STATE_FILE).is_file()

    def save(self) -> None:
        """Atomically: a kill mid-write leaves the previous state, never half a file."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k != "root"}
        partial = self.root / (STATE_FILE + ".partial")
        partial.write_text(json.dumps(data, indent=2) + "\n")
        partial.replace(self.root / STATE_FILE)

    def aws(self) -> Any:
        """Clients for the sandbox's moto, signed with the credentials it created (it refuses others)."""
        from orchestrator.aws import CLI_PROFILE, AwsClients
        from orchestrator.sandbox.moto_server import load_credentials, write_private

        credentials = load_credentials(self.root)
        cli_file = self.root / "aws-cli-credentials"
        if not cli_file.is_file():
            write_private(cli_file, f"[{CLI_PROFILE}]\naws_access_key_id = {credentials['aws_access_key_id']}\n"
                                    f"aws_secret_access_key = {credentials['aws_secret_access_key']}\n")
        return AwsClients(region=self.region, endpoint_url=self.moto_url, credentials=credentials,
                          credentials_file=str(cli_file))

    def root_connection(self) -> Any:
        """MariaDB's root over its socket: the sandbox's own access, standing in for AWS's side of Aurora."""
        import pymysql

        return pymysql.connect(unix_socket=str(self.mariadb_socket), user="root", autocommit=True,
                               charset="utf8mb4", connect_timeout=10)
