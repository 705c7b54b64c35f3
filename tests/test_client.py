"""The API client's choke point, against httpx.MockTransport fakes: error bodies, retries, no double billing."""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenario_upscale_mcp.api.client import JOB_LIST_MAX_PAGES, ScenarioClient
from scenario_upscale_mcp.api.errors import (
    ApiError,
    ApiUnreachableError,
    AuthenticationError,
    BadRequestError,
    InputError,
    MissingCredentialsError,
    ModelAccessRestrictedError,
    NotFoundError,
    PlanLimitReachedError,
    ServerError,
    SubmissionUncertainError,
    UploadError,
)
from scenario_upscale_mcp.api.transfers import FilePart
from scenario_upscale_mcp.config import Settings
from scenario_upscale_mcp.outputs.writing import save_download
from tests.fake_clock import FakeClock

pytestmark = pytest.mark.anyio

JOB = {"job": {"jobId": "job_1", "status": "queued", "progress": 0.1}}
Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, **overrides: object) -> tuple[ScenarioClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    values: dict[str, object] = {
        "api_key": "key",
        "api_secret": "s3cr3t-value",
        "base_url": "https://api.test/v1",
    }
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    client = ScenarioClient(
        settings, transport=httpx.MockTransport(record), retry_base_seconds=0.001, clock=FakeClock()
    )
    return client, seen


def failing_once(error: type[httpx.TransportError]) -> Handler:
    """Raises `error` (a timeout, a refused connection) for the first request, then answers JOB."""
    failed = False

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal failed
        if not failed:
            failed = True
            raise error(f"{error.__name__} on the first attempt", request=request)
        return httpx.Response(200, json=JOB)

    return answer


async def test_requests_carry_basic_auth_and_the_project_id() -> None:
    client, seen = make_client(lambda r: httpx.Response(200, json=JOB), project_id="proj_9")
    async with client:
        job = await client.get_job("job_1")

    assert job.job_id == "job_1" and job.status == "queued"
    [request] = seen
    assert request.headers["authorization"] == httpx.BasicAuth("key", "s3cr3t-value")._auth_header
    assert request.url.params["projectId"] == "proj_9"
    assert str(request.url).startswith("https://api.test/v1/jobs/job_1")


async def test_no_credentials_means_no_request_and_an_error_naming_the_variables() -> None:
    client, seen = make_client(lambda r: httpx.Response(200, json=JOB), api_key=None, api_secret=None)
    async with client:
        with pytest.raises(MissingCredentialsError) as caught:
            await client.get_job("job_1")

    assert "SCENARIO_SDK_API_KEY" in str(caught.value) and "SCENARIO_SDK_API_SECRET" in str(caught.value)
    assert seen == []


@pytest.mark.parametrize(
    ("status", "body", "error_type", "expected"),
    [
        (
            400,
            {"reason": "Unknown input: foo", "name": "BadRequestError"},
            BadRequestError,
            "Unknown input: foo",
        ),
        (401, {"message": "Invalid credentials"}, AuthenticationError, "Invalid credentials"),
        (404, {"reason": "Job not found", "name": "NotFoundError"}, NotFoundError, "Job not found"),
        (
            403,
            {
                "reason": "Model restricted",
                "name": "ModelAccessRestrictedError",
                "details": {"requiredPlan": "Pro"},
            },
            ModelAccessRestrictedError,
            "needs the Pro plan",
        ),
        (
            429,
            {
                "reason": "Limit reached",
                "name": "PlanLimitReachedError",
                "details": {"actionName": "parallel-custom-jobs", "actionLimit": 3},
            },
            PlanLimitReachedError,
            "limit of 3 on jobs running at once",
        ),
        (400, "plain text failure", BadRequestError, "plain text failure"),
    ],
)
async def test_error_bodies_become_typed_errors(
    status: int, body: object, error_type: type[Exception], expected: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    client, _ = make_client(answer)
    async with client:
        with pytest.raises(error_type) as caught:
            await client.get_asset("asset_1")
    assert expected in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


async def test_reads_are_retried_on_5xx_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(502),
            httpx.Response(200, json=JOB),
        ]
    )
    client, seen = make_client(lambda r: next(answers))
    async with client:
        job = await client.get_job("job_1")

    assert job.job_id == "job_1"
    assert len(seen) == 3


