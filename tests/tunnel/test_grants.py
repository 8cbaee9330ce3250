"""The application user and the Lambda privilege, through the tunnel, against the real MariaDB.

Aurora's own grants (v3 role, v2 INVOKE LAMBDA) are syntax errors on MariaDB, so for them we check
the statements each dialect's strategy would send, and run the emulated one for real.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator

import pymysql
import pytest

from orchestrator.config import Config
from orchestrator.database.connect import can_log_in, connect
from orchestrator.database.credentials import Credentials
from orchestrator.database.grants import (
    _LAMBDA_ACCESS,
    Account,
    GrantDialect,
    GrantPlan,
    ensure_grants,
    grant_dialect,
    grants_status,
)
from orchestrator.database.migrations import apply_migrations
from orchestrator.database.show_grants import parse_show_grants
from orchestrator.database.sqltext import quote_identifier
from orchestrator.database.tunnel import Tunnel, run_with_reconnect
from orchestrator.errors import OperationFailed
from orchestrator.sandbox.mariadb import MariaDBServer
from tests.factories import ROOT
from tests.tunnel.conftest import NO_TLS, root_connection, unique

SCHEMA = (ROOT / "sql" / "migrations" / "V1__routes.sql").read_text()
MakeConfig = Callable[..., Config]


@pytest.fixture
def app(mariadb_server: MariaDBServer) -> Iterator[Credentials]:
    credentials = Credentials(unique("rs_app"), "app-" + uuid.uuid4().hex + "'%s\\;")  # quotes and % must survive
    yield credentials
    with root_connection(mariadb_server) as root, root.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", (credentials.username,))


def login_check(tunnel: Tunnel) -> Callable[[Credentials], bool]:
    return functools.partial(can_log_in, tunnel.local_host, tunnel.local_port, tls=NO_TLS)


def test_the_dialect_follows_target_and_engine(make_config: MakeConfig) -> None:
    assert grant_dialect(make_config(SCHEMA)) is GrantDialect.EMULATED
    assert grant_dialect(make_config(SCHEMA, target="aws")) is GrantDialect.AURORA_V3
    assert grant_dialect(make_config(SCHEMA, target="aws", engine_version="5.7.mysql_aurora.2.12.5")) \
        is GrantDialect.AURORA_V2


def test_schema_grants_and_an_app_query_all_go_through_the_tunnel(
        tunnel: Tunnel, admin: Credentials, app: Credentials, make_config: MakeConfig) -> None:
    config = make_config(SCHEMA)
    plan = GrantPlan.for_config(config, app)

    def install() -> None:
        with connect(tunnel.local_host, tunnel.local_port, admin, tls=NO_TLS) as conn:
            apply_migrations(conn, config)
            ensure_grants(conn, plan, login_check=login_check(tunnel))

    run_with_reconnect(tunnel, install, what="schema and grants")
    with connect(tunnel.local_host, tunnel.local_port, app, database=config.database.name, tls=NO_TLS) as conn, \
            conn.cursor() as cursor:
        cursor.execute("INSERT INTO routes (airportFrom, airportTo, operator, `group`, carrierCode) "
                       "VALUES ('DUB', 'LHR', 'EI', 'IAG', 'EI')")
        cursor.execute("UPDATE routes SET carrierCode = 'BA' WHERE airportFrom = 'DUB'")
        cursor.execute("SELECT carrierCode FROM routes")
        assert cursor.fetchall() == (("BA",),)
        cursor.execute("DELETE FROM routes")
        with pytest.raises(pymysql.err.OperationalError):  # DML only: no DDL for the application
            cursor.execute("DROP TABLE routes")


def test_grants_are_idempotent(admin_conn: pymysql.connections.Connection, tunnel: Tunnel, app: Credentials,
                               make_config: MakeConfig) -> None:
    plan = GrantPlan.for_config(make_config(SCHEMA), app)
    check = login_check(tunnel)
    before = grants_status(admin_conn, plan, login_check=check)
    assert not before.done
    assert any(f"create user '{app.username}'@'%'" in line for line in before.missing)
    assert any("SELECT, INSERT, UPDATE, DELETE" in line for line in before.missing)

    first = ensure_grants(admin_conn, plan, login_check=check)
    assert first.actions == before.actions
    assert grants_status(admin_conn, plan, login_check=check).done
    assert ensure_grants(admin_conn, plan, login_check=check).actions == ()  # the second run changes nothing


def test_the_app_user_may_write_the_canary_table_and_nothing_else_of_its_schema(
        admin_conn: pymysql.connections.Connection, tunnel: Tunnel, app: Credentials, make_config: MakeConfig,
        mariadb_server: MariaDBServer) -> None:
    bookkeeping = unique("rs_book")
    with admin_conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {quote_identifier(bookkeeping)}")
        for table in ("canary", "outbox"):
            cursor.execute(f"CREATE TABLE {quote_identifier(bookkeeping)}.{table} (id INT PRIMARY KEY)")
    try:
        plan = GrantPlan.for_config(make_config(SCHEMA), app, tables=((bookkeeping, "canary"),))
        done = ensure_grants(admin_conn, plan, login_check=login_check(tunnel))
        assert f"grant SELECT, INSERT, UPDATE, DELETE on {bookkeeping}.canary to '{app.username}'@'%'" in done.missing
        assert grants_status(admin_conn, plan, login_check=login_check(tunnel)).done
        with connect(tunnel.local_host, tunnel.local_port, app, database=bookkeeping, tls=NO_TLS) as conn, \
                conn.cursor() as cursor:
            cursor.execute("INSERT INTO canary VALUES (1)")
            cursor.execute("DELETE FROM canary")
            with pytest.raises(pymysql.err.OperationalError, match="denied"):
                cursor.execute("INSERT INTO outbox VALUES (1)")
    finally:
        with root_connection(mariadb_server) as root, root.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {quote_identifier(bookkeeping)}")


def test_the_triggers_definer_gets_the_emulated_lambda_role_as_its_default(
        admin_conn: pymysql.connections.Connection, tunnel: Tunnel, admin: Credentials, app: Credentials,
        mariadb_server: MariaDBServer, make_config: MakeConfig) -> None:
    ensure_grants(admin_conn, GrantPlan.for_config(make_config(SCHEMA), app), login_check=login_check(tunnel))
    # A fresh session of the definer has the role active without SET ROLE, as triggers need.
    with connect(tunnel.local_host, tunnel.local_port, admin, tls=NO_TLS) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT CURRENT_ROLE()")
        assert cursor.fetchone()[0] == "AWS_LAMBDA_ACCESS"


def test_a_definer_other_than_the_connected_user_is_granted_the_role(
        admin_conn: pymysql.connections.Connection, tunnel: Tunnel, app: Credentials, make_config: MakeConfig,
        mariadb_server: MariaDBServer) -> None:
    definer = Account(unique("rs_definer"), "%")
    with admin_conn.cursor() as cursor:
        cursor.execute("CREATE USER %s@%s IDENTIFIED BY 'x'", (definer.user, definer.host))
    try:
        plan = GrantPlan.for_config(make_config(SCHEMA), app, definer=definer)
        done = ensure_grants(admin_conn, plan, login_check=login_check(tunnel))
        assert f"grant AWS_LAMBDA_ACCESS to the triggers' definer {definer}" in done.missing
        assert grants_status(admin_conn, plan, login_check=login_check(tunnel)).done
    finally:
        with root_connection(mariadb_server) as root, root.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@%s", (definer.user, definer.host))


def test_a_rotated_secret_updates_the_password(admin_conn: pymysql.connections.Connection, tunnel: Tunnel,
                                               app: Credentials, make_config: MakeConfig) -> None:
    config = make_config(SCHEMA)
    check = login_check(tunnel)
    ensure_grants(admin_conn, GrantPlan.for_config(config, app), login_check=check)
    rotated = Credentials(app.username, "rotated-" + uuid.uuid4().hex)

    status = grants_status(admin_conn, GrantPlan.for_config(config, rotated), login_check=check)
    assert status.missing == (f"set the password of '{app.username}'@'%' from its secret "
                              "(its secret's password is not accepted)",)
    ensure_grants(admin_conn, GrantPlan.for_config(config, rotated), login_check=check)
    assert check(rotated) and not check(app)


def test_passwords_never_appear_in_plans_results_or_logs(admin_conn: pymysql.connections.Connection, tunnel: Tunnel,
                                                         app: Credentials, make_config: MakeConfig,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    plan = GrantPlan.for_config(make_config(SCHEMA), app)
    done = ensure_grants(admin_conn, plan, login_check=login_check(tunnel))
    shown = repr(plan) + repr(done) + str(done.missing) + caplog.text
    assert app.password not in shown
    assert app.username in shown


def test_the_aurora_v3_strategy_on_a_server_that_is_not_aurora_says_so(
        admin_conn: pymysql.connections.Connection, app: Credentials, make_config: MakeConfig) -> None:
    plan = GrantPlan(make_config(SCHEMA).database.name, app, GrantDialect.AURORA_V3)
    status = grants_status(admin_conn, plan)
    assert len(status.problems) == 1 and "not Aurora MySQL 3" in status.problems[0]
    with pytest.raises(OperationFailed, match="not Aurora MySQL 3"):
        ensure_grants(admin_conn, plan)


# SHOW GRANTS lines as Aurora MySQL 3 and 2 print them for the master user.
AURORA_V3_MASTER = ["GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP ON *.* TO `admin`@`%` WITH GRANT OPTION",
                    "GRANT APPLICATION_PASSWORD_ADMIN,AUDIT_ADMIN,BACKUP_ADMIN ON *.* TO `admin`@`%` WITH GRANT OPTION",
                    "GRANT `rds_superuser_role`@`%` TO `admin`@`%`"]
# After GRANT AWS_LAMBDA_ACCESS, MySQL 8 lists both roles on one line.
AURORA_V3_MASTER_GRANTED = [*AURORA_V3_MASTER[:2], "GRANT `AWS_LAMBDA_ACCESS`@`%`,`rds_superuser_role`@`%` TO `admin`@`%`"]
AURORA_V2_MASTER = ["GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, LOAD FROM S3 ON *.* TO 'admin'@'%' "
                    "WITH GRANT OPTION"]


@pytest.mark.parametrize(("lines", "roles"), [
    (AURORA_V3_MASTER, {"rds_superuser_role"}),
    (AURORA_V3_MASTER_GRANTED, {"AWS_LAMBDA_ACCESS", "rds_superuser_role"}),
    (["GRANT `AWS_LAMBDA_ACCESS`@`%`, `rds_superuser_role`@`%`, `reporting`@`10.0.%` TO `admin`@`%` "
      "WITH ADMIN OPTION"], {"AWS_LAMBDA_ACCESS", "rds_superuser_role", "reporting"}),
    (["GRANT `odd``,name`@`%`,`AWS_LAMBDA_ACCESS`@`%` TO `admin`@`%`"], {"odd`,name", "AWS_LAMBDA_ACCESS"}),
    (["GRANT USAGE ON *.* TO `admin`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF'",
      "GRANT `AWS_LAMBDA_ACCESS` TO `admin`@`%` WITH ADMIN OPTION",
      "GRANT `rds_superuser_role` TO `admin`@`%`"], {"AWS_LAMBDA_ACCESS", "rds_superuser_role"}),  # MariaDB
    (["GRANT PROXY ON ''@'%' TO 'admin'@'%' WITH GRANT OPTION", *AURORA_V2_MASTER], set()),
])
def test_show_grants_role_lists_are_read_on_mysql_8_and_mariadb_lines(lines: list[str], roles: set[str]) -> None:
    assert parse_show_grants(lines).roles == roles


def test_show_grants_default_role_and_global_privileges_are_read() -> None:
    held = parse_show_grants(["GRANT `AWS_LAMBDA_ACCESS` TO `admin`@`%`",
                              "SET DEFAULT ROLE `AWS_LAMBDA_ACCESS` FOR `admin`@`%`",
                              "GRANT SELECT, INVOKE  LAMBDA, LOAD FROM S3 ON *.* TO 'admin'@'%' WITH GRANT OPTION",
                              "GRANT ALL PRIVILEGES ON `flights`.* TO 'admin'@'%'"])
    assert held.default_roles == {"AWS_LAMBDA_ACCESS"}
    assert {"SELECT", "INVOKE LAMBDA", "LOAD FROM S3"} == held.global_privileges  # not flights.*'s


def test_the_parser_reads_what_mariadb_itself_prints(admin_conn: pymysql.connections.Connection,
                                                      mariadb_server: MariaDBServer) -> None:
    account, extra_role = Account(unique("rs_roles"), "%"), unique("rs_role")
    with root_connection(mariadb_server) as root, root.cursor() as cursor:
        cursor.execute("CREATE USER %s@%s", (account.user, account.host))
        cursor.execute(f"CREATE ROLE {quote_identifier(extra_role)}")
        try:
            for role in (extra_role, "AWS_LAMBDA_ACCESS"):  # MariaDB grants one role per statement
                cursor.execute(f"GRANT {quote_identifier(role)} TO %s@%s", (account.user, account.host))
            cursor.execute("SET DEFAULT ROLE `AWS_LAMBDA_ACCESS` FOR %s@%s", (account.user, account.host))
            cursor.execute("SHOW GRANTS FOR %s@%s", (account.user, account.host))
            held = parse_show_grants(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("DROP USER %s@%s", (account.user, account.host))
            cursor.execute(f"DROP ROLE {quote_identifier(extra_role)}")
    assert held.roles == {extra_role, "AWS_LAMBDA_ACCESS"}
    assert held.default_roles == {"AWS_LAMBDA_ACCESS"}


def test_aurora_v3_grants_the_lambda_role_and_makes_all_roles_default_once() -> None:
    strategy = _LAMBDA_ACCESS[GrantDialect.AURORA_V3]  # MariaDB cannot run these, so only the decision is run here
    admin = Account("admin")
    fresh = strategy.actions(parse_show_grants(AURORA_V3_MASTER).with_default_roles(["rds_superuser_role"]), admin)
    assert [(a.sql, a.params) for a in fresh] == [("GRANT `AWS_LAMBDA_ACCESS` TO %s@%s", ("admin", "%")),
                                                  ("SET DEFAULT ROLE ALL TO %s@%s", ("admin", "%"))]
    # Granted but not default (the state GRANT alone leaves): the app user's writes would fail with 1227.
    granted = parse_show_grants(AURORA_V3_MASTER_GRANTED).with_default_roles(["rds_superuser_role"])
    assert [a.sql for a in strategy.actions(granted, admin)] == ["SET DEFAULT ROLE ALL TO %s@%s"]
    settled = granted.with_default_roles(["AWS_LAMBDA_ACCESS"])
    assert strategy.actions(settled, admin) == []


def test_aurora_v2_grants_invoke_lambda_once() -> None:
    strategy = _LAMBDA_ACCESS[GrantDialect.AURORA_V2]
    actions = strategy.actions(parse_show_grants(AURORA_V2_MASTER), Account("admin"))
    assert [(a.sql, a.params) for a in actions] == [("GRANT INVOKE LAMBDA ON *.* TO %s@%s", ("admin", "%"))]
    granted = ["GRANT SELECT, INSERT, INVOKE LAMBDA, LOAD FROM S3 ON *.* TO 'admin'@'%' WITH GRANT OPTION"]
    assert strategy.actions(parse_show_grants(granted), Account("admin")) == []
