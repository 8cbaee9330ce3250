"""verify fails (exit 1, naming the check and why) when the stream is broken in each way a user
could break it: triggers dropped, a consumer that raises, Lambda calls failing in the database."""

from __future__ import annotations

import json

import pytest

from orchestrator.config import load_config
from orchestrator.sandbox.aurora_emulation import clear_faults, inject_fault
from orchestrator.sandbox.manager import Sandbox
from tests.sandbox.conftest import ROUTE_INSERT, local_config, logged_records, wait_for


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """One sandbox for the module: up before, down after."""
    from orchestrator.cli import main

    config_path = local_config(tmp_path_factory.mktemp("verify"))
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0


def failed_checks(cli, config_path):
    code, out = cli("verify", "--config", str(config_path), "--timeout", "3", "--tables")
    return code, {o["name"]: o["detail"] for o in out if o["type"] == "check" and not o["ok"]}


def root_conn(config_path):
    return Sandbox(load_config(config_path)).state().root_connection()


def test_verify_fails_when_the_triggers_are_dropped(deployed, cli):
    conn = root_conn(deployed)
    with conn.cursor() as cursor:
        cursor.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'flights' "
                       "AND TRIGGER_NAME LIKE 'rds\\_streams\\_routes\\_update\\_%'")
        (update_trigger,) = cursor.fetchone()
        cursor.execute(f"DROP TRIGGER `flights`.`{update_trigger}`")
    conn.close()
    code, failed = failed_checks(cli, deployed)
    assert code == 1
    assert f"missing {update_trigger}" in failed["triggers match what would be generated"]
    assert "MODIFY" in failed["round trip on flights.routes"]
    assert cli("up", "--config", str(deployed), "--yes")[0] == 0, "up reinstalls them"
    assert failed_checks(cli, deployed) == (0, {})


def test_verify_fails_when_lambda_async_is_switched_to_fail(deployed, cli):
    conn = root_conn(deployed)
    inject_fault(conn, reason="Network Connection. Unable to connect to endpoint")
    try:
        code, failed = failed_checks(cli, deployed)
    finally:
        clear_faults(conn)
        conn.close()
    assert code == 1
    assert "Lambda API returned error" in failed["lambda_async probe"]
    assert "could not insert a marker row" in failed["round trip on the canary"]
    assert failed_checks(cli, deployed) == (0, {})


def test_verify_fails_when_the_consumer_raises_and_lambda_retries_it_twice(deployed, cli):
    config = load_config(deployed)
    state = Sandbox(config).state()
    cfn, logs = state.aws().client("cloudformation"), state.aws().client("logs")
    stack = config.stack_name("consumer")
    template = cfn.get_template(StackName=stack)["TemplateBody"]
    template = template if isinstance(template, dict) else json.loads(template)
    good = template["Resources"]["ConsumerFunction"]["Properties"]["Code"]["ZipFile"]
    template["Resources"]["ConsumerFunction"]["Properties"]["Code"]["ZipFile"] = (
        "def handler(event, context=None):\n    raise RuntimeError('consumer is broken')\n")
    cfn.update_stack(StackName=stack, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
    Sandbox(config).restart_runner(state)
    try:
        code, failed = failed_checks(cli, deployed)
        assert code == 1
        assert "not in /aws/lambda/rds-streams-consumer" in failed["lambda_async probe"]
        assert "missing" in failed["round trip on the canary"]
        events = logs.filter_log_events(logGroupName="/aws/lambda/rds-streams-consumer",
                                        filterPattern='"consumer is broken"')["events"]
        probe_errors = [e for e in events if e["message"].startswith("[ERROR] RuntimeError: consumer is broken")]
        assert len(probe_errors) % 3 == 0 and probe_errors, "each failed invocation is tried three times"
        code, out = cli("status", "--config", str(deployed))
        (status,) = [o for o in out if o["type"] == "status"]
        assert status["dead_letters"]["lambda_async_queue"] >= 1, "given-up events land in the dead-letter queue"
    finally:
        template["Resources"]["ConsumerFunction"]["Properties"]["Code"]["ZipFile"] = good
        cfn.update_stack(StackName=stack, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"])
        Sandbox(config).restart_runner(state)
    assert failed_checks(cli, deployed) == (0, {})


def test_direct_delivery_emits_a_phantom_record_for_a_rolled_back_write(deployed):
    conn = root_conn(deployed)
    conn.autocommit(False)
    with conn.cursor() as cursor:
        cursor.execute(ROUTE_INSERT, ("PHANTOM", "ROLLBACK-D", "XX"))
    conn.rollback()
    conn.close()
    (record,) = wait_for(lambda: logged_records(deployed, "ROLLBACK-D"), 15, "the phantom record")
    assert record["eventName"] == "INSERT", "Aurora calls Lambda before commit: documented, not prevented"


def test_direct_delivery_fails_the_writes_while_lambda_fails(deployed):
    import threading

    import pymysql

    conn = root_conn(deployed)
    inject_fault(conn, reason="Rate Exceeded.")
    failures: list[str] = []
    succeeded: list[str] = []

    def write(n: int) -> None:
        own = root_conn(deployed)
        for i in range(10):
            try:
                with own.cursor() as cursor:
                    cursor.execute(ROUTE_INSERT, (f"D{n}-{i}", "LOAD-D", "XX"))
                succeeded.append(f"D{n}-{i}")
            except pymysql.err.MySQLError as err:
                failures.append(err.args[1])
        own.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        clear_faults(conn)
        conn.close()
    assert len(failures) == 40 and succeeded == [], "every write failed with the Lambda call"
    assert all(f == "Lambda API returned error: Rate Exceeded." for f in failures)
