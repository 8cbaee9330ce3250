"""The attach keys: [database] cluster and admin_secret, [bastion] mode and a team bastion's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from tests.factories import write_config

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def refused(tmp_path: Path, overrides: dict) -> str:
    path = write_config(tmp_path, overrides)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.exit_code == 2 and str(path) in str(caught.value)
    return str(caught.value)


def test_a_cluster_by_identifier_or_arn_means_attach(tmp_path):
    arn = "arn:aws:rds:eu-west-1:123456789012:cluster:team-db"
    for cluster in ("team-db", arn):
        config = load_config(write_config(tmp_path, {"database": {"cluster": cluster}}))
        assert config.attached and config.database.cluster_identifier == "team-db"
    assert not load_config(write_config(tmp_path, {})).attached


def test_an_attached_cluster_runs_migrations_only_when_they_are_named(tmp_path):
    path = write_config(tmp_path, {"database": {"cluster": "team-db"}})
    assert load_config(path).applies_migrations, "the shipped config names its migrations folder"
    text = path.read_text().replace('migrations = "sql/migrations"\n', "")
    path.write_text(text)
    config = load_config(path)
    assert not config.applies_migrations
    from orchestrator.database.migrations import load_migrations

    assert load_migrations(config) == []


@pytest.mark.parametrize("overrides, expected", [
    ({"database": {"cluster": "not an id!"}}, "[database] cluster"),
    ({"database": {"cluster": "team-db", "deletion": "snapshot"}}, "`down` never deletes an attached cluster"),
    ({"database": {"admin_secret": "team/admin"}}, "set cluster too"),
    ({"bastion": {"mode": "none"}}, "needs [database] cluster"),
    ({"bastion": {"mode": "bastion"}}, "[bastion] mode"),
    ({"database": {"cluster": "team-db"}, "bastion": {"mode": "existing", "host": "bastion.example.com"}},
     "needs user, key_path, host_key"),
    ({"database": {"cluster": "team-db"}, "bastion": {"mode": "none", "host": "bastion.example.com"}},
     "need mode = \"existing\""),
    ({"database": {"cluster": "team-db"}, "bastion": {"mode": "existing", "host": "b", "user": "ec2-user",
                                                      "key_path": "missing.key", "host_key": HOST_KEY}},
     "[bastion] key_path: file 'missing.key' not found"),
    ({"database": {"cluster": "team-db"}, "bastion": {"mode": "existing", "host": "b", "user": "ec2-user",
                                                      "key_path": "k", "host_key": "my bastion's key"}},
     "[bastion] host_key"),
])
def test_conflicting_or_incomplete_attach_settings_are_refused(tmp_path, overrides, expected):
    assert expected in refused(tmp_path, overrides)


def test_our_bastion_needs_allowed_cidr_and_a_team_bastion_does_not(tmp_path):
    path = write_config(tmp_path, {"database": {"cluster": "team-db"}})
    without_cidr = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("allowed_cidr"))
    path.write_text(without_cidr + "\n")
    with pytest.raises(ConfigError, match="allowed_cidr is required with mode = \"create\""):
        load_config(path)
    (tmp_path / "team.key").write_text("not read until a tunnel opens")
    path.write_text(without_cidr.replace("[bastion]", f'[bastion]\nmode = "existing"\nhost = "bastion.example.com"\n'
                                         f'user = "ec2-user"\nkey_path = "team.key"\nhost_key = "{HOST_KEY}"') + "\n")
    config = load_config(path)
    assert config.bastion.mode == "existing" and config.bastion_key_path == (tmp_path / "team.key").resolve()
