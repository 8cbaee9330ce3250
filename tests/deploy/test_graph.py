"""The stack graph: order, parallel waves, --only with and without dependencies."""

import pytest

from orchestrator.deploy.graph import selected, waves
from orchestrator.errors import UsageError


def test_network_and_consumer_deploy_together_before_database():
    assert waves(["network", "consumer", "database"]) == [["network", "consumer"], ["database"]]


def test_only_database_brings_its_upstream_stacks_for_up_but_not_for_down():
    assert selected(["database"], with_dependencies=True) == ["network", "consumer", "database"]
    assert selected(["database"], with_dependencies=False) == ["database"]


def test_unknown_stack_is_bad_usage():
    with pytest.raises(UsageError, match="--only bastion: unknown stack"):
        selected(["bastion"], with_dependencies=True)
