"""The schema file: split like the mysql client, applied once through the tunnel, changes reported."""

from __future__ import annotations

from collections.abc import Callable

import pymysql
import pytest

from orchestrator.config import Config
from orchestrator.database.schema import SchemaState, apply_schema, schema_status
from orchestrator.database.sqltext import quote_identifier, split_statements
from orchestrator.errors import OperationFailed
from tests.factories import ROOT

SCHEMA = (ROOT / "sql" / "schema.sql").read_text()
MakeConfig = Callable[..., Config]


def test_semicolons_in_strings_identifiers_and_comments_do_not_split() -> None:
    script = """
        -- a comment; with a semicolon
        # another; one
        /* block; comment */
        CREATE TABLE `a;b` (x VARCHAR(5) DEFAULT 'x;y', y VARCHAR(5) DEFAULT "it''s;" COMMENT 'O\\'Brien;');
        INSERT INTO t VALUES ('a''b;c');  -- trailing; comment
        /*!40101 SET NAMES utf8mb4 */;
        SELECT 1--2;
    """
    assert split_statements(script) == [
        "-- a comment; with a semicolon\n        # another; one\n        /* block; comment */\n        "
        "CREATE TABLE `a;b` (x VARCHAR(5) DEFAULT 'x;y', y VARCHAR(5) DEFAULT \"it''s;\" COMMENT 'O\\'Brien;')",
        "INSERT INTO t VALUES ('a''b;c')",
        "-- trailing; comment\n        /*!40101 SET NAMES utf8mb4 */",
        "SELECT 1--2",
    ]


def test_comment_only_pieces_and_a_missing_last_semicolon_are_handled() -> None:
    assert split_statements("-- nothing here;\n/* nor; here */;\nSELECT 1") == ["SELECT 1"]
    assert split_statements("") == []


@pytest.mark.parametrize(("script", "complaint"), [
    ("SELECT 'never closed;", "never closed"),
    ("SELECT 1 /* open", "never closed"),
    ("DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END //", "DELIMITER"),
])
def test_unsplittable_scripts_are_refused(script: str, complaint: str) -> None:
    with pytest.raises(OperationFailed, match=complaint):
        split_statements(script)


def test_identifiers_are_quoted_whatever_they_hold() -> None:
    assert quote_identifier("group") == "`group`"
    assert quote_identifier("we`ird name") == "`we``ird name`"


def tables(conn: pymysql.connections.Connection, database: str) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1",
                       (database,))
        return [row[0] for row in cursor.fetchall()]


def test_the_schema_is_applied_once_through_the_tunnel(admin_conn: pymysql.connections.Connection,
                                                       make_config: MakeConfig) -> None:
    config = make_config(SCHEMA)
    assert schema_status(admin_conn, config).state is SchemaState.PENDING

    first = apply_schema(admin_conn, config)
    assert first.status.state is SchemaState.APPLIED and first.statements_run == 1
    assert tables(admin_conn, config.database.name) == ["routes"]
    assert first.status.applied_checksum == first.status.checksum and first.status.applied_at is not None

    again = apply_schema(admin_conn, config)
    assert again.statements_run == 0 and again.status.state is SchemaState.APPLIED


def test_a_changed_file_is_reported_not_applied_unless_forced(admin_conn: pymysql.connections.Connection,
                                                              make_config: MakeConfig) -> None:
    apply_schema(admin_conn, make_config("CREATE TABLE routes (id INT PRIMARY KEY);"))
    changed = make_config("DROP TABLE routes;\nCREATE TABLE routes (id BIGINT PRIMARY KEY);\nCREATE TABLE extra (id INT);")

    status = schema_status(admin_conn, changed)
    assert status.state is SchemaState.CHANGED and "not re-applied" in status.details
    result = apply_schema(admin_conn, changed)
    assert result.statements_run == 0 and result.status.state is SchemaState.CHANGED
    assert tables(admin_conn, changed.database.name) == ["routes"]  # the DROP did not run

    forced = apply_schema(admin_conn, changed, force=True)
    assert forced.statements_run == 3 and forced.status.state is SchemaState.APPLIED
    assert tables(admin_conn, changed.database.name) == ["extra", "routes"]
    assert schema_status(admin_conn, changed).state is SchemaState.APPLIED


def test_an_interrupted_apply_resumes_at_the_first_statement_not_run(admin_conn: pymysql.connections.Connection,
                                                                      make_config: MakeConfig) -> None:
    config = make_config("CREATE TABLE one (id INT);\nCREATE TABLE two (id INT);\nCREATE TABLE three (id INT);")
    apply_schema(admin_conn, config)
    with admin_conn.cursor() as cursor:  # as if the connection had dropped after the first statement
        cursor.execute(f"DROP TABLE {quote_identifier(config.database.name)}.two, "
                       f"{quote_identifier(config.database.name)}.three")
        cursor.execute("UPDATE rds_streams.schema_applied SET statements_done = 1, applied_at = NULL "
                       "WHERE database_name = %s", (config.database.name,))

    status = schema_status(admin_conn, config)
    assert status.state is SchemaState.PENDING and "resumes at statement 2" in status.details
    result = apply_schema(admin_conn, config)  # CREATE TABLE one would fail if it ran again
    assert result.statements_run == 2 and result.status.state is SchemaState.APPLIED
    assert tables(admin_conn, config.database.name) == ["one", "three", "two"]


def test_a_failing_statement_is_named_and_the_rest_is_not_run(admin_conn: pymysql.connections.Connection,
                                                              make_config: MakeConfig) -> None:
    config = make_config("CREATE TABLE ok (id INT);\nCREATE TABLE broken (id NOSUCHTYPE);\nCREATE TABLE later (id INT);")
    with pytest.raises(OperationFailed, match=r"schema.sql: statement 2 of 3 \('CREATE TABLE broken") as failed:
        apply_schema(admin_conn, config)
    assert "1 statement(s) before it were applied" in (failed.value.hint or "")
    assert tables(admin_conn, config.database.name) == ["ok"]
    assert schema_status(admin_conn, config).resume_at == 1
