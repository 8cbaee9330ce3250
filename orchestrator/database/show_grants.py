"""Reading an account's `SHOW GRANTS` lines: the roles it holds, its default roles, its global privileges.

The lines differ by server:
- MySQL 8 (Aurora MySQL 3) lists every role of an account on one line, each with its host:
  GRANT `AWS_LAMBDA_ACCESS`@`%`,`rds_superuser_role`@`%` TO `admin`@`%`
  and keeps default roles out of SHOW GRANTS (they are in mysql.default_roles);
- MariaDB writes one role per line without a host, and the default role as a line of its own:
  GRANT `AWS_LAMBDA_ACCESS` TO `admin`@`%` WITH ADMIN OPTION
  SET DEFAULT ROLE `AWS_LAMBDA_ACCESS` FOR `admin`@`%`
- MySQL 5.7 (Aurora MySQL 2) has no roles; its privileges come as GRANT a, b ON *.* TO 'u'@'h'.
Names may be quoted with backquotes, single or double quotes (a quote doubled inside), or bare.
Lines carry password hashes: nothing here logs or returns a line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_NAME = r"`(?:[^`]|``)*`|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[A-Za-z0-9_$.%-]+"
_ROLE_ITEM = re.compile(rf"\s*(?P<name>{_NAME})(?:\s*@\s*(?P<host>{_NAME}))?\s*")
_TO = re.compile(r"TO\s", re.I)
_GRANT = re.compile(r"\s*GRANT\s+", re.I)
_PRIVILEGES_ON_ALL = re.compile(r"\s*GRANT\s+(?P<privileges>.+?)\s+ON\s+\*\.\*\s+TO\s", re.I | re.S)
_DEFAULT_ROLE = re.compile(rf"\s*SET\s+DEFAULT\s+ROLE\s+(?P<name>{_NAME})\s+FOR\s", re.I)


@dataclass(frozen=True)
class AccountGrants:
    roles: frozenset[str] = frozenset()             # role names granted to the account
    default_roles: frozenset[str] = frozenset()     # those active at login (MariaDB's line; MySQL 8 adds its table)
    global_privileges: frozenset[str] = frozenset()  # privileges ON *.*, upper case

    def with_default_roles(self, roles: Iterable[str]) -> AccountGrants:
        return AccountGrants(self.roles, self.default_roles | frozenset(roles), self.global_privileges)


def unquote(token: str) -> str:
    if token[:1] in ("`", "'", '"') and len(token) >= 2 and token[-1] == token[0]:
        return token[1:-1].replace(token[0] * 2, token[0])
    return token


def role_list(line: str) -> list[str] | None:
    """The role names of a `GRANT role[, role...] TO account` line; None for any other line."""
    start = _GRANT.match(line)
    if start is None:
        return None
    position, names = start.end(), []
    while True:
        item = _ROLE_ITEM.match(line, position)
        if item is None:
            return None
        names.append(unquote(item["name"]))
        position = item.end()
        if line.startswith(",", position):
            position += 1
            continue
        return names if _TO.match(line, position) else None


def global_privileges(line: str) -> list[str]:
    """The privileges a `GRANT ... ON *.* TO` line gives (e.g. INVOKE LAMBDA); [] for any other line."""
    match = _PRIVILEGES_ON_ALL.match(line)
    if match is None:
        return []
    return [" ".join(p.split()).upper() for p in match["privileges"].split(",") if p.strip()]


def parse_show_grants(lines: Iterable[str]) -> AccountGrants:
    roles: set[str] = set()
    defaults: set[str] = set()
    privileges: set[str] = set()
    for line in lines:
        names = role_list(line)
        if names is not None:
            roles.update(names)
            continue
        default = _DEFAULT_ROLE.match(line)
        if default is not None:
            defaults.add(unquote(default["name"]))
            continue
        privileges.update(global_privileges(line))
    return AccountGrants(frozenset(roles), frozenset(defaults), frozenset(privileges))
