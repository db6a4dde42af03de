"""Page tokens round-trip, bad tokens are client errors, page sizes get defaults and caps."""

from __future__ import annotations

import pytest

from services.runtime import InvalidArgument
from services.runtime.paging import decode_page_token, encode_page_token, page_size


def test_token_round_trips_and_is_url_safe():
    """A position encodes to a URL-safe token and decodes back unchanged."""
    position = {"t": "2026-01-01T00:00:00Z", "id": "a/b+c?"}
    token = encode_page_token(position)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_page_token(token) == position


def test_empty_token_means_first_page():
    """An empty token decodes to None: start from the beginning."""
    assert decode_page_token("") is None


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "WzEsMl0"])
def test_bad_token_is_invalid_argument_on_page_token(token):
    """Garbage, non-JSON and non-object tokens raise INVALID_ARGUMENT naming page_token."""
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token)
    assert caught.value.violations[0].field == "page_token"


def test_page_size_defaults_and_caps():
    """0 means the default; larger requests are capped; negative ones are rejected."""
    assert page_size(0) == 50
    assert page_size(7) == 7
    assert page_size(10_000, maximum=500) == 500
    with pytest.raises(InvalidArgument):
        page_size(-1)
