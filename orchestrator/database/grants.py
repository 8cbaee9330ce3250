"""The application user and the privileges the stream needs, per dialect.

Two accounts matter. The application user (from its secret) gets DML on the streamed database.
The triggers' definer - the master user that installs them, since triggers run with their
definer's rights - gets the right to call Lambda, which differs by target:
- aurora-v3: `GRANT AWS_LAMBDA_ACCESS`; the cluster parameter `activate_all_roles_on_login=1`
  (set by the database stack) makes the role active inside triggers;
- aurora-v2: `GRANT INVOKE LAMBDA ON *.*`;
- emulated (the sandbox's MariaDB): the emulation's `AWS_LAMBDA_ACCESS` role, made active with
  `SET DEFAULT ROLE` because MariaDB has no activate_all_roles_on_login.
This module is the one place grant SQL is written. Names and passwords travel as query
parameters, identifiers are quoted, and no statement or SHOW GRANTS line (which carries the
password hash) is ever logged or put in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from orchestrator.database.credentials import Credentials
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

    @classmethod
    def for_config(cls, config: Config, app: Credentials, *, definer: Account | None = None) -> GrantPlan:
        return cls(config.database.name, app, grant_dialect(config), definer=definer)


def grants_status(conn: Connection, plan: GrantPlan, *, login_check: LoginCheck | None = None) -> GrantsStatus:
    """What is missing, for `plan`; changes nothing. Without `login_check` the password is always re-set."""
    app = Account(plan.app.username, plan.app_host)
    definer = plan.definer or Account.parse(_scalar(conn, "SELECT CURRENT_USER()"))
    actions = _app_user_actions(conn, plan, app, login_check) + _dml_actions(conn, plan.database, app)
    lambda_access = _LAMBDA_ACCESS[plan.dialect]
    actions += lambda_access.actions(_show_grants(conn, definer), definer)
    return GrantsStatus(tuple(actions), tuple(lambda_access.problems(conn)))


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


def _dml_actions(conn: Connection, database: str, app: Account) -> list[GrantAction]:
    grantee = f"'{app.user}'@'{app.host}'"
    with conn.cursor() as cursor:
        cursor.execute("SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
                       "WHERE GRANTEE = %s AND TABLE_SCHEMA IN (%s, %s)", (grantee, database, _grant_pattern(database)))
        held = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s", (grantee,))
        held |= {row[0] for row in cursor.fetchall()}
    lacking = [p for p in APP_PRIVILEGES if p not in held]
    if not lacking:
        return []
    target = quote_identifier(_grant_pattern(database))
    return [GrantAction(f"grant {', '.join(lacking)} on {database}.* to {app}",
                        f"GRANT {', '.join(lacking)} ON {target}.* TO %s@%s", (app.user, app.host))]


def _grant_pattern(database: str) -> str:
    # In GRANT ... ON db.*, _ and % are wildcards: escaped, flights_db cannot also match flightsXdb.
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


class _LambdaAccess(Protocol):
    def actions(self, definer_grants: list[str], definer: Account) -> list[GrantAction]:
        """What to run, given the definer's SHOW GRANTS lines."""

    def problems(self, conn: Connection) -> list[str]:
        """What the grants step cannot fix on this server."""


class _AuroraV3:
    def actions(self, definer_grants: list[str], definer: Account) -> list[GrantAction]:
        return [] if _has_role(definer_grants, LAMBDA_ROLE) else [_grant_role(definer)]

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
        return ["the cluster parameter activate_all_roles_on_login is off, so AWS_LAMBDA_ACCESS is not active inside "
                "triggers (error 1227); the database stack's parameter group sets it: run `rds-streams up` to "
                "update the stack"]


class _AuroraV2:
    def actions(self, definer_grants: list[str], definer: Account) -> list[GrantAction]:
        if any(re.match(r"GRANT\s.*\bINVOKE LAMBDA\b.*\sON\s+\*\.\*\s+TO\s", line, re.I) for line in definer_grants):
            return []
        return [GrantAction(f"grant INVOKE LAMBDA to the triggers' definer {definer}",
                            "GRANT INVOKE LAMBDA ON *.* TO %s@%s", (definer.user, definer.host))]

    def problems(self, conn: Connection) -> list[str]:
        return []


class _Emulated:
    def actions(self, definer_grants: list[str], definer: Account) -> list[GrantAction]:
        actions = [] if _has_role(definer_grants, LAMBDA_ROLE) else [_grant_role(definer)]
        default_role = re.compile(rf"SET DEFAULT ROLE\s+`?{LAMBDA_ROLE}`?\s+FOR\s", re.I)
        if not any(default_role.match(line) for line in definer_grants):
            actions.append(GrantAction(f"make {LAMBDA_ROLE} the default role of {definer}",
                                       f"SET DEFAULT ROLE {quote_identifier(LAMBDA_ROLE)} FOR %s@%s",
                                       (definer.user, definer.host)))
        return actions

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


def _has_role(grants: list[str], role: str) -> bool:
    # MySQL 8 writes `role`@`%`, MariaDB `role`; both as GRANT <role> TO <account>.
    pattern = re.compile(rf"GRANT\s+`?{re.escape(role)}`?(@`[^`]*`)?\s+TO\s", re.I)
    return any(pattern.match(line) for line in grants)


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
