"""The outbox's procedure activates its definer's roles itself on Aurora MySQL 3, as AWS requires of a
stored program run outside its definer's own session; MySQL 5.7 and MariaDB never see the statement."""

from __future__ import annotations

import re

from orchestrator.database.scripts import split_script
from orchestrator.resources import sql_text
from orchestrator.sandbox.mariadb import MariaDBServer
from tests.database.conftest import connect


def delivery_procedure() -> str:
    (procedure,) = [s for s in split_script(sql_text("outbox.sql")) if s.startswith("CREATE PROCEDURE")]
    return procedure


def test_the_outbox_procedure_sets_role_all_first_in_a_mysql_8_only_comment() -> None:
    body = delivery_procedure()
    statements = [line.strip() for line in body.splitlines()[body.splitlines().index("BEGIN") + 1:]
                  if line.strip() and not line.strip().startswith("--")]
    first = next(s for s in statements if not s.startswith("DECLARE"))
    assert first == "/*!80000 SET ROLE ALL; */"
    # Versioned comments run on MySQL 8.0 and later only: 5.7 has no SET ROLE, MariaDB 10.11 skips them.
    assert re.fullmatch(r"/\*!(\d{5}) .*\*/", first)[1] == "80000"


def test_mariadb_skips_mysql_8_versioned_comments_so_the_sandbox_runs_the_procedure_unchanged(
        mariadb_server: MariaDBServer) -> None:
    with connect(mariadb_server) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT 1 /*!80000 + 10 */, 1 /*!50100 + 10 */")
        assert cursor.fetchone() == (1, 11)  # MySQL-8-only text skipped, older versioned text run
