"""Attach to a cluster that exists outside our stacks, in the sandbox: a played team cluster with its
own data, users, trigger, view and procedure. plan lists every change; up streams a chosen table while
a writer runs throughout; verify passes; down leaves the cluster, its parameter group values, data
and users' objects exactly as before, and nothing of ours."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandbox.processes import free_port
from tests.factories import shipped_raw, toml_text
from tests.sandbox.conftest import logged_records, wait_for
from tests.sandbox.test_output_contract import assert_shape

CLUSTER = "team-db"
WRITER_NOTE = "writer-"


def attach_config(folder: Path, name: str = "config.toml", **database: Any) -> Path:
    raw = shipped_raw()
    raw["project"].update(target="local", name="att")
    raw["database"].pop("migrations")  # the cluster holds its schema: no migrations of ours
    raw["database"].update({"name": "shop", "cluster": CLUSTER, **database})
    raw["bastion"]["local_port"] = free_port()
    raw["stream"]["tables"] = [{"name": "orders"}]
    path = folder / name
    path.write_text(toml_text(raw))
    return path


@pytest.fixture(params=["create"])
def played(request: Any, tmp_path: Path) -> Any:
    """A sandbox playing the team's cluster, reached the [bastion] mode way; stopped (and the played
    cluster with it) afterwards."""
    from orchestrator.sandbox.existing_cluster import main

    mode, _, delivery = request.param.partition("+")
    config_path = attach_config(tmp_path)
    assert main(["create", "--config", str(config_path)]) == 0
    if mode != "create" or delivery:
        import tomllib

        from orchestrator.config import load_config
        from orchestrator.sandbox.existing_cluster import team_bastion
        from orchestrator.ui import UI

        raw = tomllib.loads(config_path.read_text())
        if delivery:
            raw["stream"]["delivery"] = delivery
        if mode != "create":
            raw["bastion"] = {"local_port": raw["bastion"]["local_port"], "mode": mode}
        if mode == "existing":
            raw["bastion"].update(team_bastion(load_config(config_path), UI()))
        config_path.write_text(toml_text(raw))
    yield config_path
    assert main(["remove", "--config", str(config_path)]) == 0


def _state(config_path: Path) -> Any:
    from orchestrator.config import load_config
    from orchestrator.sandbox.manager import Sandbox

    return Sandbox(load_config(config_path)).state()


def _rows(cursor: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    cursor.execute(sql, params or None)
    return list(cursor.fetchall())


def _mode(config_path: Path) -> str:
    from orchestrator.config import load_config

    return load_config(config_path).bastion.mode


def _delivery(config_path: Path) -> str:
    from orchestrator.config import load_config

    return load_config(config_path).stream.delivery


def _unhashed(line: str) -> str:
    """A password hash stays comparable (a changed password shows) but never lands in a test report."""
    import hashlib
    import re

    return re.sub(r"PASSWORD '([^']*)'", lambda m: "PASSWORD <" + hashlib.sha256(m[1].encode()).hexdigest()[:12] + ">",
                  line)


def cluster_snapshot(config_path: Path) -> dict[str, Any]:
    """What the team owns, as AWS and the database show it, with the writer's rows left out."""
    state = _state(config_path)
    aws = state.aws()
    rds, ec2 = aws.client("rds"), aws.client("ec2")
    cluster = rds.describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0]
    group = cluster["VpcSecurityGroups"][0]["VpcSecurityGroupId"]
    snap: dict[str, Any] = {
        "cluster": {k: cluster.get(k) for k in ("DBClusterParameterGroup", "AssociatedRoles", "Endpoint", "Port",
                                                  "EngineVersion", "VpcSecurityGroups", "MasterUserSecret")},
        "parameters": sorted((p["ParameterName"], p.get("ParameterValue")) for p in rds.describe_db_cluster_parameters(
            DBClusterParameterGroupName=cluster["DBClusterParameterGroup"])["Parameters"]),
        "parameter_groups": sorted(g["DBClusterParameterGroupName"]
                                   for g in rds.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]),
        "security_group": ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"],
        "secrets": sorted(s["Name"] for s in aws.client("secretsmanager").list_secrets()["SecretList"]),
    }
    root = state.root_connection()
    try:
        with root.cursor() as cursor:
            snap["schemas"] = _rows(cursor, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
            snap["tables"] = _rows(cursor, "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES "
                                           "WHERE TABLE_SCHEMA = 'shop' ORDER BY 1")
            snap["columns"] = _rows(cursor, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT "
                                            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop' ORDER BY 1, 2")
            snap["triggers"] = _rows(cursor, "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, "
                                             "EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER FROM information_schema.TRIGGERS "
                                             "ORDER BY 1, 2")
            snap["routines"] = _rows(cursor, "SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, "
                                             "DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN "
                                             "('sys', 'mysql') ORDER BY 1, 2")
            snap["views"] = _rows(cursor, "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
                                          "WHERE TABLE_SCHEMA = 'shop'")
            snap["events"] = _rows(cursor, "SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS")
            users = _rows(cursor, "SELECT User, Host FROM mysql.user ORDER BY 1, 2")
            snap["users"] = users
            snap["grants"] = {f"{u}@{h}": [_unhashed(row[0]) for row in _rows(cursor, "SHOW GRANTS FOR %s@%s", u, h)]
                              for u, h in users if u not in ("PUBLIC", "AWS_LAMBDA_ACCESS", "mariadb.sys")}
            snap["customers"] = _rows(cursor, "SELECT * FROM `shop`.`customers` ORDER BY 1")
            snap["orders"] = _rows(cursor, "SELECT * FROM `shop`.`orders` WHERE `note` IS NULL OR `note` NOT LIKE %s "
                                           "ORDER BY 1", WRITER_NOTE + "%")
            snap["order_audit"] = _rows(cursor, "SELECT `id`, `order_id` FROM `shop`.`order_audit` WHERE `order_id` "
                                                "NOT IN (SELECT `id` FROM `shop`.`orders` WHERE `note` LIKE %s) ORDER BY 1",
                                        WRITER_NOTE + "%")
    finally:
        root.close()
    return snap


class Writer:
    """The team's application: inserts orders as the master user straight into the cluster all along."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.failed: list[str] = []
        self.committed: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> Any:
        import pymysql

        from orchestrator.database.credentials import read_secret_credentials

        state = _state(self.config_path)
        aws = state.aws()
        arn = aws.client("rds").describe_db_clusters(DBClusterIdentifier=CLUSTER)["DBClusters"][0][
            "MasterUserSecret"]["SecretArn"]
        creds = read_secret_credentials(aws.client("secretsmanager"), arn)
        return pymysql.connect(host="127.0.0.1", port=state.mariadb_port, user=creds.username,
                               password=creds.password, database="shop", autocommit=True)

    def _run(self) -> None:
        conn = self._connect()
        number = 0
        while not self._stop.is_set():
            number += 1
            note = f"{WRITER_NOTE}{number}"
            try:
                with conn.cursor() as cursor:
                    cursor.execute("INSERT INTO `orders` (`customer_id`, `total`, `note`) VALUES (2, 1.25, %s)", (note,))
                self.committed.append((note, time.monotonic()))
            except Exception as err:  # counted: a user's write must never fail because of us
                self.failed.append(f"{note}: {err}")
            self._stop.wait(0.05)
        conn.close()

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.mark.parametrize("played", ["create", "existing", "none+outbox"], indirect=True)
def test_attach_streams_a_team_table_and_down_leaves_the_cluster_exactly_as_it_was(played, cli):
    before = cluster_snapshot(played)
    config = str(played)

    code, out = cli("plan", "--config", config)
    assert code == 0
    for obj in out:
        assert_shape(obj)
    stacks = {o["stack"]: o for o in out if o["type"] == "stack_plan"}
    assert {name: plan["action"] for name, plan in stacks.items()} == {"att-assets": "create", "att-consumer": "create",
                                                                      "att-attachment": "create"}
    added = {c["logical_id"] for c in stacks["att-attachment"]["changes"]}
    assert {"AuroraLambdaRole", "AppUserSecret", "LambdaEndpoint", "LambdaEndpointSecurityGroup"} <= added
    ours = {"Bastion", "BastionKeyPair", "BastionSecurityGroup", "ClusterIngressFromBastion"}
    assert (ours <= added) if _mode(played) == "create" else not (ours & added)
    changes = next(o for o in out if o["type"] == "cluster_changes")["changes"]
    outbox = [("set-parameter", "event_scheduler", "OFF")] if _delivery(played) == "outbox" else []
    assert [(c["kind"], c["name"], c["previous"]) for c in changes] == [
        ("associate-role", changes[0]["name"], None),
        ("set-parameter", "aws_default_lambda_role", None),
        ("set-parameter", "activate_all_roles_on_login", None),
    ] + outbox, "the team's event_scheduler = OFF is recorded, to be restored by down"
    assert any(o["type"] == "note" and "Lambda interface endpoint" in o["message"] for o in out)

    code, out = cli("up", "--config", config)  # no terminal, no --yes: the cluster's changes need a yes
    assert code == 2
    assert f"needs {len(changes)} change(s)" in next(o for o in out if o["type"] == "error")["message"]
    assert cluster_snapshot(played) == before, "a refused up touches nothing"

    def logged() -> set[str]:
        return {r["dynamodb"]["NewImage"]["note"]["S"] for r in logged_records(played, WRITER_NOTE)
                if r["eventName"] == "INSERT"}

    with Writer(played) as writer:
        time.sleep(0.3)
        code, out = cli("up", "--config", config, "--yes")
        assert code == 0, out
        streamed_from = time.monotonic()
        code, out = cli("plan", "--config", config)
        assert code == 0 and out[-1]["changes"] is False, "after up, plan finds nothing to change"
        assert next(o for o in out if o["type"] == "cluster_changes")["changes"] == []
        time.sleep(0.5)
        code, out = cli("verify", "--config", config)
        assert code == 0, [o for o in out if o["type"] in ("check", "error")]
        streamed_until = time.monotonic()
        expected = {note for note, at in writer.committed if streamed_from <= at <= streamed_until}
        assert len(expected) > 5
        # every write committed while the stream was up reached the consumer (before down removes its log)
        wait_for(lambda: expected <= logged(), 30, "the writer's changes in the consumer's log")
        code, out = cli("down", "--config", config, "--yes")
        assert code == 0, out
        for obj in out:
            assert_shape(obj)
        removed = next(o for o in out if o["type"] == "detached")["removed"]
        assert len([r for r in removed if r.startswith("dropped trigger shop.rds_streams_orders_")]) == 3, removed
        assert "dropped user rds_streams_app" in removed and "dropped trigger shop.orders_audit" not in removed
        time.sleep(0.3)

    assert writer.failed == [], "a user's write failed because of us"
    assert any(at > streamed_until for _, at in writer.committed), "the writer ran through down"
    after = cluster_snapshot(played)
    assert after == before, _difference(before, after)


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    return "; ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(set(before) | set(after))
                     if before.get(k) != after.get(k))


def test_attach_refuses_a_missing_cluster_a_postgresql_cluster_and_a_dialect_conflict(played, cli):
    """Each refused with exit 2 and a message naming the key, before any stack exists."""
    from orchestrator.config import load_config
    from orchestrator.sandbox.existing_cluster import _create_in_moto

    aws = _state(played).aws()
    _create_in_moto(aws, load_config(played), "team-pg", "aurora-postgresql", {})
    folder = played.parent
    cases = {
        attach_config(folder, "missing.toml", cluster="no-such-db"): "no cluster 'no-such-db'",
        attach_config(folder, "postgres.toml", cluster="team-pg"): "is aurora-postgresql 16.4, not Aurora MySQL 2 or 3",
        attach_config(folder, "dialect.toml", engine_version="5.7.mysql_aurora.2.12.5"):
            "runs 8.0.mysql_aurora.3.10.3 (v3) but [database] engine_version is 5.7.mysql_aurora.2.12.5 (v2)",
    }
    for path, expected in cases.items():
        for command in (["plan"], ["up", "--yes"]):
            code, out = cli(*command, "--config", str(path))
            error = next(o for o in out if o["type"] == "error")
            assert code == 2 and expected in error["message"] and "[database] cluster" in error["message"], (path, out)
    assert aws.client("cloudformation").describe_stacks()["Stacks"] == [], "a refused attach creates nothing"


@pytest.mark.parametrize("played", ["none"], indirect=True)
def test_down_after_an_up_that_failed_between_cluster_changes_restores_exactly(played, cli, monkeypatch):
    """A change recorded but never made (up stopped in between) is reversed as a no-op; the ones made are undone."""
    from orchestrator.attach import steps
    from orchestrator.errors import OperationFailed

    before = cluster_snapshot(played)
    real = steps.apply_change
    made: list[str] = []

    def fails_on_the_second_parameter(rds: Any, change: Any) -> None:
        if change.name == "activate_all_roles_on_login":
            raise OperationFailed("injected: the API call failed")
        real(rds, change)
        made.append(change.kind)

    monkeypatch.setattr(steps, "apply_change", fails_on_the_second_parameter)
    with Writer(played) as writer:
        code, out = cli("up", "--config", str(played), "--yes")
        assert code == 1 and "injected" in next(o for o in out if o["type"] == "error")["message"]
        assert made == ["associate-role", "set-parameter"]
        assert cluster_snapshot(played) != before, "the first changes were made"
        code, out = cli("down", "--config", str(played), "--yes")
        assert code == 0, out
    assert writer.failed == [] and writer.committed, "the team's writes went on, none failed"
    after = cluster_snapshot(played)
    assert after == before, _difference(before, after)
