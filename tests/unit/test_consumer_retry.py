"""CONSUMER_RETRY_* variables tune a service's consumer retries; bad values are one line."""

from __future__ import annotations

import pytest

from broker import RetryPolicy
from services.common.bootstrap import consumer_retry
from services.runtime import ConfigError, Env

DEFAULT = RetryPolicy(max_attempts=8, initial_delay=0.2, max_delay=5.0)


def test_unset_keeps_the_services_default():
    assert consumer_retry(Env({}), DEFAULT) == DEFAULT


def test_each_variable_overrides_its_part_only():
    env = Env({"CONSUMER_RETRY_ATTEMPTS": "3", "CONSUMER_RETRY_DELAY": "0.05"})
    policy = consumer_retry(env, DEFAULT)
    assert (policy.max_attempts, policy.initial_delay, policy.max_delay) == (3, 0.05, 5.0)
    assert policy.multiplier == DEFAULT.multiplier
    assert consumer_retry(Env({"CONSUMER_RETRY_MAX_DELAY": "60"}), DEFAULT).max_delay == 60.0


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("CONSUMER_RETRY_ATTEMPTS", "0", "CONSUMER_RETRY_ATTEMPTS: "),
        ("CONSUMER_RETRY_ATTEMPTS", "many", "CONSUMER_RETRY_ATTEMPTS: 'many' is not an integer"),
        ("CONSUMER_RETRY_DELAY", "-1", "CONSUMER_RETRY_DELAY: '-1' must be a positive number"),
    ],
)
def test_bad_values_name_the_variable(variable, value, problem):
    with pytest.raises(ConfigError) as caught:
        consumer_retry(Env({variable: value}), DEFAULT)
    assert str(caught.value).startswith(problem)
