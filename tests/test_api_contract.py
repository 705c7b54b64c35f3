"""The simulator held to Scenario's spec through the official SDK's types (scenario-sdk, from its OpenAPI spec).

Every answer the sandbox gives must parse under the SDK's response type *with validation on*. The SDK
itself builds responses without validating (`construct`: a missing field reads as None), so every check
here calls pydantic's `model_validate(..., strict=True)` explicitly, and one test shows it rejects a wrong
answer. The one answer outside the SDK's types is the dry run's HTTP 269, whose `job` is `{}` as the real
API sends it (SCENARIO_API.md §1): a test pins that exception down.

The other way round, the requests our client sends must fit the SDK's params types (TypedDicts whose
camelCase names are `PropertyInfo(alias=...)` annotations): unknown keys fail, values are checked strictly.

Everything runs in-process over `httpx.ASGITransport`; nothing opens a socket.
"""

from __future__ import annotations

import base64
import json
import re
import typing
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pydantic
import pytest
import scenario_sdk
from pydantic import TypeAdapter
from scenario_sdk import AsyncScenario
from scenario_sdk._utils import PropertyInfo, transform
from scenario_sdk.pagination import AsyncJobsCursor
from scenario_sdk.types import (
    AssetRetrieveParams,
    AssetRetrieveResponse,
    AssetUploadParams,
    AssetUploadResponse,
    GenerateRunModelParams,
    GenerateRunModelResponse,
    JobListParams,
    JobListResponse,
    JobRetrieveParams,
    JobRetrieveResponse,
    JobTriggerActionParams,
    JobTriggerActionResponse,
    ModelRetrieveParams,
    ModelRetrieveResponse,
    UploadCreateParams,
    UploadCreateResponse,
    UploadRetrieveParams,
    UploadRetrieveResponse,
    UploadTriggerActionParams,
    UploadTriggerActionResponse,
)
from scenario_sdk.types.assets import DownloadRequestParams, DownloadRequestResponse
from scenario_sdk.types.generate_run_model_response import Job as GeneratedJob
from scenario_sdk.types.job_retrieve_response import Job as RetrievedJob
from scenario_sdk.types.model_retrieve_response import ModelInput as SdkModelInput
from typing_extensions import is_typeddict

from scenario_upscale_mcp.api.client import ScenarioClient
from scenario_upscale_mcp.api.errors import ApiError
from scenario_upscale_mcp.api.transfers import FilePart
from scenario_upscale_mcp.clock import Clock
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.sandbox.app import Sandbox
from scenario_upscale_mcp.sandbox.catalogue import INPUT_TYPES, MODELS
from scenario_upscale_mcp.sandbox.timeline import JOB_STATUSES, SandboxJob
from tests.conftest import RecordingTransport, simulator
from tests.images import png_bytes

pytestmark = pytest.mark.anyio

BASE_URL = "http://sandbox.test/v1"
V3 = "model_upscale-v3"
TEXTURE = "model_sc-upscale-flux-texture"

Model = TypeVar("Model", bound=pydantic.BaseModel)


def strictly(model: type[Model], body: Any) -> Model:
    """Parse an answer under an SDK type with validation on (and no lax coercion of "1" to 1.0)."""
    return model.model_validate(body, strict=True)


def literal_values(annotation: Any) -> set[Any]:
    """The values of a Literal, under any Optional/List wrapping."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return set().union(*(literal_values(arg) for arg in typing.get_args(annotation)))


class DocumentedError(pydantic.BaseModel):
    """The error body SCENARIO_API.md §5 documents; the SDK types no error bodies."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    reason: str
    name: str
    details: dict[str, Any] | None = None


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def sim(shared_clock: Clock) -> Sandbox:
    """The simulator on the shared fake clock (tests/conftest.py)."""
    return simulator(shared_clock, job_seconds=0.3)


@pytest.fixture
async def http(sim: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=("key", "secret")) as client:
        yield client


def scenario_sdk_for(sim: Sandbox, *, validating: bool = True) -> AsyncScenario:
    """Scenario's own SDK, never retrying, talking to the sandbox in-process."""
    return AsyncScenario(
        api_key="key",
        api_secret="secret",
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app)),
        max_retries=0,
        _strict_response_validation=validating,
    )


