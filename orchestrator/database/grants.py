"""The application user and the privileges the stream needs, per dialect.

Two accounts matter. The application user (from its secret) gets DML on the streamed database (and
on verify's canary table, which `verify` and the smoke test write as that user: the path users'
writes take). The triggers' definer - the master user that installs them, since triggers run with
their definer's rights - gets the right to call Lambda, by one strategy wherever roles exist:
- aurora-v3 and emulated (the sandbox's MariaDB): `GRANT AWS_LAMBDA_ACCESS`, then made a default
  role of the definer. Aurora checks the roles active in the trigger's definer context, which are the
  definer's default roles; `GRANT` alone leaves the role inactive there (error 1227 fails the app
  user's write while the master's own writes pass). MySQL 8 spells it `SET DEFAULT ROLE ALL TO`,
  which keeps rds_superuser_role default too; MariaDB has one default role, named. The cluster also
  keeps `activate_all_roles_on_login=1` for ordinary sessions;
- aurora-v2 (MySQL 5.7, no roles): `GRANT INVOKE LAMBDA ON *.*`.
`SHOW GRANTS` is read by a parser of its role lists (show_grants.py), so a second run plans nothing.
This module is the one place grant SQL is written. Names and passwords travel as query
parameters, identifiers are quoted, and no statement or SHOW GRANTS line (which carries the
password hash) is ever logged or put in a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from orchestrator.database.credentials import Credentials
from orchestrator.database.show_grants import AccountGrants, parse_show_grants
from orchestrator.database.sqltext import quote_identifier
from orchestrator.errors import OperationFailed

if TYPE_CHECKING:
    from pymysql.connections import Connection

    from orchestrator.config import Config

LAMBDA_ROLE = "AWS_LAMBDA_ACCESS"
APP_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Whether a password is accepted, tried by logging in: MySQL 8 has no way to compare it in SQL.
LoginCheck = Callable[[Credentials], bool]


class GrantDialect(StrEnum):
    AURORA_V3 = "aurora-v3"
    AURORA_V2 = "aurora-v2"
    EMULATED = "emulated"


def grant_dialect(config: Config) -> GrantDialect:
    if config.project.target == "local":
        return GrantDialect.EMULATED
    return GrantDialect.AURORA_V2 if config.database.dialect.value == "v2" else GrantDialect.AURORA_V3


@dataclass(frozen=True)
class Account:
    user: str
    host: str = "%"

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"

    @classmethod
    def parse(cls, text: str) -> Account:
        """`CURRENT_USER()`'s form, user@host (a user name may itself contain @)."""
        user, _, host = text.rpartition("@")
        return cls(user, host)


@dataclass(frozen=True)
class GrantAction:
    """One statement the grants step would run; `description` is what plan and logs may show."""

    description: str
    sql: str = field(repr=False)
    params: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class GrantsStatus:
    actions: tuple[GrantAction, ...]  # what ensure_grants would run
    problems: tuple[str, ...] = ()  # what it cannot fix, with what to do instead

    @property
    def done(self) -> bool:
        return not self.actions and not self.problems

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(a.description for a in self.actions) + self.problems


@dataclass(frozen=True)
class GrantPlan:
    database: str
    app: Credentials
    dialect: GrantDialect
    app_host: str = "%"
    definer: Account | None = None  # None: the account the connection is logged in as
    tables: tuple[tuple[str, str], ...] = ()  # single tables (schema, table) the app user writes too

    @classmethod
    def for_config(cls, config: Config, app: Credentials, *, definer: Account | None = None,
                   tables: tuple[tuple[str, str], ...] = ()) -> GrantPlan:
        return cls(config.database.name, app, grant_dialect(config), definer=definer, tables=tables)


def grants_status(conn: Connection, plan: GrantPlan, *, login_check: LoginCheck | None = None) -> GrantsStatus:
    """What is missing, for `plan`; changes nothing. Without `login_check` the password is always re-set."""
    app = Account(plan.app.username, plan.app_host)
    definer = plan.definer or Account.parse(_scalar(conn, "SELECT CURRENT_USER()"))
    actions = _app_user_actions(conn, plan, app, login_check) + _dml_actions(conn, plan.database, app)
    for schema, table in plan.tables:
        actions += _dml_actions(conn, schema, app, table)
    lambda_access = _LAMBDA_ACCESS[plan.dialect]
    problems = tuple(lambda_access.problems(conn))
    if not problems:  # a server that is not the one expected cannot even be read the expected way
        actions += lambda_access.actions(lambda_access.read(conn, definer), definer)
    return GrantsStatus(tuple(actions), problems)


