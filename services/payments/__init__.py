"""Payments: a simulated processor deciding each order's payment (gRPC port 50053, read-only).

Consumes OrderPlaced (authorize or decline) and OrderCancelled (refund an authorized payment);
publishes PaymentAuthorized, PaymentDeclined and PaymentRefunded through the outbox.
"""
