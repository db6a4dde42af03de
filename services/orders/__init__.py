"""Orders: event-sourced orders and the saga that fulfils them (gRPC port 50051).

An order's events (table ``order_events``) are the source of truth; its state is rebuilt by
folding them (:mod:`~services.orders.domain`), and the ``order_summaries`` read model is
projected in the same transaction (and can be rebuilt from the events).
"""
