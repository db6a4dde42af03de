"""The audit service: an append-only trail of every event, and operator access to DLQs."""