@pytest.fixture
async def sdk(sim: Sandbox) -> AsyncIterator[AsyncScenario]:
    """The SDK with its own response validation on: an answer outside its types raises."""
    async with scenario_sdk_for(sim) as client:
        yield client


async def upload(http: httpx.AsyncClient, data: bytes | None = None) -> str:
    response = await http.post(
        "/assets", json={"image": data_url(data or png_bytes(40, 30)), "name": "input.png"}
    )
    assert response.status_code == 200, response.text
    asset_id: str = response.json()["asset"]["id"]
    return asset_id


def move(sim: Sandbox, job: SandboxJob, fraction: float) -> None:
    """Put a job at `fraction` of its timeline, as if that much of its time had passed."""
    job.started = sim.clock.now() - fraction * job.duration


async def rendered(job: SandboxJob) -> None:
    """Wait for the render thread, so the job can succeed once its time is up."""
    assert await anyio.to_thread.run_sync(job.render_finished.wait, 10)


# --- the check itself -------------------------------------------------------------------------------


async def test_the_sdk_builds_answers_without_validating_so_the_check_validates_and_rejects_a_wrong_one(
    http: httpx.AsyncClient,
) -> None:
    asset_id = await upload(http)
    good = (await http.post(f"/generate/custom/{V3}", json={"image": asset_id})).json()
    job_id = good["job"]["jobId"]
    right = (await http.get(f"/jobs/{job_id}")).json()
    assert strictly(JobRetrieveResponse, right).job.job_id == job_id

    no_job_id = json.loads(json.dumps(right))
    del no_job_id["job"]["jobId"]
    status_as_int = json.loads(json.dumps(right))
    status_as_int["job"]["status"] = 3
    progress_as_text = json.loads(json.dumps(right))
    progress_as_text["job"]["progress"] = "0.5"

    # Left to itself the SDK takes anything: the missing id just reads as None.
    assert JobRetrieveResponse.construct(**no_job_id).job.job_id is None
    for wrong in (no_job_id, status_as_int, progress_as_text):
        with pytest.raises(pydantic.ValidationError):
            strictly(JobRetrieveResponse, wrong)


def test_the_simulators_job_statuses_and_input_types_are_exactly_the_sdks() -> None:
    assert set(JOB_STATUSES) == literal_values(RetrievedJob.model_fields["status"].annotation)
    assert set(JOB_STATUSES) == literal_values(typing.get_type_hints(JobListParams)["status"])
    assert set(INPUT_TYPES) == literal_values(SdkModelInput.model_fields["type"].annotation)


# --- jobs -----------------------------------------------------------------------------------------


