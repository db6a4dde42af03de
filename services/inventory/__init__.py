"""Inventory: products, stock and per-order reservations (gRPC port 50052).

Reservations never oversell: each line is one conditional ``UPDATE ... WHERE available >= qty``
inside one transaction, so concurrent reservations of the last units cannot both succeed.
"""
