"""The sandbox is private to its user and survives careless operators: an unprivileged local user gets
no AWS answer, no shell and no database root; one mutating command at a time; a killed `up` leaves
nothing `down` cannot stop; read-only commands start nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import find_binary, port_open
from tests.sandbox.conftest import local_config, root_connection

CLI = [sys.executable, "-m", "orchestrator.cli"]


TAG = "RDS_STREAMS_TEST_TAG"


def tagged_env(tag: str) -> dict[str, str]:
    """The environment for a command whose every descendant (daemons included) carries `tag`."""
    return {**os.environ, TAG: tag}


def run_cli(*args: str, timeout: float = 300, tag: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[2], env=tagged_env(tag))


def processes_tagged(tag: str) -> list[str]:
    """Live processes whose environment carries `tag`: whatever a tagged command started, however it
    names itself (read from /proc, not from the sandbox's own records)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if f"{TAG}={tag}".encode() in environ and stat[0] not in ("Z", "X"):
            found.append(f"{entry.name} {command}")
    return found


def processes_mentioning(text: str) -> list[str]:
    """Every process whose command line contains `text`, as `ps` shows them (not our own bookkeeping)."""
    listing = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if text in line and " Z" not in line[:12]]


# --- an unprivileged local user ----------------------------------------------------------------------

@pytest.fixture
def stranger():
    """A fresh unprivileged OS user, removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test creates an unprivileged user with useradd to attack a root-run sandbox")
    name = f"rdsprobe{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)


def as_user(user: str, command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, user=user, capture_output=True, text=True, errors="replace", timeout=60, input=stdin,
                          cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


UNSIGNED_SSM = """
import json, sys, urllib.request, urllib.error
url, target, body = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
    "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
try:
    answer = urllib.request.urlopen(request, timeout=10)
    print(answer.status, answer.read().decode(errors="replace"))
except urllib.error.HTTPError as err:
    print(err.code, err.read().decode(errors="replace"))
