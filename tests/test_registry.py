"""server.json, the official MCP Registry's entry: valid against the registry's published schema
(vendored in tests/registry/), one version everywhere, and only settings the server really reads."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import FormatChecker, ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import Draft7Validator, validator_for  # type: ignore[import-untyped]
from pydantic import AliasChoices, SecretStr

import scenario_upscale_mcp
from scenario_upscale_mcp.config import Settings

ROOT = Path(__file__).parents[1]
SERVER_JSON = ROOT / "server.json"
MANIFEST_JSON = ROOT / "manifest.json"
README = ROOT / "README.md"
SCHEMA_FILE = Path(__file__).parent / "registry" / "server.schema.json"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


SCHEMA: dict[str, Any] = load(SCHEMA_FILE)
SERVER: dict[str, Any] = load(SERVER_JSON)


def _is_uri(value: object) -> bool:
    """Draft 7's "uri" (an absolute URI): jsonschema checks it only with an optional package, so here."""
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme)) and not re.search(r"\s", value)


# Draft 7's own format checks, plus "uri" (the schema's only format those leave unchecked); a copy,
# so jsonschema's shared checker is left as it was.
FORMATS = FormatChecker(formats=Draft7Validator.FORMAT_CHECKER.checkers)
FORMATS.checks("uri")(_is_uri)


def validator() -> Any:
    """The validator of the draft the schema names in its own `$schema` (draft-07 today)."""
    cls = validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA, format_checker=FORMATS)


def env_names(name: str, field: Any) -> list[str]:
    """The environment variables pydantic-settings reads a field from: its validation aliases (taken
    as they are, without the prefix) when it has any, else the prefix plus the field's name."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    return [f"{Settings.model_config.get('env_prefix', '')}{name}".upper()]


SETTING_OF_ENV = {
    env.upper(): name for name, field in Settings.model_fields.items() for env in env_names(name, field)
}
SECRET_SETTINGS = {
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in getattr(field.annotation, "__args__", ())
}
LISTED = SERVER["packages"][0]["environmentVariables"]


def test_server_json_is_valid_against_the_registry_schema() -> None:
    assert validator().__class__ is Draft7Validator  # the schema says draft-07: a change there shows here
    errors = sorted(validator().iter_errors(SERVER), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_server_json_names_the_vendored_schema() -> None:
    # The vendored file is the schema server.json says it follows: refresh both together.
    assert SERVER["$schema"] == SCHEMA["$id"]
    assert re.fullmatch(
        r"https://static\.modelcontextprotocol\.io/schemas/\d{4}-\d{2}-\d{2}/server\.schema\.json",
        SCHEMA["$id"],
    )


def _set(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    bad = copy.deepcopy(document)
    target: Any = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return bad


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("name",), "scenario-upscale-mcp"),  # no reverse-DNS namespace
        (("description",), "x" * 101),  # the registry's limit is 100 characters
        (("$schema",), "not a uri"),  # format checking is on
        (("packages", 0, "version"), "latest"),
        (("packages", 0, "transport"), {"type": "carrier-pigeon"}),
        (("packages", 0, "environmentVariables", 0, "isSecret"), "yes"),
        (("packages", 0, "environmentVariables", 0, "format"), "path"),
    ],
    ids=["name", "description", "schema-uri", "version-latest", "transport", "isSecret", "format"],
)
def test_the_schema_check_rejects_a_bad_entry(path: tuple[str | int, ...], value: Any) -> None:
    bad = _set(SERVER, path, value)
    with pytest.raises(ValidationError):
        validator().validate(bad)


def test_versions_agree() -> None:
    assert MANIFEST_JSON.is_file(), (
        "manifest.json (the MCP Bundle manifest) is missing at the repo root; its version must equal "
        f"__version__ ({scenario_upscale_mcp.__version__})"
    )
    versions = {
        "__version__": scenario_upscale_mcp.__version__,
        "server.json version": SERVER["version"],
        "server.json packages[0].version": SERVER["packages"][0]["version"],
        "manifest.json version": load(MANIFEST_JSON).get("version"),
    }
    assert len(set(versions.values())) == 1, versions


def test_the_package_is_this_project_on_pypi_over_stdio() -> None:
    (package,) = SERVER["packages"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == "scenario-upscale-mcp"
    assert package["transport"] == {"type": "stdio"}


def test_every_listed_variable_is_a_setting_and_only_the_credentials_are_secret() -> None:
    names = [variable["name"] for variable in LISTED]
    assert len(names) == len(set(names)), names
    unknown = [name for name in names if name not in SETTING_OF_ENV]
    assert not unknown, f"not read by Settings: {unknown}; it reads {sorted(SETTING_OF_ENV)}"
    assert all(variable.get("description") for variable in LISTED)
    secret = {variable["name"] for variable in LISTED if variable.get("isSecret")}
    assert {SETTING_OF_ENV[name] for name in secret} == SECRET_SETTINGS == {"api_key", "api_secret"}
    # The names the README tells users to set, not the older spellings also accepted.
    assert secret == {"SCENARIO_SDK_API_KEY", "SCENARIO_SDK_API_SECRET"}


@pytest.mark.parametrize("variable", LISTED, ids=[variable["name"] for variable in LISTED])
def test_each_listed_variable_reaches_its_setting(
    variable: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Set as a host would, in the format server.json declares, the variable changes its setting."""
    for name in SETTING_OF_ENV:
        monkeypatch.delenv(name, raising=False)
    setting = SETTING_OF_ENV[variable["name"]]
    unset = getattr(Settings(), setting)
    if "default" in variable:  # the default server.json states is the server's own
        monkeypatch.setenv(variable["name"], variable["default"])
        assert getattr(Settings(), setting) == unset
    value = {"boolean": "true", "number": "3", "filepath": str(tmp_path / "out")}.get(
        variable.get("format", "string"), "some-value"
    )
    monkeypatch.setenv(variable["name"], value)
    assert getattr(Settings(), setting) != unset


def test_readme_carries_the_registry_ownership_line() -> None:
    """PyPI ownership: the registry looks for `mcp-name: <name>` in the package README (PyPI's
    description), followed by a boundary: not a name character, except a comment close."""
    text = README.read_text(encoding="utf-8")
    token = re.escape(f"mcp-name: {SERVER['name']}")
    assert re.search(token + r"(?:$|(?=[^A-Za-z0-9._/-])|(?=--!?>))", text, re.MULTILINE), (
        f"README.md lacks the registry's ownership line: <!-- mcp-name: {SERVER['name']} -->"
    )