async def test_the_back_off_doubles_from_its_base_on_the_injected_clock() -> None:
    clock = FakeClock()
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(200, json=JOB)])
    settings = Settings(api_key="key", api_secret="s", base_url="https://api.test/v1")
    transport = httpx.MockTransport(lambda r: next(answers))
    async with ScenarioClient(settings, transport=transport, retry_base_seconds=2.0, clock=clock) as client:
        started = clock.now()
        job = await client.get_job("job_1")

    assert job.job_id == "job_1"
    assert clock.now() - started == pytest.approx(2.0 + 4.0, abs=1e-3)  # the base, then twice it


async def test_a_retry_after_date_is_read_on_the_injected_clocks_time_of_day() -> None:
    clock = FakeClock(wall_start=datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    in_three_seconds = email.utils.formatdate(clock.wall() + 3, usegmt=True)
    answers = iter(
        [httpx.Response(503, headers={"Retry-After": in_three_seconds}), httpx.Response(200, json=JOB)]
    )
    settings = Settings(api_key="key", api_secret="s", base_url="https://api.test/v1")
    transport = httpx.MockTransport(lambda r: next(answers))
    async with ScenarioClient(settings, transport=transport, clock=clock) as client:
        started = clock.now()
        await client.get_job("job_1")

    assert clock.now() - started == pytest.approx(3.0, abs=1e-2)


async def test_reads_give_up_after_three_attempts() -> None:
    client, seen = make_client(lambda r: httpx.Response(500, json={"reason": "boom"}))
    async with client:
        with pytest.raises(ServerError, match="boom"):
            await client.get_job("job_1")
    assert len(seen) == 3


async def test_reads_are_retried_on_timeouts() -> None:
    client, seen = make_client(failing_once(httpx.ReadTimeout))
    async with client:
        assert (await client.get_job("job_1")).job_id == "job_1"
    assert len(seen) == 2


async def test_a_generate_answered_with_500_is_never_retried() -> None:
    client, seen = make_client(lambda r: httpx.Response(500, json={"reason": "oops"}))
    async with client:
        with pytest.raises(SubmissionUncertainError, match="not sent again"):
            await client.generate("model_upscale-v3", {"image": "asset_1"})
    assert len(seen) == 1


async def test_a_generate_that_timed_out_after_sending_is_never_retried() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    client, seen = make_client(answer)
    async with client:
        with pytest.raises(SubmissionUncertainError):
            await client.generate("model_upscale-v3", {"image": "asset_1"})
    assert len(seen) == 1


async def test_a_generate_whose_connection_never_opened_is_retried() -> None:
    client, seen = make_client(failing_once(httpx.ConnectError))
    async with client:
        answer = await client.generate("model_upscale-v3", {"image": "asset_1"})
    assert answer.job is not None and len(seen) == 2


async def test_a_plan_limit_is_not_retried_hot() -> None:
    body = {"reason": "x", "name": "PlanLimitReachedError", "details": {"actionName": "parallel-custom-jobs"}}
    client, seen = make_client(lambda r: httpx.Response(429, json=body))
    async with client:
        with pytest.raises(PlanLimitReachedError):
            await client.generate("model_upscale-v3", {"image": "asset_1"})
    assert len(seen) == 1


async def test_a_dry_run_reads_the_269_answer() -> None:
    client, seen = make_client(lambda r: httpx.Response(269, json={"creativeUnitsCost": 12}))
    async with client:
        answer = await client.generate("model_upscale-v3", {"image": "asset_1"}, dry_run=True)
    assert answer.creative_units_cost == 12 and answer.job is None
    assert seen[0].url.params["dryRun"] == "true"


async def test_unreachable_api_says_so_without_secrets() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, seen = make_client(answer)
    async with client:
        with pytest.raises(ApiUnreachableError) as caught:
            await client.get_job("job_1")
    assert "https://api.test/v1" in str(caught.value) and "s3cr3t-value" not in str(caught.value)
    assert len(seen) == 3


async def test_downloads_send_no_api_credentials(tmp_path: Path) -> None:
    client, seen = make_client(lambda r: httpx.Response(200, content=b"png-bytes"))
    async with client, client.open_download("https://cdn.test/asset_1.png?sig=x") as download:
        path, size = await save_download(tmp_path, "asset_1.png", download)
    assert path.read_bytes() == b"png-bytes" and size == download.length == 9
    assert "authorization" not in seen[0].headers
    assert seen[0].headers["user-agent"].startswith("scenario-upscale-mcp/")


async def test_a_part_is_sent_whole_again_after_a_redirect_and_after_a_failure(tmp_path: Path) -> None:
    """A part, a byte range of a file, is read a slice at a time with its length announced; it can still
    be sent a second and a third time: after a 307 to another URL, and after a 503."""
    content = bytes(range(256)) * 8000  # 2 MB: the part is the middle megabyte, several slices long
    path = tmp_path / "image.png"
    path.write_bytes(content)
    part = FilePart(path, offset=500_000, length=1_000_000)
    answers = iter(
        [
            httpx.Response(307, headers={"Location": "https://storage-2.test/part-1?sig=y"}),
            httpx.Response(503),
            httpx.Response(200),
        ]
    )
    bodies: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return next(answers)

    client, seen = make_client(answer)
    async with client:
        await client.put_part("https://storage.test/part-1?sig=x", part)

    assert [str(request.url) for request in seen] == [
        "https://storage.test/part-1?sig=x",
        "https://storage-2.test/part-1?sig=y",
        "https://storage.test/part-1?sig=x",
    ]
    assert bodies == [content[500_000:1_500_000]] * 3
    assert all(request.headers["content-length"] == "1000000" for request in seen)
    assert not any("transfer-encoding" in request.headers for request in seen)


async def test_a_file_shorter_than_its_part_fails_the_upload_clearly(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"x" * 1000)
    client, _ = make_client(lambda request: httpx.Response(200))
    async with client:
        with pytest.raises(UploadError, match=r"image\.png ended before the part to upload did"):
            await client.put_part("https://storage.test/part-1?sig=x", FilePart(path, offset=0, length=2000))


async def test_a_generate_answered_200_with_no_json_is_uncertain_not_rejected() -> None:
    client, seen = make_client(lambda r: httpx.Response(200, text="<html>gateway</html>"))
    async with client:
        with pytest.raises(SubmissionUncertainError):
            await client.generate("model_upscale-v3", {"image": "asset_1"})
    assert len(seen) == 1


async def test_an_empty_success_answer_is_fine_for_a_non_billed_call() -> None:
    client, seen = make_client(lambda r: httpx.Response(204))
    async with client:
        await client.complete_upload("upload_1")  # raises nothing
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/v1/uploads/upload_1/action")]  # no retry


async def test_ids_stay_one_path_segment() -> None:
    client, seen = make_client(lambda r: httpx.Response(200, json=JOB))
    async with client:
        await client.get_job("a/../b?x=1")
    raw_path = seen[0].url.raw_path.decode()
    assert raw_path.split("/")[:3] == ["", "v1", "jobs"] and raw_path.count("/") == 3
    assert raw_path.startswith("/v1/jobs/a%2F..%2Fb%3Fx") and not seen[0].url.query


@pytest.mark.parametrize("job_id", [".", "..", ""])
async def test_an_id_that_would_mean_another_path_is_refused_before_any_request(job_id: str) -> None:
    client, seen = make_client(lambda r: httpx.Response(200, json=JOB))
    async with client:
        with pytest.raises(InputError, match="not a valid job id"):
            await client.get_job(job_id)
    assert seen == []


# --- Scenario's real answers, as its official SDK and its own clients show them (SCENARIO_API.md) ----


async def test_a_dry_run_answered_as_the_real_api_does_reads_only_the_cost() -> None:
    real_269 = {
        "creativeUnitsCost": 7,
        "creativeUnitsDiscount": 0,
        "costDetails": {"baseCost": 7},
        "job": {},  # the real API's empty job: never parsed as a job
    }
    client, seen = make_client(lambda r: httpx.Response(269, json=real_269))
    async with client:
        answer = await client.generate("model_upscale-v3", {"image": "asset_1"}, dry_run=True)
    assert answer.creative_units_cost == 7 and answer.creative_units_discount == 0 and answer.job is None
    assert len(seen) == 1


async def test_a_small_upload_is_sent_once_as_a_data_url() -> None:
    asset = {"asset": {"id": "asset_9", "mimeType": "image/png", "properties": {"size": 3}}}
    client, seen = make_client(lambda r: httpx.Response(200, json=asset))
    async with client:
        uploaded = await client.create_asset("castle.png", b"\x89PN", "image/png")
    assert uploaded.id == "asset_9"
    [request] = seen
    assert json.loads(request.content) == {"image": "data:image/png;base64,iVBO", "name": "castle.png"}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_asset("a.png", b"x", "image/png"),
        lambda c: c.create_upload(file_name="a.png", content_type="image/png", file_size=1, parts=1),
        lambda c: c.complete_upload("upload_1"),
        lambda c: c.cancel_job("job_1"),
        lambda c: c.generate("model_upscale-v3", {"image": "asset_1"}, dry_run=True),
    ],
)
async def test_posts_that_create_are_never_retried_on_a_5xx(call: Callable[[ScenarioClient], Any]) -> None:
    client, seen = make_client(lambda r: httpx.Response(503, json={"reason": "busy"}))
    async with client:
        with pytest.raises(ServerError):
            await call(client)
    assert len(seen) == 1


