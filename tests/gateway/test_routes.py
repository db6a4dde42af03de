"""Path template parsing and route selection (unit level, no servers)."""

from __future__ import annotations

import pytest

from gateway import RouteError
from gateway._routes import parse_template


def test_plain_and_verb_templates() -> None:
    """Variables match one segment; a trailing :verb is split off and must match literally."""
    regex, variables, literals, verb, openapi = parse_template("/v1/orders/{order_id}:cancel")
    assert verb is True
    assert literals == 2
    assert [v.name for v in variables] == ["order_id"]
    found = regex.match("/v1/orders/abc:cancel")
    assert found is not None
    assert found.group(variables[0].group) == "abc"
    assert regex.match("/v1/orders/abc") is None
    assert openapi == "/v1/orders/{order_id}:cancel"


def test_multi_segment_and_nested_variables() -> None:
    """{name=a/*/b/**} binds a slash-containing match; dotted paths name nested fields."""
    regex, variables, _, _, openapi = parse_template("/v1/{book.name=shelves/*/books/**}")
    found = regex.match("/v1/shelves/s1/books/x/y")
    assert found is not None
    assert found.group(variables[0].group) == "shelves/s1/books/x/y"
    assert variables[0].field_path == ("book", "name")
    assert regex.match("/v1/shelves/s1/other/x") is None
    assert openapi == "/v1/{book_name}"


@pytest.mark.parametrize(
    "template",
    ["v1/no-slash", "/v1/{bad-name}", "/v1/{a=}", "/v1//x", "/v1/pre{x}"],
)
def test_bad_templates(template: str) -> None:
    """Malformed templates raise RouteError naming the template."""
    with pytest.raises(RouteError, match="template"):
        parse_template(template)
