"""Migrations: split like the mysql client, applied in order and once through the tunnel, edits refused,
failures resumed after the fix."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pymysql
import pytest

from orchestrator.config import Config
from orchestrator.database.migrations import (
    MigrationState,
    accept_edited,
    altered_table,
    apply_migrations,
    migration_status,
)
from orchestrator.database.sqltext import quote_identifier, split_statements
from orchestrator.errors import ConfigError, OperationFailed
from tests.factories import ROOT

SCHEMA = (ROOT / "sql" / "migrations" / "V1__routes.sql").read_text()
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


def add_migration(config: Config, name: str, text: str) -> None:
    (config.migrations_path / name).write_text(text)


def states(conn: pymysql.connections.Connection, config: Config) -> list[tuple[str, str]]:
    return [(s.migration.file_name, s.state.value) for s in migration_status(conn, config)]


def test_migrations_run_in_version_order_once_through_the_tunnel(admin_conn, make_config: MakeConfig) -> None:
    config = make_config(SCHEMA)
    add_migration(config, "V10__later.sql", "CREATE TABLE `tenth` (`id` INT PRIMARY KEY);")
    add_migration(config, "V2__second.sql", "CREATE TABLE `second` (`id` INT PRIMARY KEY);\n"
                                           "ALTER TABLE `second` ADD COLUMN `needs_tenth_absent` INT;")
    assert states(admin_conn, config) == [("V1__routes.sql", "pending"), ("V2__second.sql", "pending"),
                                          ("V10__later.sql", "pending")]
    first = apply_migrations(admin_conn, config)
    assert first.applied == ("V1__routes.sql", "V2__second.sql", "V10__later.sql") and first.statements_run == 4
    assert tables(admin_conn, config.database.name) == ["routes", "second", "tenth"]
    again = apply_migrations(admin_conn, config)
    assert again.applied == () and again.statements_run == 0
    assert {state for _, state in states(admin_conn, config)} == {"applied"}


def test_a_single_schema_file_is_migration_version_1(admin_conn, make_config: MakeConfig) -> None:
    config = make_config(SCHEMA)
    folder = config.migrations_path
    (folder.parent / "schema.sql").write_text(SCHEMA)
    config_file = folder.parent.parent / "config.toml"
    config_file.write_text(config_file.read_text().replace('migrations = "sql/migrations"', 'schema = "sql/schema.sql"'))
    from orchestrator.config import load_config

    legacy = load_config(config_file)
    assert [(s.migration.version_text, s.migration.file_name) for s in migration_status(admin_conn, legacy)] == \
        [("1", "schema.sql")]
    assert apply_migrations(admin_conn, legacy).applied == ("schema.sql",)
    assert tables(admin_conn, legacy.database.name) == ["routes"]


def test_an_edited_applied_migration_is_refused_with_both_checksums(admin_conn, make_config: MakeConfig) -> None:
    config = make_config("CREATE TABLE routes (id INT PRIMARY KEY);")
    apply_migrations(admin_conn, config)
    add_migration(config, "V1__routes.sql", "CREATE TABLE routes (id INT PRIMARY KEY, extra INT);")
    add_migration(config, "V2__next.sql", "CREATE TABLE `next` (id INT PRIMARY KEY);")
    (edited, pending) = migration_status(admin_conn, config)
    assert edited.state is MigrationState.EDITED and pending.state is MigrationState.PENDING
    assert edited.applied_checksum[:12] in edited.details and edited.migration.checksum[:12] in edited.details
    with pytest.raises(OperationFailed, match="V1__routes.sql was edited after it ran") as refused:
        apply_migrations(admin_conn, config)
    assert "new migration with a higher version" in refused.value.hint
    assert tables(admin_conn, config.database.name) == ["routes"], "nothing ran, not even the pending V2"
    assert accept_edited(admin_conn, config) == ["V1__routes.sql"]
    assert apply_migrations(admin_conn, config).applied == ("V2__next.sql",)


def test_a_failing_migration_resumes_after_the_fix_at_the_failed_statement(admin_conn, make_config: MakeConfig) -> None:
    config = make_config("CREATE TABLE one (id INT PRIMARY KEY);\n"
                         "CREATE TABLE two (id INT PRIMARY KEY, broken NOT_A_TYPE);\n"
                         "CREATE TABLE three (id INT PRIMARY KEY);")
    with pytest.raises(OperationFailed, match=r"V1__routes.sql: statement 2 of 3 \('CREATE TABLE two") as failed:
        apply_migrations(admin_conn, config)
    assert "resumes at statement 2" in failed.value.hint
    (status,) = migration_status(admin_conn, config)
    assert status.state is MigrationState.PARTIAL and status.resume_at == 1, "never reported done when it is not"
    add_migration(config, "V1__routes.sql", "CREATE TABLE one (id INT PRIMARY KEY);\n"
                                           "CREATE TABLE two (id INT PRIMARY KEY, fixed INT);\n"
                                           "CREATE TABLE three (id INT PRIMARY KEY);")
    result = apply_migrations(admin_conn, config)  # CREATE TABLE one would fail if it ran again
    assert result.statements_run == 2 and states(admin_conn, config) == [("V1__routes.sql", "applied")]
    assert tables(admin_conn, config.database.name) == ["one", "three", "two"]


def test_a_changed_statement_that_already_ran_is_refused_on_resume(admin_conn, make_config: MakeConfig) -> None:
    config = make_config("CREATE TABLE one (id INT PRIMARY KEY);\nCREATE TABLE two (broken NOT_A_TYPE);")
    with pytest.raises(OperationFailed):
        apply_migrations(admin_conn, config)
    add_migration(config, "V1__routes.sql", "CREATE TABLE one (id BIGINT PRIMARY KEY);\n"
                                           "CREATE TABLE two (id INT PRIMARY KEY);")
    (status,) = migration_status(admin_conn, config)
    assert status.state is MigrationState.EDITED and "statement 1, which already ran" in status.details
    with pytest.raises(OperationFailed, match="statement 1, which already ran"):
        apply_migrations(admin_conn, config)


def test_an_empty_migration_is_refused_and_an_empty_folder_runs_nothing(admin_conn, make_config: MakeConfig) -> None:
    config = make_config("-- nothing but a comment\n")
    with pytest.raises(OperationFailed, match="holds no SQL statement"):
        apply_migrations(admin_conn, config)
    (config.migrations_path / "V1__routes.sql").unlink()
    assert migration_status(admin_conn, config) == []
    assert apply_migrations(admin_conn, config).statements_run == 0


def test_the_single_file_bookkeeping_of_earlier_releases_is_adopted_as_version_1(
        admin_conn, make_config: MakeConfig) -> None:
    from orchestrator.database.scripts import run_sql_file

    config = make_config(SCHEMA)
    run_sql_file(admin_conn, "bookkeeping.sql")
    checksum = hashlib.sha256(SCHEMA.encode()).hexdigest()
    with admin_conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {quote_identifier(config.database.name)}")
        cursor.execute(f"CREATE TABLE {quote_identifier(config.database.name)}.routes (id INT PRIMARY KEY)")
        cursor.execute("INSERT INTO rds_streams.schema_applied VALUES (%s, 'schema.sql', %s, 1, 1, UTC_TIMESTAMP(6), "
                       "UTC_TIMESTAMP(6))", (config.database.name, checksum))
    admin_conn.commit()
    assert states(admin_conn, config) == [("V1__routes.sql", "applied")]
    assert apply_migrations(admin_conn, config).statements_run == 0, "CREATE TABLE routes is not run a second time"
    with admin_conn.cursor() as cursor:
        cursor.execute("DELETE FROM rds_streams.schema_applied WHERE database_name = %s", (config.database.name,))
    admin_conn.commit()
    assert states(admin_conn, config) == [("V1__routes.sql", "applied")], "adopted into our migrations table"


@pytest.mark.parametrize(("statement", "table"), [
    ("ALTER TABLE routes ADD COLUMN x INT", "routes"),
    ("-- why\nalter online ignore table if exists `we``ird` drop column x", "we`ird"),
    ("ALTER TABLE `flights`.`routes` DROP COLUMN x", "routes"),
    ("ALTER TABLE `other`.`routes` DROP COLUMN x", None),
    ("CREATE TABLE routes (id INT)", None),
])
def test_the_altered_table_is_read_from_the_statement(statement: str, table: str | None) -> None:
    assert altered_table(statement, "flights") == table


@pytest.mark.parametrize(("database", "complaint"), [
    ({"name": "rds_streams"}, "is reserved"),
    ({"name": "MySQL"}, "is reserved"),
    ({"name": "flights", "schema": "sql/x.sql", "migrations": "sql/migrations"}, "not both"),
])
def test_reserved_schemas_and_two_schema_sources_are_config_errors(tmp_path, database, complaint) -> None:
    from orchestrator.config import load_config
    from tests.factories import write_config

    with pytest.raises(ConfigError, match=complaint):
        load_config(write_config(tmp_path, {"database": database}))


@pytest.mark.parametrize(("name", "complaint"), [("v2_lowercase.sql", "is not named"), ("V1__dup.sql", "both have version 1")])
def test_a_malformed_migrations_folder_is_a_config_error(tmp_path, name: str, complaint: str) -> None:
    from orchestrator.config import load_config
    from tests.factories import write_config

    path = write_config(tmp_path)
    (tmp_path / "sql" / "migrations" / name).write_text("SELECT 1;")
    with pytest.raises(ConfigError, match=complaint):
        load_config(path)
