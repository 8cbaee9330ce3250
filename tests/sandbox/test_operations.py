"""Operations that used to break the sandbox: stack updates moto mishandled (delivery switched and
back, a log retention change), `status` on a half-dead sandbox, a restarted moto, and `verify --tables`
on awkward tables, which leaves them as they were."""

from __future__ import annotations

import os
import signal
import threading
import time

from orchestrator.config import load_config
from orchestrator.sandbox.manager import Sandbox
from orchestrator.sandbox.processes import pid_alive
from tests.sandbox.conftest import ROUTE_INSERT, local_config, root_connection, snapshot, wait_for

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


