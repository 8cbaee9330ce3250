"""The config contract: good configs load, each kind of bad input is refused naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config import Dialect, load_config
from orchestrator.errors import ConfigError
from tests.factories import SHIPPED_CONFIG, write_config


def refused(tmp_path: Path, overrides: dict) -> str:
    path = write_config(tmp_path, overrides)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message, "the message names the file"
    return message


def test_shipped_config_loads_as_v3_local_sandbox():
    config = load_config(SHIPPED_CONFIG)
    assert config.project.target == "local"
    assert config.database.dialect is Dialect.V3
    assert [t.name for t in config.stream.tables] == ["routes"]
    assert config.migrations_path.is_dir() and (config.migrations_path / "V1__routes.sql").is_file()


def test_v2_engine_version_selects_the_v2_dialect(tmp_path):
    config = load_config(write_config(tmp_path, {"database": {"engine_version": "5.7.mysql_aurora.2.12.5"}}))
    assert config.database.dialect is Dialect.V2
    assert config.database.parameter_group_family == "aurora-mysql5.7"


def test_unknown_key_is_refused(tmp_path):
    message = refused(tmp_path, {"network": {"cidr_block": "10.0.0.0/16"}})
    assert "[network] cidr_block: unknown key" in message


def test_wrong_type_is_refused(tmp_path):
    message = refused(tmp_path, {"database": {"instances": "two"}})
    assert "[database] instances" in message and "integer" in message


def test_allowed_cidr_that_is_not_a_cidr_is_refused(tmp_path):
    message = refused(tmp_path, {"bastion": {"allowed_cidr": "my laptop"}})
    assert "[bastion] allowed_cidr" in message and "not an IPv4 CIDR" in message


def test_allowed_cidr_of_the_whole_internet_is_refused(tmp_path):
    message = refused(tmp_path, {"bastion": {"allowed_cidr": "0.0.0.0/0"}})
    assert "[bastion] allowed_cidr" in message and "0.0.0.0/0 is refused" in message


def test_view_type_outside_its_set_is_refused(tmp_path):
    message = refused(tmp_path, {"stream": {"view_type": "NEW_IMAGES"}})
    assert "[stream] view_type" in message and "NEW_AND_OLD_IMAGES" in message


def test_delivery_outside_its_set_is_refused(tmp_path):
    message = refused(tmp_path, {"stream": {"delivery": "kinesis"}})
    assert "[stream] delivery" in message and "'outbox'" in message


def test_egress_outside_its_set_is_refused(tmp_path):
    message = refused(tmp_path, {"network": {"egress": "igw"}})
    assert "[network] egress" in message and "'endpoint'" in message


@pytest.mark.parametrize("version", ["8.0.mysql_aurora.2.10.0", "8.0.36", "5.7.12", "aurora-postgresql-15"])
def test_engine_version_that_is_not_aurora_mysql_2_or_3_is_refused(tmp_path, version):
    message = refused(tmp_path, {"database": {"engine_version": version}})
    assert "[database] engine_version" in message and "not an Aurora MySQL 2 or 3 version" in message


def test_missing_schema_file_is_refused(tmp_path):
    path = write_config(tmp_path, {"database": {"schema": "sql/nope.sql"}})
    path.write_text(path.read_text().replace('migrations = "sql/migrations"\n', ""))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "[database] schema" in message and "nope.sql" in message and "not found" in message


def test_a_missing_migrations_folder_is_refused(tmp_path):
    message = refused(tmp_path, {"database": {"migrations": "db/nope"}})
    assert "[database] migrations" in message and "db/nope" in message and "not found" in message


def test_duplicate_table_names_are_refused(tmp_path):
    message = refused(tmp_path, {"stream": {"tables": [{"name": "routes"}, {"name": "Routes"}]}})
    assert "[stream] tables" in message and "listed twice" in message


def test_empty_table_name_is_refused(tmp_path):
    message = refused(tmp_path, {"stream": {"tables": [{"name": ""}]}})
    assert "[[stream.tables]] #1 name" in message and "may not be empty" in message


def test_table_name_that_is_not_a_plain_identifier_is_refused(tmp_path):
    message = refused(tmp_path, {"stream": {"tables": [{"name": "routes`; DROP TABLE x"}]}})
    assert "[[stream.tables]] #1 name" in message and "not a plain identifier" in message


def test_no_tables_is_refused(tmp_path):
    message = refused(tmp_path, {"stream": {"tables": []}})
    assert "[stream] tables" in message


def test_bad_config_exits_2_and_names_file_and_key(tmp_path, capsys):
    path = write_config(tmp_path, {"bastion": {"allowed_cidr": "0.0.0.0/0"}})
    assert main(["synth", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "allowed_cidr" in err and "config.toml" in err
    assert not (tmp_path / "out").exists(), "nothing was touched"


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert main(["synth", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_relay_partitions_default_to_four_and_out_of_range_is_refused(tmp_path):
    assert load_config(write_config(tmp_path, {})).stream.partitions == 4
    assert load_config(write_config(tmp_path, {"stream": {"relay_partitions": 2}})).stream.partitions == 2
    message = refused(tmp_path, {"stream": {"relay_partitions": 65}})
    assert "[stream] relay_partitions" in message and "64" in message


def test_sandbox_latency_defaults_to_none_and_negative_is_refused(tmp_path):
    assert load_config(write_config(tmp_path, {})).sandbox.lambda_ms == 0
    assert load_config(write_config(tmp_path, {"sandbox": {"lambda_ms": 35}})).sandbox.lambda_ms == 35
    message = refused(tmp_path, {"sandbox": {"lambda_ms": -1}})
    assert "[sandbox] lambda_ms" in message