"""


def test_an_unprivileged_user_gets_no_aws_answer_no_shell_no_database_root_and_reads_nothing(deployed, stranger):
    import boto3
    from botocore.exceptions import ClientError

    sandbox = Sandbox(load_config(deployed))
    state = sandbox.state()
    root = sandbox.root
    assert (root.stat().st_mode & 0o777) == 0o700
    assert ((root / "credentials").stat().st_mode & 0o777) == 0o600

    # moto: unsigned, or signed with a key it does not know, nothing is answered; nor its control API.
    key_pair_id = next(o["OutputValue"] for o in state.aws().client("cloudformation").describe_stacks(
        StackName=load_config(deployed).stack_name("database"))["Stacks"][0]["Outputs"]
        if o["OutputKey"] == "KeyPairId")
    body = json.dumps({"Name": f"/ec2/keypair/{key_pair_id}", "WithDecryption": True})
    for target in ("AmazonSSM.GetParameter", "AmazonSSM.DescribeParameters"):
        answer = as_user(stranger, ["/usr/bin/python3", "-c", UNSIGNED_SSM, state.moto_url, target, body])
        status, _, text = answer.stdout.partition(" ")
        assert status.isdigit() and not status.startswith("2") and "PRIVATE KEY" not in text, answer
    made_up = boto3.session.Session(region_name=state.region, aws_access_key_id="AKIAMADEUP0000000000",
                                    aws_secret_access_key="made-up")
    for service, call in (("ssm", lambda c: c.get_parameter(Name=f"/ec2/keypair/{key_pair_id}", WithDecryption=True)),
                          ("secretsmanager", lambda c: c.list_secrets()), ("cloudformation", lambda c: c.list_stacks()),
                          ("logs", lambda c: c.describe_log_groups()), ("sts", lambda c: c.get_caller_identity())):
        with pytest.raises(ClientError):
            call(made_up.client(service, endpoint_url=state.moto_url))
    dump = as_user(stranger, ["/usr/bin/python3", "-c", "import sys, urllib.request, urllib.error\n"
                              "try: urllib.request.urlopen(sys.argv[1]); print(200)\n"
                              "except urllib.error.HTTPError as e: print(e.code)", f"{state.moto_url}/moto-api/data.json"])
    assert dump.stdout.strip() == "403"

    # The bastion key, were it leaked: no command, no shell; one forward, to MariaDB, and no other.
    key = state.aws().client("ssm").get_parameter(Name=f"/ec2/keypair/{key_pair_id}",
                                                  WithDecryption=True)["Parameter"]["Value"]
    key_file = deployed.parent / f"{stranger}.key"  # where the stranger can read it
    key_file.write_text(key if key.endswith("\n") else key + "\n")
    key_file.chmod(0o600)
    shutil.chown(key_file, user=stranger)
    ssh = [find_binary("ssh", "openssh-client"), "-i", str(key_file), "-p", str(state.sshd_port), "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
           f"{state.sshd_user}@127.0.0.1"]
    assert as_user(stranger, ["cat", str(key_file)]).returncode == 0
    command = as_user(stranger, [*ssh, "id"])
    shell = as_user(stranger, [*ssh, "-tt"], stdin="id\nexit\n")
    for attempt in (command, shell):
        assert "uid=" not in attempt.stdout, attempt
    forward = as_user(stranger, [*ssh, "-W", f"127.0.0.1:{state.mariadb_port}"], stdin="")
    assert "mysql_native_password" in forward.stdout or "MariaDB" in forward.stdout, "the key still forwards"
    elsewhere = as_user(stranger, [*ssh, "-W", f"127.0.0.1:{state.moto_port}"],
                        stdin="GET / HTTP/1.0\r\n\r\n")
    assert "HTTP/" not in elsewhere.stdout and "prohibited" in elsewhere.stderr, elsewhere

    # MariaDB: root over TCP is refused; its socket is inside the private folder.
    mariadb = [find_binary("mariadb", "mariadb-client"), "--skip-ssl", "-u", "root", "-e", "SELECT CURRENT_USER()"]
    over_tcp = as_user(stranger, [*mariadb, "-h", "127.0.0.1", "-P", str(state.mariadb_port)])
    assert over_tcp.returncode != 0 and ("Access denied" in over_tcp.stderr or "not allowed" in over_tcp.stderr)
    conn = root_connection(deployed)
    with conn.cursor() as cursor:
        cursor.execute("SELECT User, Host FROM mysql.global_priv WHERE Host NOT IN ('localhost', '') AND "  # '' are roles
                       "COALESCE(JSON_VALUE(Priv, '$.authentication_string'), '') = ''")
        assert cursor.fetchall() == (), "every account reachable over TCP has a password"
    conn.close()
    over_socket = as_user(stranger, [*mariadb, "-S", str(state.mariadb_socket)])
    assert over_socket.returncode != 0, over_socket

    # Nothing under .rds-streams/ can be listed or read.
    for attempt in (["ls", str(root)], ["cat", str(root / "credentials")], ["cat", str(root / "state.json")],
                    ["cat", str(root / "sshd" / "ssh_host_ed25519_key")]):
        result = as_user(stranger, attempt)
        assert result.returncode != 0 and "Permission denied" in result.stderr, result


# --- fresh folders ------------------------------------------------------------------------------------

def test_read_only_commands_on_a_fresh_folder_start_nothing_and_say_to_run_up(tmp_path):
    config_path = local_config(tmp_path)
    tag = uuid.uuid4().hex
    for command in (["logs"], ["verify"], ["status"], ["tunnel"]):
        result = run_cli(*command, "--config", str(config_path), timeout=60, tag=tag)
        assert result.returncode == 1, (command, result.stderr)
        assert "run `rds-streams up` first" in result.stderr, (command, result.stderr)
    assert not (tmp_path / ".rds-streams").exists()
    assert processes_tagged(tag) == [] and processes_mentioning(str(tmp_path)) == []


def test_two_ups_at_once_one_completes_and_the_other_names_it(tmp_path):
    config_path = local_config(tmp_path)
    args = [*CLI, "up", "--config", str(config_path), "--yes"]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        outcomes = {p.pid: (p.wait(timeout=300), p.stderr.read()) for p in (first, second)}
        codes = sorted(code for code, _ in outcomes.values())
        assert codes == [0, 1], outcomes
        (winner,) = [pid for pid, (code, _) in outcomes.items() if code == 0]
        (message,) = [err for code, err in outcomes.values() if code == 1]
        assert f"pid {winner}" in message and "rds-streams up" in message, message
    finally:
        assert run_cli("down", "--config", str(config_path), "--yes").returncode == 0


def test_after_up_was_killed_at_ten_random_moments_up_completes_and_down_leaves_nothing(tmp_path):
    config_path = local_config(tmp_path)
    root = tmp_path / ".rds-streams"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ports: set[int] = set()
    tag = uuid.uuid4().hex
    for attempt in range(10):
        up = subprocess.Popen([*CLI, "up", "--config", str(config_path), "--yes"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=tagged_env(tag))
        # The first kills land early (moto starting, MariaDB installing), later ones anywhere in a full up.
        time.sleep(rng.uniform(0.2, 1.0 + attempt * 0.5))
        up.kill()
        up.wait()
        try:
            state = json.loads((root / "state.json").read_text())
            ports |= {state["moto_port"], state["mariadb_port"], state["sshd_port"]}
        except (OSError, ValueError):
            pass
    again = run_cli("up", "--config", str(config_path), "--yes", tag=tag)
    assert again.returncode == 0, (seed, again.stderr[-2000:])
    down = run_cli("down", "--config", str(config_path), "--yes")
    assert down.returncode == 0, (seed, down.stderr)
    assert processes_tagged(tag) == [], f"seed {seed}"
    assert processes_mentioning(str(root)) == [], f"seed {seed}"
    assert not [p for p in ports if port_open(p)], f"seed {seed}"
    assert not root.exists()
