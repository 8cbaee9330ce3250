"""`python -m orchestrator.sandbox.moto_server --sandbox DIR -p PORT`: moto's server with our models,
answering only the sandbox's own credentials. (Without --sandbox: moto as it comes, open to anyone,
for benchmarks that stand in for AWS with made-up credentials.)

moto answers anyone by default, and its SSM hands out the bastion key; so IAM enforcement is on from
the first request (`INITIAL_NO_AUTH_ACTION_COUNT=0`), and the one IAM user that may do anything is
created here, inside the server, before it listens: no unauthenticated window another local user
could use. Its access key goes to DIR/credentials (0600, DIR is 0700). moto's own `/moto-api/`
(state dump, reset, auth reset) is closed: it needs no credentials at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

CREDENTIALS_FILE = "credentials"
SANDBOX_USER = "rds-streams-sandbox"
ACCOUNT_ID = "123456789012"  # moto's default account: where CloudFormation creates everything


def load_credentials(root: Path) -> dict[str, str]:
    """The sandbox's access key for boto3 (`aws_access_key_id`, `aws_secret_access_key`)."""
    return json.loads((root / CREDENTIALS_FILE).read_text())


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, replacing it atomically."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(partial, path)


def create_sandbox_user(root: Path) -> None:
    from moto.iam.models import iam_backends

    iam = iam_backends[ACCOUNT_ID]["aws"]
    iam.create_user("global", SANDBOX_USER)
    iam.put_user_policy(SANDBOX_USER, "sandbox", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(SANDBOX_USER)
    write_private(root / CREDENTIALS_FILE, json.dumps(
        {"aws_access_key_id": key.access_key_id, "aws_secret_access_key": key.secret_access_key}) + "\n")


def closed_moto_api(app: Any) -> Any:
    """moto's control API dumps every model (the bastion key too) and resets auth, unauthenticated."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"the sandbox's moto control API is closed\n"]
        return app(environ, start_response)

    return wrapped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", type=Path, help="the sandbox's state folder")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    if args.sandbox is None:
        from moto.server import main as moto_main

        from orchestrator.sandbox import moto_models  # noqa: F401  (registers the CloudFormation models)

        moto_main(["-H", args.host, "-p", str(args.port)])
        return

    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    from orchestrator.sandbox import moto_models  # noqa: F401  (registers the CloudFormation models)

    create_sandbox_user(args.sandbox)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, closed_moto_api(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
