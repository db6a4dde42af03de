"""Notifications: one simulated e-mail per terminal order event (gRPC port 50054).

Consumes OrderConfirmed and OrderCancelled; looks the customer up with orders.GetOrder (the
events carry only the order id) and records the message it would have sent.
"""