async def test_the_job_list_follows_the_pagination_token() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("paginationToken")
        number = int(token) if token else 1
        # Page 2 is empty but carries a token, which the API may do: the list goes on past it.
        rows = [] if number == 2 else [{"jobId": f"job_{number}_{i}", "status": "success"} for i in range(2)]
        more = {"nextPaginationToken": str(number + 1)} if number < 3 else {}
        return httpx.Response(200, json={"jobs": rows, **more})

    client, seen = make_client(page)
    async with client:
        jobs = await client.list_jobs(created_after="2026-12-01T00:00:00Z")
    assert [job.job_id for job in jobs] == [f"job_{n}_{i}" for n in (1, 3) for i in range(2)]
    assert len(seen) == 3
    assert all(r.url.params["pageSize"] == "100" for r in seen)
    assert all(r.url.params["createdAfter"] == "2026-12-01T00:00:00Z" for r in seen)


async def test_an_endless_job_list_is_read_only_a_few_pages_deep() -> None:
    def endless(request: httpx.Request) -> httpx.Response:
        row = {"jobId": f"job_{len(seen)}", "status": "success"}
        return httpx.Response(200, json={"jobs": [row], "nextPaginationToken": "again"})

    client, seen = make_client(endless)
    async with client:
        jobs = await client.list_jobs(created_after="2026-12-01T00:00:00Z")
    assert len(seen) == JOB_LIST_MAX_PAGES and len(jobs) == JOB_LIST_MAX_PAGES


