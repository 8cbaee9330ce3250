"""Create the DynamoDB replica of a streamed table, keyed like the Aurora table:
`python create_replica_table.py [--config config.toml] [--table routes]`.

On the sandbox it talks to the sandbox's moto (run `rds-streams up` first), on AWS to your account.
The key schema is the table's primary key as the stream's Keys carry it: the first column the
partition key, the second (if any) the sort key; S, N or B by the column's attribute type.
"""

from __future__ import annotations

import argparse
from typing import Any

# Attribute types of the key columns of the shipped `routes` table; add yours (see the README's
# record reference for the type each MySQL column type gets).
KEYS = {"routes": [("airportFrom", "S"), ("airportTo", "S")]}


def create_replica_table(dynamodb: Any, name: str, keys: list[tuple[str, str]]) -> None:
    """Create the table (on-demand) unless it exists, and wait until it is active."""
    if not 1 <= len(keys) <= 2:
        raise ValueError(f"a DynamoDB key has one or two attributes; {name}'s Aurora key has {len(keys)}")
    if name in dynamodb.list_tables()["TableNames"]:
        return
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": column, "AttributeType": kind} for column, kind in keys],
        KeySchema=[{"AttributeName": column, "KeyType": role}
                   for (column, _), role in zip(keys, ("HASH", "RANGE")[:len(keys)], strict=True)],
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def dynamodb_client(config_path: str) -> Any:
    from orchestrator.aws import clients_for
    from orchestrator.config import load_config
    from orchestrator.sandbox.manager import Sandbox

    config = load_config(config_path)
    aws = Sandbox(config).require_up().aws() if config.project.target == "local" else clients_for(config)
    return aws.client("dynamodb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.toml")
    parser.add_argument("--table", default="routes")
    parser.add_argument("--prefix", default="replica-")
    args = parser.parse_args()
    create_replica_table(dynamodb_client(args.config), args.prefix + args.table, KEYS[args.table])
    print(f"{args.prefix}{args.table} is ready")


if __name__ == "__main__":
    main()
