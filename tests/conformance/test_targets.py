"""Every transport takes part in the conformance suite."""

from tests.conformance.targets import TRANSPORTS, available


def test_every_transport_has_a_conformance_target():
    """The suite runs against all three transports, not a subset."""
    assert available() == list(TRANSPORTS)