async def test_a_plan_that_lacks_the_action_is_said_plainly_and_not_retried() -> None:
    body = {
        "reason": "Limit reached",
        "name": "PlanLimitReachedError",
        "details": {"actionName": "parallel-custom-jobs", "actionLimit": 0, "limitScope": "team"},
    }
    client, seen = make_client(lambda r: httpx.Response(429, json=body))
    async with client:
        with pytest.raises(PlanLimitReachedError) as caught:
            await client.generate("model_upscale-v3", {"image": "asset_1"})
    assert caught.value.not_in_plan
    assert "plan does not include jobs running at once" in str(caught.value)
    assert "limit of 0" not in str(caught.value)
    assert len(seen) == 1


async def test_the_sdks_own_debug_logging_never_shows_the_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asset = {"asset": {"id": "asset_9"}}
    client, _ = make_client(lambda r: httpx.Response(200, json=asset if r.method == "POST" else JOB))
    with caplog.at_level(logging.DEBUG):
        async with client:
            await client.get_job("job_1")
            await client.create_asset("a.png", b"x", "image/png")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "job_1" in logged  # the SDK did log the requests
    secret_header = httpx.BasicAuth("key", "s3cr3t-value")._auth_header
    assert "s3cr3t-value" not in logged and secret_header.split()[1] not in logged


async def test_an_answer_missing_what_it_should_carry_is_a_clear_api_error() -> None:
    client, _ = make_client(lambda r: httpx.Response(200, json={"unexpected": True}))
    async with client:
        with pytest.raises(ApiError, match="not in the expected shape"):
            await client.get_asset("asset_1")
