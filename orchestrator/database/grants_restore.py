"""The reverse of grants.py for an attached cluster: what the triggers' definer held before `up`
(recorded), and putting it back on `down`, so a cluster we do not own keeps its accounts as they were.
Names travel as query parameters; role names are quoted identifiers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from orchestrator.database.grants import _LAMBDA_ACCESS, LAMBDA_ROLE, Account, GrantDialect, _scalar, grant_dialect
from orchestrator.database.sqltext import quote_identifier

if TYPE_CHECKING:
    from orchestrator.config import Config


def definer_snapshot(conn: Any, config: Config) -> tuple[str, str]:
    """(account, JSON of what it holds that our grants step may change), for the record."""
    definer = Account.parse(str(_scalar(conn, "SELECT CURRENT_USER()")))
    held = _LAMBDA_ACCESS[grant_dialect(config)].read(conn, definer)
    state = {"roles": sorted(held.roles), "default_roles": sorted(held.default_roles),
             "invoke_lambda": "INVOKE LAMBDA" in held.global_privileges}
    return f"{definer.user}@{definer.host}", json.dumps(state, sort_keys=True)


def restore_definer(conn: Any, config: Config, account: str, previous: str) -> list[str]:
    """Undo what our grants step added to `account`; returns what was done (no SQL, no secrets)."""
    before = json.loads(previous)
    definer = Account.parse(account)
    dialect = grant_dialect(config)
    now = _LAMBDA_ACCESS[dialect].read(conn, definer)
    done: list[str] = []
    with conn.cursor() as cursor:
        if dialect is GrantDialect.AURORA_V2:
            if not before["invoke_lambda"] and "INVOKE LAMBDA" in now.global_privileges:
                cursor.execute("REVOKE INVOKE LAMBDA ON *.* FROM %s@%s", (definer.user, definer.host))
                done.append(f"revoked INVOKE LAMBDA from {definer}")
            return done
        if sorted(now.default_roles) != before["default_roles"]:
            _set_default_roles(cursor, dialect, definer, before["default_roles"])
            done.append(f"default roles of {definer} back to {', '.join(before['default_roles']) or 'none'}")
        if LAMBDA_ROLE not in before["roles"] and LAMBDA_ROLE in now.roles:
            cursor.execute(f"REVOKE {quote_identifier(LAMBDA_ROLE)} FROM %s@%s", (definer.user, definer.host))
            done.append(f"revoked {LAMBDA_ROLE} from {definer}")
    conn.commit()
    return done


def _set_default_roles(cursor: Any, dialect: GrantDialect, definer: Account, roles: list[str]) -> None:
    if dialect is GrantDialect.EMULATED:  # MariaDB: one default role, or none
        role = quote_identifier(roles[0]) if roles else "NONE"
        cursor.execute(f"SET DEFAULT ROLE {role} FOR %s@%s", (definer.user, definer.host))
        return
    cursor.execute("SET DEFAULT ROLE NONE TO %s@%s", (definer.user, definer.host))
    if roles:
        names = ", ".join(quote_identifier(r) for r in roles)
        cursor.execute(f"SET DEFAULT ROLE {names} TO %s@%s", (definer.user, definer.host))


def drop_app_user(conn: Any, username: str) -> bool:
    """Our app user (its name is ours: rds_streams_app); True when it existed."""
    exists = _scalar(conn, "SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = '%%'", (username,))
    if not exists:
        return False
    with conn.cursor() as cursor:
        cursor.execute("DROP USER IF EXISTS %s@'%%'", (username,))
    return True
