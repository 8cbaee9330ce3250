"""Per-test databases on the session's MariaDB, with the Aurora Lambda emulation installed.

Each test gets its own schema (dropped afterwards) and reads only the emulated Lambda calls made
after it started, so tests do not see each other's records.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest

from orchestrator.config import Dialect
from orchestrator.database.trigger_install import TablePlan, install_triggers
from orchestrator.database.triggers import StreamSettings
from orchestrator.sandbox.aurora_emulation import LAMBDA_ROLE, fetch_calls, install_emulation
from orchestrator.sandbox.mariadb import MariaDBServer
from tests.database.consumers import consume

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:rds-streams-consumer"


def connect(server: MariaDBServer, user: str = "root", database: str | None = None, **kwargs: Any) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=server.port, user=user, database=database, charset="utf8mb4",
                           autocommit=True, ssl_disabled=True, **kwargs)


@dataclass
class StreamDb:
    """One test's schema, a root connection to it, and the Lambda calls its triggers made."""

    server: MariaDBServer
    conn: pymysql.Connection
    schema: str
    seen_call_id: int = 0
    extra_connections: list[pymysql.Connection] = field(default_factory=list)

    def execute(self, sql: str, args: Any = None) -> int:
        with self.conn.cursor() as cursor:
            return cursor.execute(sql, args)

    def query(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def settings(self, view_type: str = "NEW_AND_OLD_IMAGES", **overrides: Any) -> StreamSettings:
        values: dict[str, Any] = dict(function_arn=FUNCTION_ARN, region="eu-west-1",
                                      event_source_arn="arn:aws:rds:eu-west-1:123456789012:cluster:test/{schema}/{table}",
                                      view_type=view_type, dialect=Dialect.V3)
        values.update(overrides)
        return StreamSettings(**values)

    def install(self, tables: Sequence[str], view_type: str = "NEW_AND_OLD_IMAGES", **overrides: Any) -> list[TablePlan]:
        return install_triggers(self.conn, self.schema, tables, self.settings(view_type, **overrides))

    def new_records(self) -> list[dict[str, Any]]:
        """Records from calls made since the last look, each payload holding exactly one record.

        Each one has passed powertools' parser and data class and boto3's TypeDeserializer (consumers.py).
        """
        records = []
        while True:
            calls = fetch_calls(self.conn, self.seen_call_id, 1000)
            if not calls:
                return records
            self.seen_call_id = calls[-1].id
            for call in calls:
                payload = json.loads(call.payload)
                assert list(payload) == ["Records"] and len(payload["Records"]) == 1, call.payload[:300]
                record = payload["Records"][0]
                if f"/{self.schema}/" in record["eventSourceARN"]:
                    consume(record)
                    records.append(record)

    def connect(self, user: str = "root", **kwargs: Any) -> pymysql.Connection:
        conn = connect(self.server, user, self.schema, **kwargs)
        self.extra_connections.append(conn)
        return conn


@pytest.fixture
def stream_db(mariadb_server: MariaDBServer) -> Iterator[StreamDb]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    conn = connect(mariadb_server)
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{schema}` CHARACTER SET latin1")
    conn.select_db(schema)
    install_emulation(conn, [schema])
    with conn.cursor() as cursor:
        cursor.execute(f"GRANT `{LAMBDA_ROLE}` TO CURRENT_USER")
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM rds_streams_sandbox.lambda_calls")
        seen = cursor.fetchone()[0]
    db = StreamDb(mariadb_server, conn, schema, seen)
    yield db
    for extra in db.extra_connections:
        extra.close()
    with conn.cursor() as cursor:
        cursor.execute("DELETE FROM rds_streams_sandbox.lambda_faults")
        cursor.execute("DROP TRIGGER IF EXISTS rds_streams_sandbox.lambda_calls_fault_switch")
        cursor.execute("DROP TRIGGER IF EXISTS rds_streams_sandbox.lambda_sync_calls_fault_switch")
        cursor.execute(f"DROP DATABASE `{schema}`")
    conn.close()
