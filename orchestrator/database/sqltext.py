"""SQL text helpers: identifier quoting, and splitting a script into statements.

A script is split the way the mysql client does, without DELIMITER.
Semicolons inside '...', "..." and `...` (with backslash escapes and doubled quotes), `-- `, `#` and
`/* */` comments do not end a statement. Comment-only pieces are dropped. Scripts needing
DELIMITER (procedures, triggers) are refused: their bodies contain semicolons we would split on.
"""

from __future__ import annotations

import re

from orchestrator.errors import OperationFailed

_DELIMITER = re.compile(r"DELIMITER\s", re.IGNORECASE)


def quote_identifier(name: str) -> str:
    """`name` as a MySQL identifier, whatever it contains (backticks are doubled)."""
    if not name or "\0" in name:
        raise OperationFailed(f"{name!r} cannot be a MySQL identifier")
    return "`" + name.replace("`", "``") + "`"


def split_statements(script: str, *, source: str = "the SQL script") -> list[str]:
    statements: list[str] = []
    current: list[str] = []
    has_code = False
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if ch in "'\"`":
            end = _end_of_quoted(script, i, source)
            current.append(script[i:end])
            has_code = True
            i = end
        elif ch == "#" or (script.startswith("--", i) and (i + 2 == n or script[i + 2] in " \t\r\n")):
            end = script.find("\n", i)
            end = n if end == -1 else end
            current.append(script[i:end])
            i = end
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            if end == -1:
                raise OperationFailed(f"{source}: a /* comment is never closed")
            # /*! ... */ is MySQL's executable comment: code, not a comment.
            has_code = has_code or script.startswith("/*!", i)
            current.append(script[i:end + 2])
            i = end + 2
        elif ch == ";":
            if has_code:
                statements.append("".join(current).strip())
            current, has_code = [], False
            i += 1
        else:
            if not ch.isspace():
                if not has_code and _DELIMITER.match(script, i):
                    raise OperationFailed(f"{source}: DELIMITER is a mysql client command, not SQL",
                                          hint="keep procedures and triggers out of the schema file")
                has_code = True
            current.append(ch)
            i += 1
    if has_code:
        statements.append("".join(current).strip())
    return statements


def _end_of_quoted(script: str, start: int, source: str) -> int:
    quote = script[start]
    i = start + 1
    while i < len(script):
        ch = script[i]
        if ch == "\\" and quote != "`":
            i += 2
        elif ch == quote:
            if script.startswith(quote * 2, i):
                i += 2  # a doubled quote stands for itself
            else:
                return i + 1
        else:
            i += 1
    line = script.count("\n", 0, start) + 1
    raise OperationFailed(f"{source}: the {quote} quote opened on line {line} is never closed")
