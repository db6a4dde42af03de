"""The test suite's clean-up deletes this run's RabbitMQ queues and never another run's."""

from __future__ import annotations

from broker import naming
from tests.support.names import RUN, RUN_QUEUE, unique_hex


def test_this_runs_queues_are_recognised() -> None:
    uid = unique_hex()
    group = f"relay{uid}"
    for name in (
        naming.rabbit_group_queue(group),
        naming.rabbit_dead_letter_queue(group),
        f"{naming.rabbit_group_queue(group)}.retry.500",
        f"shop.it{uid}.billing",
        naming.rabbit_group_queue("payments", prefix=f"t{uid}"),
        naming.rabbit_dead_letter_queue("payments", prefix=f"t{uid}"),
    ):
        assert RUN_QUEUE.match(name), name


def test_another_runs_and_real_queues_are_left_alone() -> None:
    other = "0" * 6 if RUN != "0" * 6 else "1" * 6
    uid = other + "0123abcd"
    for name in (
        naming.rabbit_group_queue(f"relay{uid}"),
        naming.rabbit_group_queue("payments", prefix=f"t{uid}"),
        naming.rabbit_group_queue("payments"),
        naming.rabbit_dead_letter_queue("payments"),
        "shop.cli94daf50b",  # an earlier run's name shape
    ):
        assert not RUN_QUEUE.match(name), name
