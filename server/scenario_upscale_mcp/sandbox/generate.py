"""`POST /generate/custom/{modelId}`: the inputs validated as the API does, dry runs, plan limits.

The inputs are checked against the model's entry in the catalogue: unknown fields refused, bounds,
choices, types and asset ids checked, the first bad field named. A dry run answers the cost (HTTP
269) and starts nothing; a real run is refused beyond the plan's limit of jobs in flight, or for a
model the plan lacks, and otherwise starts a job.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scenario_upscale_mcp.sandbox.assets import AssetStore
from scenario_upscale_mcp.sandbox.catalogue import ModelInput, ModelSpec, model_named
from scenario_upscale_mcp.sandbox.errors import ApiError, asset_not_found, bad_request
from scenario_upscale_mcp.sandbox.faults import Faults
from scenario_upscale_mcp.sandbox.jobs import JobStore
from scenario_upscale_mcp.sandbox.request_parsing import bool_query, json_object, reject_unknown_query
from scenario_upscale_mcp.sandbox.wire_format import is_number, shown

logger = logging.getLogger(__name__)

# The query parameters the SDK sends (its generate_run_model_params.py names them).
_GENERATE_QUERY = ("dryRun", "ipDetection", "projectId")
_DRY_RUN_VALUES = ("true", "api")


class Generation:
    """The generate route, over the assets (its inputs) and the jobs (what it starts)."""

    def __init__(self, assets: AssetStore, jobs: JobStore, faults: Faults) -> None:
        self._assets = assets
        self._jobs = jobs
        self._faults = faults

    async def generate(self, request: Request) -> Response:
        reject_unknown_query(request, _GENERATE_QUERY)
        dry_run = request.query_params.get("dryRun")
        if dry_run is not None and dry_run not in _DRY_RUN_VALUES:
            # Anything else might be taken for a real run: refused rather than billed.
            raise bad_request(
                f'"dryRun" must be one of {", ".join(_DRY_RUN_VALUES)} (got {dry_run!r})',
                field="dryRun",
                allowedValues=list(_DRY_RUN_VALUES),
            )
        bool_query(request, "ipDetection")  # Accepted and ignored: detection runs on Enterprise plans only.
        model = model_named(request.path_params["modelId"])
        # Made up: a model the plan lacks is refused before anything else, dry runs included.
        self._check_model_access(model)
        inputs = self._validated_inputs(model, await json_object(request))
        source = self._assets.assets[inputs["image"]]
        factor = float(inputs.get("upscaleFactor", model.input("upscaleFactor").default))
        cost = model.cost(source.width, source.height, factor)
        costs = {
            "creativeUnitsCost": cost,
            "creativeUnitsDiscount": 0,
            "costDetails": {"custom-generation": cost},
        }
        if dry_run is not None:
            # The real API's 269 carries an empty job (SCENARIO_API.md §1), outside the SDK's types.
            return JSONResponse({**costs, "job": {}}, status_code=269)
        self._enforce_plan_limit()
        job = self._jobs.start(model.id, inputs, source, factor, cost)
        if self._faults.accept_then_500 > 0:
            self._faults.accept_then_500 -= 1
            logger.info("sandbox: job %s accepted and billed, answering 500 (accept_then_500)", job.id)
            raise ApiError(500, "InternalServerError", "Internal server error (simulated by the sandbox)")
        return JSONResponse({"job": job.to_api(), **costs})

    def _check_model_access(self, model: ModelSpec) -> None:
        if model.id not in self._faults.restricted_models:
            return
        raise ApiError(
            403,
            "ModelAccessRestrictedError",
            f"Your plan does not include the model {model.id}; upgrade to use it (simulated by the sandbox)",
            # Made up: how a plan is named in `requiredPlan`.
            {"modelId": model.id, "requiredPlan": "pro"},
        )

    def _enforce_plan_limit(self) -> None:
        limit = self._faults.plan_limit
        if limit is None:
            return
        in_flight = self._jobs.in_flight()
        if in_flight < limit:
            return
        if limit == 0:
            reason = (
                "Your plan does not include parallel custom jobs: upgrade the plan to run this model "
                "(simulated by the sandbox)"
            )
        else:
            reason = (
                f"Your plan allows {limit} custom jobs in parallel; wait for a running job to finish "
                "(simulated by the sandbox)"
            )
        # The shape of a live capture (SCENARIO_API.md §5): actionValue is the count in use.
        details = {
            "actionName": "parallel-custom-jobs",
            "actionLimit": limit,
            "actionValue": in_flight,
            "limitScope": "team",
        }
        raise ApiError(429, "PlanLimitReachedError", reason, details)

    def _validated_inputs(self, model: ModelSpec, body: dict[str, Any]) -> dict[str, Any]:
        """The inputs as the real API keeps them, or an ApiError naming the first bad field."""
        names = [spec.name for spec in model.inputs]
        for key in body:
            if key not in names:
                raise bad_request(
                    f'Unknown field "{key}" for {model.id}; allowed fields: {", ".join(names)}',
                    field=key,
                    allowed=names,
                )
        accepted: dict[str, Any] = {}
        for spec in model.inputs:
            if spec.name not in body:
                if spec.required:
                    raise bad_request(f'"{spec.name}" is required', field=spec.name)
                continue
            value = body[spec.name]
            if spec.is_array and not isinstance(value, list):
                continue  # The real API silently drops a bare scalar where an array is expected.
            self._check_value(spec, value)
            accepted[spec.name] = value
        return accepted

    def _check_value(self, spec: ModelInput, value: Any) -> None:
        name = spec.name
        if spec.type == "file":
            if not isinstance(value, str) or not value:
                raise bad_request(f'"{name}" must be an asset id (asset_...)', field=name)
            if value not in self._assets.assets:
                raise asset_not_found(value, name)
        elif spec.type == "string":
            if not isinstance(value, str):
                raise bad_request(f'"{name}" must be a string', field=name)
            if spec.allowed_values and value not in spec.allowed_values:
                raise bad_request(
                    f'"{name}" must be one of {", ".join(spec.allowed_values)} (got {value!r})',
                    field=name,
                    allowedValues=list(spec.allowed_values),
                )
        elif spec.type == "boolean":
            if not isinstance(value, bool):
                raise bad_request(f'"{name}" must be a boolean (true or false)', field=name)
        elif spec.type == "number":
            self._check_number(spec, name, value)
        else:
            self._check_array(spec, value)

    def _check_number(self, spec: ModelInput, name: str, value: Any) -> None:
        low, high = spec.min, spec.max
        if low is not None and high is not None:
            wanted = f"a number between {shown(low)} and {shown(high)}"
        else:
            wanted = "a number"
        if not is_number(value) or (low is not None and value < low) or (high is not None and value > high):
            raise bad_request(f'"{name}" must be {wanted} (got {value!r})', field=name, min=low, max=high)

    def _check_array(self, spec: ModelInput, items: list[Any]) -> None:
        name = spec.name
        if spec.max_length is not None and len(items) > spec.max_length:
            raise bad_request(
                f'"{name}" accepts at most {spec.max_length} items (got {len(items)})',
                field=name,
                maxLength=spec.max_length,
            )
        for index, item in enumerate(items):
            item_name = f"{name}[{index}]"
            if spec.type == "number_array":
                if not is_number(item):
                    raise bad_request(f'"{item_name}" must be a number (got {item!r})', field=name)
            elif not isinstance(item, str) or not item:
                raise bad_request(f'"{item_name}" must be a non-empty string (got {item!r})', field=name)
            elif spec.type == "file_array" and item not in self._assets.assets:
                raise asset_not_found(item, name)
