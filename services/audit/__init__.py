"""Audit: the append-only trail of every event in the system (gRPC port 50055).

Its consumer group subscribes to ``shop.#``; each event is stored once (the event id is the
primary key, which doubles as the inbox), with its decoded payload as JSON.
"""
