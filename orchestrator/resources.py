"""The files we ship beside the code (sql/, the consumer's handler), read the same way from a checkout,
an editable install and an installed wheel: through importlib.resources, never by a path relative to
this file."""

from __future__ import annotations

from importlib.resources import files

# sql/ stays top-level in the source tree; pyproject.toml installs it as the package orchestrator.sql.
SQL_PACKAGE = "orchestrator.sql"


def sql_text(name: str) -> str:
    """The text of one of our SQL files, `name` relative to sql/ (e.g. "sandbox/lambda_queue.sql")."""
    return files(SQL_PACKAGE).joinpath(*name.split("/")).read_text(encoding="utf-8")


def consumer_handler_source() -> str:
    """The shipped logging consumer, inlined into the consumer stack's template."""
    return files("blueprints").joinpath("consumer_handler.py").read_text(encoding="utf-8")


def forwarder_source() -> str:
    """Our forwarder into a managed sink (Kinesis, SQS FIFO, EventBridge), inlined like the logger."""
    return files("blueprints").joinpath("consumer_forwarder.py").read_text(encoding="utf-8")
