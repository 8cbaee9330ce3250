"""The app user's writes through the generated triggers, on the whole sandbox: they reach the consumer
when the triggers' definer has AWS_LAMBDA_ACCESS as a default role (what `up` grants), and fail with
Aurora's 1227 when the role is granted but not default, as on Aurora, where the master's own writes
(the definer itself) still pass and hid the fault. `verify` fails in that state; `up` repairs it and a
second `up` plans no grant change."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pymysql
import pytest

from orchestrator.config import load_config
from orchestrator.database.credentials import Credentials, read_secret_credentials
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.manager import Sandbox
from orchestrator.verify.roundtrip import canary_write
from tests.sandbox.conftest import ROUTE_INSERT, ROUTE_UPDATE, local_config, logged_records, wait_for

ACCESS_DENIED = (1227, "Access denied; you need (at least one of) the Invoke Lambda privilege(s) for this operation")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from orchestrator.cli import main

    config_path = local_config(tmp_path_factory.mktemp("lambda-role"))
    assert main(["up", "--config", str(config_path), "--yes", "--output", "json"]) == 0
    yield config_path
    assert main(["down", "--config", str(config_path), "--yes", "--output", "json"]) == 0


def credentials(config_path: Path, which: str) -> Credentials:
    config = load_config(config_path)
    aws = Sandbox(config).state().aws()
    outputs = {o["OutputKey"]: o["OutputValue"] for o in aws.client("cloudformation").describe_stacks(
        StackName=config.stack_name("database"))["Stacks"][0]["Outputs"]}
    arn = outputs["MasterSecretArn" if which == "master" else "AppSecretArn"]
    return read_secret_credentials(aws.client("secretsmanager"), arn)


def connect_as(config_path: Path, which: str) -> pymysql.Connection:
    """A fresh session (roles are activated at login) of the app or master user, on the sandbox's MariaDB."""
    creds = credentials(config_path, which)
    port = Sandbox(load_config(config_path)).state().mariadb_port
    return pymysql.connect(host="127.0.0.1", port=port, user=creds.username, password=creds.password,
                           database="flights", autocommit=True, ssl_disabled=True, charset="utf8mb4")


def route_events(config_path: Path, airport_to: str) -> list[str]:
    return [r["eventName"] for r in logged_records(config_path, airport_to)
            if r["dynamodb"]["Keys"].get("airportTo") == {"S": airport_to}]


def database_plan(cli: Any, config_path: Path) -> dict[str, Any]:
    code, out = cli("plan", "--config", str(config_path))
    (database,) = [o for o in out if o["type"] == "database_plan"]
    return database


def test_the_app_users_insert_update_delete_reach_the_consumer_through_the_triggers(deployed: Path) -> None:
    to = f"app-{uuid.uuid4().hex[:8]}"
    with connect_as(deployed, "app") as conn, conn.cursor() as cursor:
        cursor.execute(ROUTE_INSERT, ("DUB", to, "EI"))
        cursor.execute(ROUTE_UPDATE, ("BA", "DUB", to))
        cursor.execute("DELETE FROM `flights`.`routes` WHERE `airportFrom` = 'DUB' AND `airportTo` = %s", (to,))
    assert wait_for(lambda: route_events(deployed, to) == ["INSERT", "MODIFY", "REMOVE"], 30, "the app's records")


def test_a_lambda_role_granted_but_not_default_fails_the_app_users_writes_and_verify(deployed: Path, cli: Any) -> None:
    master = credentials(deployed, "master")
    root = Sandbox(load_config(deployed)).state().root_connection()
    try:
        with root.cursor() as cursor:  # what `GRANT AWS_LAMBDA_ACCESS` alone leaves on Aurora
            cursor.execute("SET DEFAULT ROLE NONE FOR %s@'%%'", (master.username,))
        to = f"nd-{uuid.uuid4().hex[:8]}"
        # The master writes as the definer itself: its granted role is active, so its writes pass.
        with connect_as(deployed, "master") as conn, conn.cursor() as cursor:
            cursor.execute(ROUTE_INSERT, ("DUB", to, "EI"))
        with connect_as(deployed, "app") as conn, conn.cursor() as cursor:
            for statement, args in ((ROUTE_INSERT, ("ORK", to, "EI")), (ROUTE_UPDATE, ("BA", "DUB", to)),
                                    ("DELETE FROM `flights`.`routes` WHERE `airportTo` = %s", (to,))):
                with pytest.raises(pymysql.err.OperationalError) as refused:
                    cursor.execute(statement, args)
                assert refused.value.args == ACCESS_DENIED
            cursor.execute("SELECT `airportFrom`, `carrierCode` FROM `flights`.`routes` WHERE `airportTo` = %s", (to,))
            assert cursor.fetchall() == (("DUB", "EI"),), "the failed writes changed nothing"

        with connect_as(deployed, "app") as conn, pytest.raises(OperationFailed, match="Invoke Lambda") as smoke:
            conn.autocommit(False)
            canary_write(conn, f"rds-streams-smoke-{uuid.uuid4().hex[:16]}")  # what up's smoke test writes
        assert "no active Lambda role" in (smoke.value.hint or "")

        code, out = cli("verify", "--config", str(deployed), "--tables", "--timeout", "3")
        failed = {o["name"]: o["detail"] for o in out if o["type"] == "check" and not o["ok"]}
        assert code == 1
        assert "Invoke Lambda privilege" in failed["round trip on the canary"]
        assert "Invoke Lambda privilege" in failed["round trip on flights.routes"]
        assert any("make AWS_LAMBDA_ACCESS a default role" in line for line in database_plan(cli, deployed)["grants"])
    finally:
        root.close()

    code, out = cli("up", "--config", str(deployed), "--yes")
    assert code == 0
    assert database_plan(cli, deployed)["grants"] == [], "a second up plans no grant change"
    with connect_as(deployed, "app") as conn, conn.cursor() as cursor:
        cursor.execute("DELETE FROM `flights`.`routes` WHERE `airportTo` = %s", (to,))
    assert wait_for(lambda: route_events(deployed, to)[-1:] == ["REMOVE"], 30, "the app's delete record")
    assert cli("verify", "--config", str(deployed))[0] == 0