def ensure_grants(conn: Connection, plan: GrantPlan, *, login_check: LoginCheck | None = None) -> GrantsStatus:
    """Create the app user and grant what is missing; returns what was done. Idempotent."""
    import pymysql

    status = grants_status(conn, plan, login_check=login_check)
    if status.problems:
        raise OperationFailed("the database cannot be prepared for the stream: " + "; ".join(status.problems))
    with conn.cursor() as cursor:
        for action in status.actions:
            try:
                cursor.execute(action.sql, action.params or None)
            except pymysql.err.MySQLError as err:
                reason = err.args[1] if len(err.args) > 1 else type(err).__name__
                raise OperationFailed(f"could not {action.description}: {reason}",
                                      hint=_hint_for(err, plan.dialect)) from err
    conn.commit()
    return status


def _app_user_actions(conn: Connection, plan: GrantPlan, app: Account, login_check: LoginCheck | None) -> list[GrantAction]:
    exists = _scalar(conn, "SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s", (app.user, app.host))
    if not exists:
        return [GrantAction(f"create user {app} (password from its secret)",
                            "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (app.user, app.host, plan.app.password))]
    if login_check is not None and login_check(plan.app):
        return []
    why = "its secret's password is not accepted" if login_check else "the password is not verified"
    return [GrantAction(f"set the password of {app} from its secret ({why})",
                        "ALTER USER %s@%s IDENTIFIED BY %s", (app.user, app.host, plan.app.password))]


def _dml_actions(conn: Connection, schema: str, app: Account, table: str | None = None) -> list[GrantAction]:
    """DML on the whole schema, or on one table of it; privileges held at a wider level count."""
    grantee = f"'{app.user}'@'{app.host}'"
    queries = [("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s", (grantee,)),
               ("SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %s "
                "AND TABLE_SCHEMA IN (%s, %s)", (grantee, schema, _grant_pattern(schema)))]
    if table is not None:
        queries.append(("SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = %s "
                        "AND TABLE_SCHEMA = %s AND TABLE_NAME = %s", (grantee, schema, table)))
    held: set[str] = set()
    with conn.cursor() as cursor:
        for sql, params in queries:
            cursor.execute(sql, params)
            held |= {row[0] for row in cursor.fetchall()}
    lacking = ", ".join(p for p in APP_PRIVILEGES if p not in held)
    if not lacking:
        return []
    if table is None:
        return [GrantAction(f"grant {lacking} on {schema}.* to {app}",
                            f"GRANT {lacking} ON {quote_identifier(_grant_pattern(schema))}.* TO %s@%s",
                            (app.user, app.host))]
    return [GrantAction(f"grant {lacking} on {schema}.{table} to {app}",
                        f"GRANT {lacking} ON {quote_identifier(schema)}.{quote_identifier(table)} TO %s@%s",
                        (app.user, app.host))]


def _grant_pattern(database: str) -> str:
    # In GRANT ... ON db.*, _ and % are wildcards: escaped, flights_db cannot also match flightsXdb.
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


class _LambdaAccess(Protocol):
    def actions(self, definer_grants: AccountGrants, definer: Account) -> list[GrantAction]:
        """What to run, given what the definer holds."""

    def read(self, conn: Connection, definer: Account) -> AccountGrants:
        """What the definer holds, as this server tells it."""

    def problems(self, conn: Connection) -> list[str]:
        """What the grants step cannot fix on this server."""


class _LambdaRole:
    """Aurora MySQL 3 and the sandbox: one strategy. The role is granted to the definer and made one of
    its default roles, the only roles a trigger's definer context has (Aurora checks the definer's active
    roles; activate_all_roles_on_login is not documented to reach there). `make_default` is the server's
    spelling: MySQL 8's `SET DEFAULT ROLE ALL TO` keeps every role default (rds_superuser_role too);
    MariaDB has one default role, named."""

    def __init__(self, make_default: str, default_roles_query: str | None) -> None:
        self.make_default = make_default
        self.default_roles_query = default_roles_query

    def actions(self, definer_grants: AccountGrants, definer: Account) -> list[GrantAction]:
        actions = [] if LAMBDA_ROLE in definer_grants.roles else [_grant_role(definer)]
        if LAMBDA_ROLE not in definer_grants.default_roles:
            actions.append(GrantAction(f"make {LAMBDA_ROLE} a default role of the triggers' definer {definer}, "
                                       "so it is active inside triggers", self.make_default,
                                       (definer.user, definer.host)))
        return actions

    def read(self, conn: Connection, definer: Account) -> AccountGrants:
        held = parse_show_grants(_show_grants(conn, definer))
        if self.default_roles_query is None:
            return held
        with conn.cursor() as cursor:
            cursor.execute(self.default_roles_query, (definer.user, definer.host))
            return held.with_default_roles(row[0] for row in cursor.fetchall())


class _AuroraV3(_LambdaRole):
    def __init__(self) -> None:
        super().__init__("SET DEFAULT ROLE ALL TO %s@%s",
                         "SELECT DEFAULT_ROLE_USER FROM mysql.default_roles WHERE USER = %s AND HOST = %s")

    def problems(self, conn: Connection) -> list[str]:
        import pymysql

        try:
            active = _scalar(conn, "SELECT @@GLOBAL.activate_all_roles_on_login")
        except pymysql.err.OperationalError as err:
            if err.args and err.args[0] == 1193:  # unknown system variable
                return ["this server has no activate_all_roles_on_login, so it is not Aurora MySQL 3: check "
                        "[project] target and [database] engine_version"]
            raise
        if str(active) in ("1", "ON"):
            return []
        return ["the cluster parameter activate_all_roles_on_login is off, so sessions of the app user and the "
                "master lack AWS_LAMBDA_ACCESS (error 1227); `rds-streams up` sets it in the cluster's parameter group "
                "(our database stack's, or an attached cluster's own); if it was just set, the instances may still "
                "need the reboot that applies a newly attached parameter group"]


class _AuroraV2:
    def actions(self, definer_grants: AccountGrants, definer: Account) -> list[GrantAction]:
        if "INVOKE LAMBDA" in definer_grants.global_privileges:
            return []
        return [GrantAction(f"grant INVOKE LAMBDA to the triggers' definer {definer}",
                            "GRANT INVOKE LAMBDA ON *.* TO %s@%s", (definer.user, definer.host))]

    def read(self, conn: Connection, definer: Account) -> AccountGrants:
        return parse_show_grants(_show_grants(conn, definer))

    def problems(self, conn: Connection) -> list[str]:
        return []


class _Emulated(_LambdaRole):
    def __init__(self) -> None:
        # MariaDB shows the default role in SHOW GRANTS itself.
        super().__init__(f"SET DEFAULT ROLE {quote_identifier(LAMBDA_ROLE)} FOR %s@%s", None)

    def problems(self, conn: Connection) -> list[str]:
        if _scalar(conn, "SELECT COUNT(*) FROM mysql.user WHERE User = %s AND is_role = 'Y'", (LAMBDA_ROLE,)):
            return []
        return [f"the role {LAMBDA_ROLE} does not exist: the sandbox's Aurora emulation is not installed in MariaDB; "
                "run `rds-streams up` for the local target, which installs it first"]


_LAMBDA_ACCESS: dict[GrantDialect, _LambdaAccess] = {
    GrantDialect.AURORA_V3: _AuroraV3(),
    GrantDialect.AURORA_V2: _AuroraV2(),
    GrantDialect.EMULATED: _Emulated(),
}


def _grant_role(definer: Account) -> GrantAction:
    return GrantAction(f"grant {LAMBDA_ROLE} to the triggers' definer {definer}",
                       f"GRANT {quote_identifier(LAMBDA_ROLE)} TO %s@%s", (definer.user, definer.host))


def _show_grants(conn: Connection, account: Account) -> list[str]:
    with conn.cursor() as cursor:
        cursor.execute("SHOW GRANTS FOR %s@%s", (account.user, account.host))
        return [row[0] for row in cursor.fetchall()]


def _scalar(conn: Connection, sql: str, params: tuple[str, ...] | None = None) -> object:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _hint_for(err: Exception, dialect: GrantDialect) -> str:
    code = err.args[0] if err.args else None
    if code in (1698, 1959) and dialect is GrantDialect.EMULATED:
        return (f"the connected user cannot hand out {LAMBDA_ROLE}: the emulation must create the role as the master "
                "user, or grant it to the master user WITH ADMIN OPTION")
    if code in (1044, 1045, 1227, 1698):
        return "connect as the cluster's master user (its secret is the RDS-managed rds!cluster-... one)"
    return "check the database's error log; nothing that follows this statement was run"
