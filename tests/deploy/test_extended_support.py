"""plan says that a v2 cluster bills RDS Extended Support, and says nothing of it for v3. Against moto."""

from __future__ import annotations

ALL = ("--only", "network", "--only", "consumer", "--only", "database")


def notes(cli, config) -> list[str]:
    code, out = cli("plan", "--config", str(config), *ALL)
    assert code == 0
    return [o["message"] for o in out if o["type"] == "note"]


def test_plan_says_a_v2_cluster_bills_extended_support(aws, aws_config, cli):
    (note,) = notes(cli, aws_config({"database": {"engine_version": "5.7.mysql_aurora.2.12.5"}}))
    assert "RDS Extended Support" in note and "8.0.mysql_aurora.3" in note
    assert notes(cli, aws_config()) == []
