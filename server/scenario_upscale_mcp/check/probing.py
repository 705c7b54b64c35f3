"""Asking the API what the check needs to know, and keeping the answers; no wording here (`verdicts.py`).

In this order: each model as the API describes it (`GET /models/{modelId}`: whether this account may
use it, and its live input schema), then a small sample PNG uploaded as an asset (a dry run needs an
existing one), then a dry-run price of a 2x upscale of it with each model that could be read. Every
answer is kept in `Findings`; an error that makes every further request pointless stops the asking
with `Stopped`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenario_upscale_mcp.api.errors import (
    ApiUnreachableError,
    AuthenticationError,
    BadRequestError,
    MissingCredentialsError,
    ModelAccessRestrictedError,
    NotFoundError,
    PermissionDeniedError,
    ScenarioError,
)

if TYPE_CHECKING:
    from scenario_upscale_mcp.api.client import ScenarioClient

SAMPLE_EDGE = 256  # px: small enough to upload in a blink, large enough to be a plausible input
SAMPLE_NAME = "scenario-upscale-mcp-check.png"
SAMPLE_FACTOR = 2


@dataclass(frozen=True)
class CheckedModel:
    model_id: str
    name: str
    tool: str  # the tool whose committed input schema mirrors this model's inputs


CHECKED_MODELS: tuple[CheckedModel, ...] = (
    CheckedModel("model_upscale-v3", "Scenario Upscale V3", "upscale_v3"),
    CheckedModel("model_sc-upscale-flux-texture", "Scenario Texture Upscale", "upscale_texture"),
)


@dataclass
class ModelProbe:
    model: CheckedModel
    described: dict[str, Any] | None = None  # the `model` object of GET /models/{modelId}
    error: ScenarioError | None = None  # why this account cannot use the model (or it could not be asked)
    cost: float | None = None
    price_error: ScenarioError | None = None


@dataclass
class Findings:
    probes: list[ModelProbe]
    authenticated: bool = False  # some answer proved the API accepted the credentials
    first_error: ScenarioError | None = None
    sample_asset: str | None = None
    sample_error: ScenarioError | None = None


class Stopped(Exception):
    """A failure that makes every further request pointless: credentials missing or refused, the API
    unreachable, or a plain 403 to the sample's upload (about the key's project, not a model)."""

    def __init__(self, error: ScenarioError) -> None:
        super().__init__(str(error))
        self.error = error


async def ask(client: ScenarioClient, run: Findings) -> None:
    """Fill `run` with the API's answers; raise `Stopped` when asking further would be pointless."""
    for probe in run.probes:
        try:
            probe.described = await client.get_model(probe.model.model_id)
            run.authenticated = True
        except ScenarioError as error:
            _stop_if_fatal(error)
            _note(run, error)
            probe.error = error

    reachable = [probe for probe in run.probes if probe.described is not None]
    if not reachable:
        return
    try:
        asset = await client.create_asset(SAMPLE_NAME, sample_png(), "image/png")
        run.sample_asset = asset.id
        run.authenticated = True
    except ScenarioError as error:
        _stop_if_fatal(error, uploading=True)
        _note(run, error)
        run.sample_error = error
        return

    for probe in reachable:
        body = {"image": run.sample_asset, "upscaleFactor": SAMPLE_FACTOR}
        try:
            estimate = await client.generate(probe.model.model_id, body, dry_run=True)
        except ScenarioError as error:
            _stop_if_fatal(error)
            _note(run, error)
            if isinstance(error, PermissionDeniedError | NotFoundError):
                probe.error = error  # the account cannot generate with it: the model's own line says so
            else:
                probe.price_error = error
            continue
        run.authenticated = True
        probe.cost = estimate.creative_units_cost


def _note(run: Findings, error: ScenarioError) -> None:
    run.first_error = run.first_error or error
    # These answers come after authentication: the credentials were accepted.
    if isinstance(error, ModelAccessRestrictedError | NotFoundError | BadRequestError):
        run.authenticated = True


def _stop_if_fatal(error: ScenarioError, *, uploading: bool = False) -> None:
    if isinstance(error, MissingCredentialsError | AuthenticationError | ApiUnreachableError):
        raise Stopped(error)
    # A plain 403 to an upload is about the key and the project, not about a model.
    if uploading and type(error) is PermissionDeniedError:
        raise Stopped(error)


def sample_png() -> bytes:
    """A small PNG made in memory: the dry run needs an existing asset, and no user file is touched."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((SAMPLE_EDGE, SAMPLE_EDGE)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()
