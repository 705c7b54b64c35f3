"""An id the API does not know, said with the argument that holds it: "styleImages[1]: asset_x was not
found in your Scenario project", rather than the API's bare "Asset not found"."""

from __future__ import annotations

from collections.abc import Mapping

from scenario_upscale_mcp.api.errors import InputError, NotFoundError


def unknown_id(argument: str, value: str, exc: NotFoundError, advice: str = "") -> InputError:
    """The error for `value`, given as `argument`, which the API answered with 404 (`exc`)."""
    said = f" (the API said: {exc.reason})" if exc.reason else ""
    return InputError(
        f"{argument}: {value} was not found in your Scenario project{said}.{' ' + advice if advice else ''}"
    )


def field_of(exc: NotFoundError, fields: Mapping[str, str]) -> tuple[str, str] | None:
    """The argument (and its value) that a 404 is about: the one holding the asset id the API names in
    its details (`assetId`), or, when the API names a field (`field`), that one. None when neither says."""
    named = exc.details.get("assetId")
    for argument, value in fields.items():
        if isinstance(named, str) and value == named:
            return argument, value
    field = exc.details.get("field")
    if isinstance(field, str) and field in fields:
        return field, fields[field]
    return None
