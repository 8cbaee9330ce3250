"""`python -m orchestrator.sandbox.moto_server [-H HOST] [-p PORT]`: moto's server with our models."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    from orchestrator.sandbox import moto_models  # noqa: F401  (registers the CloudFormation models)

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
