"""The sandbox is private to its user and survives careless operators: an unprivileged local user gets
no AWS answer, no shell and no database root; one mutating command at a time; a killed `up` leaves
nothing `down` cannot stop; read-only commands start nothing; stack updates moto used to mishandle
keep `status`, `verify` and `down` working; `verify --tables` leaves user tables as they were."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import find_binary, pid_alive, port_open
from tests.sandbox.conftest import ROUTE_INSERT, local_config, root_connection, wait_for

CLI = [sys.executable, "-m", "orchestrator.cli"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[2])


def processes_mentioning(text: str) -> list[str]:
    """Every process whose command line contains `text`, as `ps` shows them (not our own bookkeeping)."""
    listing = subprocess.run(["ps", "-eo", "pid=,stat=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if text in line and " Z" not in line[:12]]


def open_folder() -> Path:
    """A config folder other users may enter, so only .rds-streams/ itself can keep them out."""
    folder = Path(tempfile.mkdtemp(prefix="rds-streams-hardening-"))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def deployed():
    from orchestrator.cli import main

    folder = open_folder()
    config_path = local_config(folder)
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    shutil.rmtree(folder, ignore_errors=True)


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


# --- verify --tables on awkward tables --------------------------------------------------------------

AWKWARD_TABLES = [
    "CREATE TABLE `items` (`id` INT AUTO_INCREMENT PRIMARY KEY, `name` VARCHAR(20) NOT NULL)",
    "CREATE TABLE `parents` (`id` INT PRIMARY KEY)",
    "INSERT INTO `parents` VALUES (1)",
    "CREATE TABLE `children` (`id` INT PRIMARY KEY, `parent_id` INT NOT NULL, `qty` INT NOT NULL, "
    "FOREIGN KEY (`parent_id`) REFERENCES `parents` (`id`))",
    "CREATE TABLE `audited` (`code` VARCHAR(40) PRIMARY KEY, `amount` INT NOT NULL DEFAULT 0)",
    "CREATE TABLE `audit_log` (`id` INT AUTO_INCREMENT PRIMARY KEY, `code` VARCHAR(40), `what` VARCHAR(10))",
    "CREATE TRIGGER `audit_insert` AFTER INSERT ON `audited` FOR EACH ROW "
    "INSERT INTO `audit_log` (`code`, `what`) VALUES (NEW.`code`, 'insert')",
    "CREATE TRIGGER `audit_update` AFTER UPDATE ON `audited` FOR EACH ROW "
    "INSERT INTO `audit_log` (`code`, `what`) VALUES (NEW.`code`, 'update')",
]
STREAMED = [{"name": "routes"}, {"name": "items"}, {"name": "children", "sample": {"parent_id": 1}},
            {"name": "audited"}]


def snapshot(conn, tables):
    with conn.cursor() as cursor:
        result = {}
        for table in tables:
            cursor.execute(f"SELECT * FROM `flights`.`{table}` ORDER BY 1")
            result[table] = cursor.fetchall()
        return result


def test_verify_tables_passes_on_auto_increment_fk_child_and_user_trigger_tables_and_leaves_them_unchanged(
        deployed, cli):
    conn = root_connection(deployed)
    with conn.cursor() as cursor:
        cursor.execute("USE `flights`")
        for statement in AWKWARD_TABLES:
            cursor.execute(statement)
        cursor.execute("INSERT INTO `items` (`name`) VALUES ('kept')")
        cursor.execute("INSERT INTO `children` VALUES (5, 1, 3)")
        cursor.execute("INSERT INTO `audited` VALUES ('kept', 1)")
    local_config(deployed.parent, {"stream": {"tables": STREAMED}})
    try:
        assert cli("up", "--config", str(deployed), "--yes")[0] == 0
        tables = ["items", "parents", "children", "audited", "audit_log"]
        before = snapshot(conn, tables)
        stop, failures, written = threading.Event(), [], []

        def writer():  # a user's writes go on throughout and never fail because of verify
            own = root_connection(deployed)
            with own.cursor() as cursor:
                while not stop.is_set():
                    key = f"hw{len(written)}"
                    try:
                        cursor.execute(ROUTE_INSERT, ("WRT", key, "HW"))
                        written.append(key)
                    except Exception as err:
                        failures.append(err)
                    time.sleep(0.02)
            own.close()

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            code, out = cli("verify", "--config", str(deployed), "--tables", "--timeout", "20")
        finally:
            stop.set()
            thread.join()
        results = {o["name"]: o for o in out if o["type"] == "check"}
        assert code == 0, results
        for table in ("items", "children", "audited"):
            assert results[f"round trip on flights.{table}"]["ok"], results
            assert "MODIFY" in results[f"round trip on flights.{table}"]["detail"]
        assert snapshot(conn, tables) == before, "verify left the user's tables exactly as they were"
        assert written and not failures
    finally:
        local_config(deployed.parent)
        code, out = cli("up", "--config", str(deployed), "--yes")
        assert code == 0, out
        conn.close()


def test_with_outbox_delivery_verify_tables_refuses_a_table_with_its_own_triggers_and_cleans_up_the_rest(
        deployed, cli):
    conn = root_connection(deployed)
    with conn.cursor() as cursor:
        cursor.execute("USE `flights`")
        cursor.execute("CREATE TABLE `noted` (`code` VARCHAR(40) PRIMARY KEY, `n` INT NOT NULL DEFAULT 0)")
        cursor.execute("CREATE TABLE `notes` (`id` INT AUTO_INCREMENT PRIMARY KEY, `code` VARCHAR(40))")
        cursor.execute("CREATE TRIGGER `note_insert` AFTER INSERT ON `noted` FOR EACH ROW "
                       "INSERT INTO `notes` (`code`) VALUES (NEW.`code`)")
    local_config(deployed.parent, {"stream": {"delivery": "outbox", "tables": [{"name": "routes"}, {"name": "noted"}]}})
    try:
        assert cli("up", "--config", str(deployed), "--yes")[0] == 0
        before = snapshot(conn, ["routes", "noted", "notes"])
        code, out = cli("verify", "--config", str(deployed), "--tables", "--timeout", "20")
        results = {o["name"]: o for o in out if o["type"] == "check"}
        assert code == 1
        assert not results["round trip on flights.noted"]["ok"]
        assert "note_insert" in results["round trip on flights.noted"]["detail"]
        assert results["round trip on flights.routes"]["ok"], results
        assert snapshot(conn, ["routes", "noted", "notes"]) == before
    finally:
        local_config(deployed.parent)
        assert cli("up", "--config", str(deployed), "--yes")[0] == 0
        conn.close()


def test_verify_without_tables_writes_only_to_its_canary(deployed, cli):
    conn = root_connection(deployed)
    before = snapshot(conn, ["routes"])
    code, out = cli("verify", "--config", str(deployed), "--timeout", "20")
    assert code == 0
    names = {o["name"] for o in out if o["type"] == "check"}
    assert "round trip on flights.routes" not in names and "round trip on the canary" in names
    assert snapshot(conn, ["routes"]) == before
    conn.close()


# --- stack updates moto mishandled ------------------------------------------------------------------

def test_delivery_direct_outbox_direct_and_a_log_retention_change_keep_status_verify_and_down_working(
        deployed, cli):
    config = str(deployed)
    try:
        for delivery in ("outbox", "direct"):
            local_config(deployed.parent, {"stream": {"delivery": delivery}})
            code, out = cli("up", "--config", config, "--yes")
            assert code == 0, out
            code, out = cli("status", "--config", config)
            assert code == 0, out
            (status,) = [o for o in out if o["type"] == "status"]
            assert all(t["in_sync"] for t in status["triggers"].values()), status
            assert cli("verify", "--config", config, "--timeout", "20")[0] == 0
        (status,) = [o for o in out if o["type"] == "status"]
        assert isinstance(status["dead_letters"]["lambda_async_queue"], int), "the re-added queue exists again"

        local_config(deployed.parent, {"consumer": {"log_retention_days": 14}})
        assert cli("up", "--config", config, "--yes")[0] == 0
        code, out = cli("status", "--config", config)
        assert code == 0, out
        logs = Sandbox(load_config(deployed)).state().aws().client("logs")
        (group,) = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/rds-streams-consumer")["logGroups"]
        assert group["retentionInDays"] == 14
        assert cli("verify", "--config", config, "--timeout", "20")[0] == 0
        assert cli("up", "--config", config, "--yes")[0] == 0, "up keeps working after the change"
    finally:
        local_config(deployed.parent)
        assert cli("up", "--config", config, "--yes")[0] == 0


# --- status starts nothing ----------------------------------------------------------------------------

def test_status_reports_a_killed_sshd_as_dead_and_does_not_restart_it(deployed, cli):
    sandbox = Sandbox(load_config(deployed))
    pid = sandbox.processes()["sshd"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, "sshd to die")
    code, out = cli("status", "--config", str(deployed))
    (status,) = [o for o in out if o["type"] == "status"]
    assert code == 1
    assert status["sandbox"]["sshd"] is None and status["sandbox"]["mariadb"]
    assert "sshd" in status["triggers"]
    assert sandbox.processes()["sshd"] is None, "status started nothing"
    assert cli("up", "--config", str(deployed), "--yes")[0] == 0
    assert sandbox.processes()["sshd"]


def test_status_shows_each_tables_triggers_on_its_own_line_and_an_error_on_one_hides_no_other(deployed, cli):
    conn = root_connection(deployed)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE `flights`.`doomed` (`k` INT PRIMARY KEY)")
    local_config(deployed.parent, {"stream": {"tables": [{"name": "routes"}, {"name": "doomed"}]}})
    try:
        assert cli("up", "--config", str(deployed), "--yes")[0] == 0
        with conn.cursor() as cursor:
            cursor.execute("DROP TABLE `flights`.`doomed`")
        code, out = cli("status", "--config", str(deployed))
        (status,) = [o for o in out if o["type"] == "status"]
        assert code == 0, out
        assert "does not exist" in status["triggers"]["flights.doomed"]["error"]
        assert status["triggers"]["flights.routes"]["in_sync"]
        assert status["triggers"]["rds_streams.canary"]["in_sync"]
    finally:
        local_config(deployed.parent)
        conn.close()


def test_up_says_in_one_line_that_a_restarted_moto_lost_its_state_and_recreates_the_stacks(deployed, cli):
    sandbox = Sandbox(load_config(deployed))
    pid = sandbox.processes()["moto"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, "moto to die")
    code, out = cli("up", "--config", str(deployed), "--yes")
    assert code == 0, out
    (note,) = [o for o in out if o["type"] == "sandbox_note"]
    assert "lost its state" in note["message"]
    assert [o["stack"] for o in out if o["type"] == "stack_event" and o["status"] == "CREATE_COMPLETE"]
    assert cli("status", "--config", str(deployed))[0] == 0


# --- fresh folders ------------------------------------------------------------------------------------

def test_read_only_commands_on_a_fresh_folder_start_nothing_and_say_to_run_up(tmp_path):
    config_path = local_config(tmp_path)
    for command in (["logs"], ["verify"], ["status"], ["tunnel"]):
        result = run_cli(*command, "--config", str(config_path), timeout=60)
        assert result.returncode == 1, (command, result.stderr)
        assert "run `rds-streams up` first" in result.stderr, (command, result.stderr)
    assert not (tmp_path / ".rds-streams").exists()
    assert processes_mentioning(str(tmp_path)) == []


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


def test_down_stops_everything_after_up_was_killed_at_ten_random_moments(tmp_path):
    config_path = local_config(tmp_path)
    root = tmp_path / ".rds-streams"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    ports: set[int] = set()
    for _ in range(10):
        up = subprocess.Popen([*CLI, "up", "--config", str(config_path), "--yes"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 5.0))
        up.kill()
        up.wait()
        try:
            state = json.loads((root / "state.json").read_text())
            ports |= {state["moto_port"], state["mariadb_port"], state["sshd_port"]}
        except (OSError, ValueError):
            pass
    down = run_cli("down", "--config", str(config_path), "--yes")
    assert down.returncode == 0, (seed, down.stderr)
    assert processes_mentioning(str(root)) == [], f"seed {seed}"
    assert not [p for p in ports if port_open(p)], f"seed {seed}"
    assert not root.exists()