async def test_a_job_parses_under_the_sdks_types_in_every_status_the_simulator_gives(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    sim.job_seconds = 10  # long enough to stay put; `move` takes each job along its timeline
    asset_id = await upload(http)
    seen: dict[str, JobRetrieveResponse] = {}

    accepted = await http.post(f"/generate/custom/{V3}", json={"image": asset_id, "upscaleFactor": 2})
    generated = strictly(GenerateRunModelResponse, accepted.json())
    assert generated.job.status == "pending" and generated.creative_units_cost is not None
    job = sim.jobs[generated.job.job_id]
    for fraction in (0.0, 0.1, 0.2, 0.5, 0.9):
        move(sim, job, fraction)
        answer = strictly(JobRetrieveResponse, (await http.get(f"/jobs/{job.id}")).json())
        seen[answer.job.status] = answer
    await rendered(job)
    move(sim, job, 1.5)
    succeeded = strictly(JobRetrieveResponse, (await http.get(f"/jobs/{job.id}")).json())
    seen[succeeded.job.status] = succeeded

    sim.faults.fail_next_jobs = 1
    failing = strictly(
        GenerateRunModelResponse, (await http.post(f"/generate/custom/{V3}", json={"image": asset_id})).json()
    )
    move(sim, sim.jobs[failing.job.job_id], 1.0)
    failed = strictly(JobRetrieveResponse, (await http.get(f"/jobs/{failing.job.job_id}")).json())
    seen[failed.job.status] = failed

    sim.faults.cancel_refused = False
    running = (await http.post(f"/generate/custom/{TEXTURE}", json={"image": asset_id})).json()["job"]
    canceled = await http.post(f"/jobs/{running['jobId']}/action", json={"action": "cancel"})
    seen[strictly(JobTriggerActionResponse, canceled.json()).job.status] = strictly(
        JobRetrieveResponse, (await http.get(f"/jobs/{running['jobId']}")).json()
    )

    assert set(seen) == set(JOB_STATUSES)
    assert succeeded.job.metadata.asset_ids and succeeded.job.progress == 1.0
    assert failed.job.metadata.error and failed.job.metadata.hint
    assert seen["in-progress"].job.billing is not None
    [output_id] = succeeded.job.metadata.asset_ids
    output = strictly(AssetRetrieveResponse, (await http.get(f"/assets/{output_id}")).json())
    assert (output.asset.source, output.asset.metadata.parent_job_id) == ("upscale", job.id)


async def test_the_jobs_list_parses_page_by_page_under_the_sdks_cursor(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    asset_id = await upload(http)
    created = [
        (await http.post(f"/generate/custom/{V3}", json={"image": asset_id})).json()["job"]["jobId"]
        for _ in range(5)
    ]

    pages: list[AsyncJobsCursor[JobListResponse]] = []
    params = {"pageSize": "2"}
    while True:
        page = strictly(AsyncJobsCursor[JobListResponse], (await http.get("/jobs", params=params)).json())
        pages.append(page)
        if page.next_pagination_token is None:
            break
        params["paginationToken"] = page.next_pagination_token

    assert [len(page.jobs) for page in pages] == [2, 2, 1]
    assert [job.job_id for page in pages for job in page.jobs] == created[::-1]
    assert all(job.metadata.input == {"image": asset_id} for page in pages for job in page.jobs)


async def test_an_empty_page_with_a_token_parses_but_the_sdks_own_paginator_stops_there(
    http: httpx.AsyncClient, sim: Sandbox, sdk: AsyncScenario
) -> None:
    """The SDK's jobs.list says a page may hold no jobs while `nextPaginationToken` is set ("keep
    paginating until it is absent"), yet its `has_next_page()` (and so `async for`) stops at an empty
    page. A client must follow the token itself."""
    sim.job_seconds = 30
    asset_id = await upload(http)
    for _ in range(3):
        await http.post(f"/generate/custom/{V3}", json={"image": asset_id})
    sim.faults.empty_job_pages = 2

    page = await sdk.jobs.list(page_size=2)
    auto_paged = [row.job_id async for row in sdk.jobs.list(page_size=2)]
    followed = await sdk.jobs.list(page_size=2, pagination_token=page.next_pagination_token or "")

    assert page.jobs == [] and page.next_pagination_token
    assert not page.has_next_page()
    assert auto_paged == []  # the paginator gave up on the empty page
    assert len(followed.jobs) == 2 and followed.next_pagination_token


# --- assets, uploads, models ------------------------------------------------------------------------


async def test_assets_parse_when_uploaded_in_either_form_read_and_converted(http: httpx.AsyncClient) -> None:
    data = png_bytes(40, 30)
    as_data_url = await http.post("/assets", json={"image": data_url(data), "name": "castle.png"})
    as_base64 = await http.post("/assets", json={"image": base64.b64encode(data).decode(), "name": "b.png"})
    uploaded = strictly(AssetUploadResponse, as_data_url.json())
    strictly(AssetUploadResponse, as_base64.json())

    read = strictly(AssetRetrieveResponse, (await http.get(f"/assets/{uploaded.asset.id}")).json())
    original = await http.post(f"/assets/{uploaded.asset.id}/download", json={})
    converted = await http.post(f"/assets/{uploaded.asset.id}/download", json={"targetFormat": "jpeg"})

    assert (read.asset.kind, read.asset.status, read.asset.source) == ("image", "success", "uploaded")
    assert read.asset.properties.size == len(data) and read.asset.properties.width == 40
    assert strictly(DownloadRequestResponse, original.json()).mime_type == "image/png"
    assert strictly(DownloadRequestResponse, converted.json()).mime_type == "image/jpeg"


async def test_an_upload_parses_when_created_completed_and_read_in_each_status(
    http: httpx.AsyncClient, sim: Sandbox
) -> None:
    data = png_bytes(40, 30)
    statuses: set[str] = set()
    outcomes: dict[str, UploadRetrieveResponse] = {}
    for content in (data, b"not an image"):
        created = await http.post(
            "/uploads",
            json={
                "fileName": "a.png",
                "contentType": "image/png",
                "fileSize": len(content),
                "parts": 1,
                "kind": "image",
            },
        )
        upload_info = strictly(UploadCreateResponse, created.json()).upload
        assert upload_info.parts is not None
        pending = strictly(UploadRetrieveResponse, (await http.get(f"/uploads/{upload_info.id}")).json())
        statuses.add(pending.upload.status)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app)) as storage:
            assert (await storage.put(upload_info.parts[0].url, content=content)).status_code == 200
        completed = await http.post(f"/uploads/{upload_info.id}/action", json={"action": "complete"})
        statuses.add(strictly(UploadTriggerActionResponse, completed.json()).upload.status)
        with anyio.fail_after(10):
            while True:
                read = strictly(UploadRetrieveResponse, (await http.get(f"/uploads/{upload_info.id}")).json())
                statuses.add(read.upload.status)
                if read.upload.status in {"imported", "failed"}:
                    outcomes[read.upload.status] = read
                    break
                await sim.clock.sleep(0.005)

    assert statuses == {"pending", "validating", "imported", "failed"}
    assert outcomes["imported"].upload.entity_id in sim.assets
    assert outcomes["failed"].upload.error_message


