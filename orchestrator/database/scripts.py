"""Running our own SQL scripts from sql/, written for the mysql client (DELIMITER lines included)."""

from __future__ import annotations

import re
from typing import Any

_DELIMITER = re.compile(r"^\s*DELIMITER\s+(\S+)\s*$", re.IGNORECASE)


def run_script(conn: Any, text: str) -> None:
    """Run a script written for the mariadb client (statements end with `;` or a DELIMITER's token)."""
    with conn.cursor() as cursor:
        for statement in split_script(text):
            cursor.execute(statement)
    conn.commit()


def run_sql_file(conn: Any, name: str) -> None:
    from orchestrator.resources import sql_text

    run_script(conn, sql_text(name))


def split_script(text: str) -> list[str]:
    """Split on the current delimiter at line ends, honouring `DELIMITER x` lines as the client does.

    Enough for our own scripts: no delimiter inside a string literal that ends a line.
    """
    statements: list[str] = []
    delimiter = ";"
    current: list[str] = []
    for line in text.splitlines():
        switch = _DELIMITER.match(line)
        if switch:
            delimiter = switch.group(1)
            continue
        if line.rstrip().endswith(delimiter):
            current.append(line.rstrip()[: -len(delimiter)])
            statements.append("\n".join(current))
            current = []
        else:
            current.append(line)
    statements.append("\n".join(current))
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines())