@pytest.mark.parametrize("model_id", [V3, TEXTURE])
async def test_both_model_schemas_parse_with_the_json_apis_input_types_and_required_rules(
    http: httpx.AsyncClient, model_id: str
) -> None:
    model = strictly(ModelRetrieveResponse, (await http.get(f"/models/{model_id}")).json()).model

    assert model.id == model_id and model.custom
    assert model.inputs is not None
    inputs = {item.name: item for item in model.inputs}
    assert list(inputs) == [spec.name for spec in MODELS[model_id].inputs]
    assert inputs["image"].type == "file" and inputs["image"].required is not None
    assert inputs["image"].required.always is True
    assert all(item.required is None for name, item in inputs.items() if name != "image")
    for item in model.inputs:  # the same catalogue that generate validates against
        spec = MODELS[model_id].input(item.name)
        assert (item.type, item.min, item.max, item.max_length) == (
            spec.type,
            spec.min,
            spec.max,
            spec.max_length,
        )
        assert (item.default, item.allowed_values) == (spec.default, list(spec.allowed_values or []) or None)


# --- errors and the dry run --------------------------------------------------------------------------


async def test_error_bodies_have_the_documented_shape_and_the_sdk_raises_its_error_for_each(
    http: httpx.AsyncClient, sim: Sandbox, sdk: AsyncScenario
) -> None:
    asset_id = await upload(http)

    bad = await http.post(f"/generate/custom/{V3}", json={"image": asset_id, "upscaleFactor": 99})
    missing = await http.get("/jobs/job_missing")
    too_big_page = await http.get("/jobs", params={"pageSize": "101"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE_URL) as anonymous:
        unauthorized = await anonymous.get("/jobs")
    sim.faults.restricted_models = [TEXTURE]
    restricted = await http.post(f"/generate/custom/{TEXTURE}", json={"image": asset_id})
    sim.faults.plan_limit = 0
    no_plan = await http.post(f"/generate/custom/{V3}", json={"image": asset_id})
    sim.faults.server_errors = 1
    server_error = await http.get("/jobs")

    answers = {
        400: bad,
        401: unauthorized,
        403: restricted,
        404: missing,
        429: no_plan,
        500: server_error,
    }
    for status, response in [*answers.items(), (400, too_big_page)]:
        assert response.status_code == status
        strictly(DocumentedError, response.json())
    assert restricted.json()["name"] == "ModelAccessRestrictedError"
    assert restricted.json()["details"]["requiredPlan"]
    assert no_plan.json()["name"] == "PlanLimitReachedError"
    assert no_plan.json()["details"]["actionLimit"] == 0

    # The SDK sorts them into its error classes, carrying the body.
    with pytest.raises(scenario_sdk.PermissionDeniedError) as denied:
        await sdk.generate.run_model(TEXTURE, body={"image": asset_id})
    with pytest.raises(scenario_sdk.RateLimitError) as limited:
        await sdk.generate.run_model(V3, body={"image": asset_id})
    with pytest.raises(scenario_sdk.NotFoundError):
        await sdk.jobs.retrieve("job_missing")
    with pytest.raises(scenario_sdk.BadRequestError):
        await sdk.jobs.list(page_size=101)
    assert denied.value.body == restricted.json()
    assert limited.value.body == no_plan.json()


async def test_a_dry_runs_269_is_the_one_answer_outside_the_sdks_types_its_job_is_empty(
    http: httpx.AsyncClient, sim: Sandbox, sdk: AsyncScenario
) -> None:
    asset_id = await upload(http)

    response = await http.post(f"/generate/custom/{V3}", params={"dryRun": "true"}, json={"image": asset_id})

    assert response.status_code == 269
    body = response.json()
    assert body["job"] == {}
    with pytest.raises(pydantic.ValidationError):
        strictly(GeneratedJob, body["job"])
    with pytest.raises(pydantic.ValidationError):
        strictly(GenerateRunModelResponse, body)
    # Everything but the job parses under the SDK's field types: that is what a client reads from a 269.
    for name, field in GenerateRunModelResponse.model_fields.items():
        key = field.alias or name
        if name != "job" and key in body:
            assert field.annotation is not None
            TypeAdapter(field.annotation).validate_python(body[key], strict=True)
    assert {"creativeUnitsCost", "creativeUnitsDiscount", "costDetails"} <= set(body)
    assert sum(body["costDetails"].values()) == body["creativeUnitsCost"]
    assert sim.jobs == {}

    # The SDK with validation on refuses the 269 for the same reason; without, its job reads as all None.
    with pytest.raises(scenario_sdk.APIResponseValidationError):
        await sdk.generate.run_model(V3, body={"image": asset_id}, dry_run="true")
    async with scenario_sdk_for(sim, validating=False) as lenient:
        estimate = await lenient.generate.run_model(V3, body={"image": asset_id}, dry_run="true")
    assert estimate.job.job_id is None and estimate.creative_units_cost == body["creativeUnitsCost"]


# --- the official SDK end to end ---------------------------------------------------------------------


async def test_scenarios_own_sdk_drives_the_simulator_with_validation_on(
    sdk: AsyncScenario, sim: Sandbox
) -> None:
    sim.job_seconds = 30  # every job stays pending for the status filter below
    schema = await sdk.models.retrieve(V3)
    uploaded = await sdk.assets.upload(name="castle.png", image=data_url(png_bytes(40, 30)))
    asset_id = uploaded.asset.id
    job = (await sdk.generate.run_model(V3, body={"image": asset_id, "upscaleFactor": 2})).job
    for _ in range(2):
        await sdk.generate.run_model(TEXTURE, body={"image": asset_id})
    listed = [row.job_id async for row in sdk.jobs.list(page_size=1)]  # auto-paging follows the tokens
    since = [row.job_id async for row in sdk.jobs.list(created_after="2000-01-01T00:00:00Z")]
    pending = [row.job_id async for row in sdk.jobs.list(status="pending", type="inference")]
    read = await sdk.jobs.retrieve(job.job_id)
    link = await sdk.assets.download.request(asset_id, target_format="webp")
    multipart = await sdk.uploads.create(
        file_name="big.png", content_type="image/png", file_size=10, parts=1, kind="image"
    )
    completed = await sdk.uploads.trigger_action(multipart.upload.id, action="complete")
    fetched = await sdk.uploads.retrieve(multipart.upload.id)

    assert schema.model.inputs is not None and schema.model.inputs[0].name == "image"
    assert sim.asset_image_forms == ["data_url"]
    assert listed == list(sim.jobs)[::-1] == since
    assert len(pending) == 3
    assert read.job.job_id == job.job_id
    assert link.mime_type == "image/webp"
    assert completed.upload.status == "validating" and fetched.upload.id == multipart.upload.id


# --- requests: what we send fits the SDK's params types ---------------------------------------------

# Params the SDK sends in the query string, never in a JSON body (see its resources/*.py).
QUERY_PARAMS = frozenset({"project_id", "dry_run", "ip_detection", "original_assets"})


def _unwrapped(hint: Any) -> Any:
    while typing.get_origin(hint) in (typing.Annotated, typing.Required, typing.NotRequired):
        hint = typing.get_args(hint)[0]
    return hint


def _fields_by_alias(params: type) -> dict[str, tuple[str, Any]]:
    """{name on the wire: (field name, annotation)} of an SDK params TypedDict."""
    fields: dict[str, tuple[str, Any]] = {}
    for name, hint in typing.get_type_hints(params, include_extras=True).items():
        aliases = [meta.alias for meta in getattr(hint, "__metadata__", ()) if isinstance(meta, PropertyInfo)]
        fields[next((alias for alias in aliases if alias), name)] = (name, hint)
    return fields


def _by_field_name(params: type, sent: Mapping[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    fields = _fields_by_alias(params)
    unknown = sorted(key for key in sent if key not in fields or fields[key][0] not in allowed)
    if unknown:
        raise AssertionError(f"{where}: {unknown} are not {params.__name__} fields sent there")
    renamed: dict[str, Any] = {}
    for key, value in sent.items():
        name, hint = fields[key]
        inner = _unwrapped(hint)
        if is_typeddict(inner) and isinstance(value, Mapping):
            value = _by_field_name(inner, value, f"{where}.{key}", set(typing.get_type_hints(inner)))
        renamed[name] = value
    return renamed


def check_body(params: type, body: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body against an SDK params TypedDict: no unknown keys, strict types, required keys present.

    Returns the body as those params (by field name), validated."""
    allowed = set(typing.get_type_hints(params)) - QUERY_PARAMS
    validated: dict[str, Any] = TypeAdapter(params).validate_python(
        _by_field_name(params, body, "body", allowed), strict=True
    )
    return validated


def check_query(params: type, query: Mapping[str, str]) -> None:
    """A query string against the same type: its query params only (all of them for a GET's type).

    Values in a URL are text, so they are checked leniently ("2" is an int), as the API parses them.
    """
    names = set(typing.get_type_hints(params))
    allowed = names if params in GET_PARAMS else names & QUERY_PARAMS
    hints = typing.get_type_hints(params, include_extras=True)
    for name, value in _by_field_name(params, query, "query", allowed).items():
        TypeAdapter(_unwrapped(hints[name])).validate_python(value)


GET_PARAMS = (
    JobListParams,
    JobRetrieveParams,
    AssetRetrieveParams,
    UploadRetrieveParams,
    ModelRetrieveParams,
)
# (method, path pattern) -> the SDK params type of that call.
ROUTES: list[tuple[str, str, type]] = [
    ("POST", r"/v1/assets", AssetUploadParams),
    ("POST", r"/v1/assets/[^/]+/download", DownloadRequestParams),
    ("GET", r"/v1/assets/[^/]+", AssetRetrieveParams),
    ("POST", r"/v1/generate/custom/[^/]+", GenerateRunModelParams),
    ("GET", r"/v1/jobs", JobListParams),
    ("GET", r"/v1/jobs/[^/]+", JobRetrieveParams),
    ("POST", r"/v1/jobs/[^/]+/action", JobTriggerActionParams),
    ("POST", r"/v1/uploads", UploadCreateParams),
    ("GET", r"/v1/uploads/[^/]+", UploadRetrieveParams),
    ("POST", r"/v1/uploads/[^/]+/action", UploadTriggerActionParams),
    ("GET", r"/v1/models/[^/]+", ModelRetrieveParams),
]


def params_of(request: httpx.Request) -> type:
    for method, pattern, params in ROUTES:
        if request.method == method and re.fullmatch(pattern, request.url.path):
            return params
    raise AssertionError(f"no SDK call for {request.method} {request.url.path}")


@pytest.mark.parametrize(
    ("params", "body"),
    [
        (AssetUploadParams, {"image": "data:image/png;base64,iVBORw0KGgo=", "name": "castle.png"}),
        (AssetUploadParams, {"image": "iVBORw0KGgo=", "name": "castle.png"}),
        (
            UploadCreateParams,
            {
                "fileName": "big.png",
                "contentType": "image/png",
                "fileSize": 7_000_000,
                "parts": 2,
                "kind": "image",
            },
        ),
        (UploadTriggerActionParams, {"action": "complete"}),
        (JobTriggerActionParams, {"action": "cancel"}),
        (DownloadRequestParams, {"targetFormat": "png"}),
    ],
)
def test_the_documented_request_bodies_fit_the_sdks_params(params: type, body: dict[str, Any]) -> None:
    """Each body validates as the params, and the SDK, given those params, sends that very body."""
    assert transform(check_body(params, body), params) == body


@pytest.mark.parametrize(
    ("params", "body"),
    [
        (AssetUploadParams, {"image": "data:image/png;base64,AAAA"}),  # "name" is required
        (AssetUploadParams, {"image": "AAAA", "name": "a.png", "collection": "c"}),  # unknown key
        (AssetUploadParams, {"image": "AAAA", "name": "a.png", "projectId": "p"}),  # a query param
        (UploadCreateParams, {"fileName": 3, "fileSize": 1, "parts": 1, "kind": "image"}),
        (UploadCreateParams, {"fileName": "a.png", "fileSize": "10", "parts": 1, "kind": "image"}),
        (UploadCreateParams, {"file_name": "a.png", "fileSize": 10, "parts": 1, "kind": "image"}),
        (UploadTriggerActionParams, {"action": "finish"}),
        (JobTriggerActionParams, {"action": "cancel", "force": True}),
        (DownloadRequestParams, {"targetFormat": "bmp"}),
    ],
)
def test_the_params_check_rejects_missing_unknown_misnamed_and_mistyped_fields(
    params: type, body: dict[str, Any]
) -> None:
    with pytest.raises((pydantic.ValidationError, AssertionError)):
        check_body(params, body)


async def test_the_requests_our_client_sends_fit_the_sdks_params(
    settings: Settings, sandbox: Sandbox, api: RecordingTransport, tmp_path: Path
) -> None:
    sandbox.faults.cancel_refused = False
    with_project = settings.model_copy(update={"project_id": "proj_1"})
    async with ScenarioClient(with_project, transport=api, retry_base_seconds=0) as client:
        await client.get_model(V3)
        asset = await client.create_asset("castle.png", png_bytes(40, 30), "image/png")
        await client.get_asset(asset.id)
        await client.convert_asset(asset.id, "jpeg")
        with suppress(ApiError):  # how the client reads a 269 is not this test's business; what it sends is
            await client.generate(V3, {"image": asset.id, "upscaleFactor": 2}, dry_run=True)
        answer = await client.generate(V3, {"image": asset.id, "upscaleFactor": 2, "preset": "balanced"})
        assert answer.job is not None
        await client.get_job(answer.job.job_id)
        await client.list_jobs(created_after="2000-01-01T00:00:00Z")
        await client.cancel_job(answer.job.job_id)
        data = png_bytes(40, 30)
        upload_info = await client.create_upload(
            file_name="castle.png", content_type="image/png", file_size=len(data), parts=1
        )
        part_file = tmp_path / "castle.png"
        part_file.write_bytes(data)
        await client.put_part(upload_info.parts[0].url, FilePart(part_file, 0, len(data)))
        await client.complete_upload(upload_info.id)
        await client.get_upload(upload_info.id)

    inputs_of = {model_id: {spec.name for spec in spec_.inputs} for model_id, spec_ in MODELS.items()}
    checked: set[type] = set()
    for request in api.requests:
        if not request.url.path.startswith("/v1/"):
            continue  # presigned part URLs and the CDN are object storage, not the API
        params = params_of(request)
        check_query(params, dict(request.url.params))
        if request.method == "POST":
            body = json.loads(request.content or b"{}")
            if params is GenerateRunModelParams:
                # The SDK types the body as `object`: its fields are the model's inputs (GET /models).
                assert isinstance(body, dict) and set(body) <= inputs_of[request.url.path.rsplit("/", 1)[1]]
            else:
                check_body(params, body)
        checked.add(params)
    assert checked == {params for _, _, params in ROUTES}
    # A part goes with its length announced (S3 refuses a chunked part) and no API credentials.
    [part_put] = [request for request in api.requests if request.method == "PUT"]
    assert (
        part_put.headers["content-length"] == str(len(data)) and "transfer-encoding" not in part_put.headers
    )
    assert "authorization" not in part_put.headers
    assert sandbox.asset_image_forms == ["data_url"]  # as Scenario's own clients send it (SCENARIO_API.md §3)
