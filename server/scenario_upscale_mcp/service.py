"""The service: the one object the tools call. It owns what the server holds for its lifetime (the
settings, the API client, the ledger, the clock, the host-name resolver, this process's memory of
jobs the ledger could not record) and hands each layer below the dependencies that layer takes.

Everything is made on first use, so that start-up (spawn → tools/list) imports neither the HTTP
stack, nor pydantic-settings, nor the layers below: a host that only lists the tools never pays for
them, and the first tool call pays once. That is also why the layers are imported inside the
methods that use them.

The layers below never see this object: `jobs.submission` takes a `Submitter`, `images.uploads` an
`Uploader`, `images.resolving` the settings and a URL fetcher, `jobs.saving` and `jobs.watching` the
client and the clock. A test can call any of them with a fake client and a temporary ledger.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from functools import cached_property
from typing import TYPE_CHECKING

from scenario_upscale_mcp.clock import AnyioClock, Clock
from scenario_upscale_mcp.images.public_hosts import Resolver, system_resolver

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from pathlib import Path

    import httpx

    from scenario_upscale_mcp.api.answers import Job
    from scenario_upscale_mcp.api.client import ScenarioClient
    from scenario_upscale_mcp.api.errors import ScenarioError
    from scenario_upscale_mcp.config import Settings
    from scenario_upscale_mcp.images.reading import LocalImage
    from scenario_upscale_mcp.images.references import UrlReference
    from scenario_upscale_mcp.images.resolving import CheckedImage, ResolvedImage
    from scenario_upscale_mcp.images.uploads import Uploader
    from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger
    from scenario_upscale_mcp.jobs.ledger import JobRecord, Ledger
    from scenario_upscale_mcp.jobs.saving import NamingHint
    from scenario_upscale_mcp.jobs.spending import SpendingLimits
    from scenario_upscale_mcp.jobs.submission import Submission, Submitted, Submitter, UnrecordedJobs
    from scenario_upscale_mcp.outputs.writing import SavedFile

logger = logging.getLogger(__name__)


class Upscaler:
    """The server's lifetime state and the operations the tools call on it.

    `settings`, `client` and `ledger` are made on first use; `await upscaler.ledger(lambda db: ...)`
    runs a ledger operation on a worker thread. `aclose` closes whatever was opened.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._given_settings = settings
        self._transport = transport
        self.resolver: Resolver = resolver or system_resolver
        # The one clock: polling, waits, the API client's back-off and the ledger's timestamps all read it.
        self.clock: Clock = clock or AnyioClock()
        # Jobs the API accepted that the ledger failed to record, for the process's lifetime.
        self.unrecorded: UnrecordedJobs = {}
        self._resources = ExitStack()

    # --- what it owns, each made on first use ----------------------------------------------------

    @cached_property
    def settings(self) -> Settings:
        if self._given_settings is not None:
            return self._simulator_aware(self._given_settings)
        from scenario_upscale_mcp.config import Settings

        return self._simulator_aware(Settings())

    def _simulator_aware(self, settings: Settings) -> Settings:
        """`settings` in sandbox mode if SCENARIO_BASE_URL is a standalone simulator (see
        `api.simulator`: a loopback URL whose answer says so); in sandbox mode, dummy credentials.

        The simulator accepts any credentials, so the user's own are never sent to it; and its jobs go
        in the sandbox ledger, not the real one. Asked once, on first use: a simulator started after
        that is not seen (SCENARIO_SANDBOX=1 says so without asking)."""
        if not settings.sandbox and settings.base_url is not None and self._transport is None:
            from scenario_upscale_mcp.api.simulator import answers_as_simulator, is_loopback_url

            if is_loopback_url(settings.base_url):
                simulator = answers_as_simulator(settings.base_url)
                if simulator:
                    logger.info(
                        "SCENARIO_BASE_URL %s is the scenario-upscale-mcp simulator: no credentials "
                        "needed, jobs go in the sandbox ledger",
                        settings.base_url,
                    )
                    settings = settings.model_copy(update={"sandbox": True})
                elif simulator is None:
                    logger.warning(
                        "SCENARIO_BASE_URL %s did not answer, so it is taken for Scenario's API; if it is "
                        "the simulator, start it before the server, or set SCENARIO_SANDBOX=1",
                        settings.base_url,
                    )
        if settings.sandbox:
            from pydantic import SecretStr

            from scenario_upscale_mcp.config import SANDBOX_CREDENTIAL

            dummy = SecretStr(SANDBOX_CREDENTIAL)
            settings = settings.model_copy(update={"api_key": dummy, "api_secret": dummy})
        return settings

    @cached_property
    def client(self) -> ScenarioClient:
        from scenario_upscale_mcp.api.client import ScenarioClient

        settings = self.settings
        base_url = settings.base_url
        if settings.sandbox and base_url is None and self._transport is None:
            from scenario_upscale_mcp.sandbox.app import Sandbox
            from scenario_upscale_mcp.sandbox.serving import serve_in_thread

            # Its state beside the sandbox ledger: a restarted server finds its jobs again, and every
            # server process (one per host app) and a standalone simulator share one simulated account.
            try:
                simulator = Sandbox(state_dir=settings.simulator_state_dir)
            except RuntimeError as exc:  # The folder cannot be used: the simulator still can, in memory.
                logger.warning("%s; the simulator keeps its jobs in memory until the server stops", exc)
                simulator = Sandbox()
            # Closed after it stops serving; an output still rendering then is rendered by the next
            # process that reads its job.
            self._resources.callback(simulator.close, render_timeout=5.0)
            base_url = self._resources.enter_context(serve_in_thread(simulator))
            logger.info(
                "SCENARIO_SANDBOX=1: using the built-in simulator at %s (state in %s)",
                base_url,
                settings.simulator_state_dir,
            )
        if settings.credentials() is None:
            logger.warning("no credentials: set SCENARIO_SDK_API_KEY and SCENARIO_SDK_API_SECRET")
        return ScenarioClient(settings, base_url=base_url, transport=self._transport, clock=self.clock)

    @cached_property
    def ledger(self) -> AsyncLedger:
        """The job ledger, opened on its first operation (on a worker thread)."""
        from scenario_upscale_mcp.jobs.async_ledger import AsyncLedger

        return AsyncLedger(self._open_ledger)

    def _open_ledger(self) -> Ledger:
        from scenario_upscale_mcp.jobs.ledger import Ledger

        settings = self.settings
        # The simulator's jobs and assets are not Scenario's: they get a ledger of their own.
        folder = settings.sandbox_state_dir if settings.sandbox else settings.state_dir
        return Ledger.in_folder(folder, clock=self.clock.wall)

    async def aclose(self) -> None:
        """Close what was opened: the HTTP client, the ledger, and the simulator if one was started."""
        try:
            if "client" in self.__dict__:
                await self.client.aclose()
        finally:
            if "ledger" in self.__dict__:
                self.ledger.close()
            self._resources.close()

    @property
    def spending_limits(self) -> SpendingLimits:
        """SCENARIO_MAX_CREDITS_PER_CALL, _PER_DAY and SCENARIO_CONFIRM_ABOVE_CREDITS, as set."""
        from scenario_upscale_mcp.jobs.spending import SpendingLimits

        return SpendingLimits.from_settings(self.settings)

    # --- the dependencies the layers below take ---------------------------------------------------

    @property
    def submitter(self) -> Submitter:
        from scenario_upscale_mcp.jobs.submission import Submitter

        settings = self.settings
        return Submitter(
            client=self.client,
            ledger=self.ledger,
            clock=self.clock,
            unrecorded=self.unrecorded,
            max_parallel_jobs=settings.max_parallel_jobs,
            poll_initial_seconds=settings.poll_initial_seconds,
            poll_max_seconds=settings.poll_max_seconds,
        )

    @property
    def uploader(self) -> Uploader:
        from scenario_upscale_mcp.images.uploads import Uploader

        return Uploader(
            client=self.client,
            ledger=self.ledger,
            clock=self.clock,
            poll_initial_seconds=self.settings.poll_initial_seconds,
            poll_max_seconds=self.settings.poll_max_seconds,
        )

    async def fetch_image_url(self, reference: UrlReference, folder: Path, field: str) -> LocalImage:
        """An https input fetched into `folder` (public hosts only, size-capped) and checked as an image.

        A method rather than a value handed over at once: the API client is made only when a URL
        is actually fetched, after every local check passed.
        """
        from scenario_upscale_mcp.images.sources import fetch_url

        return await fetch_url(self.client, reference, self.settings, self.resolver, folder, field)

    # --- jobs -------------------------------------------------------------------------------------

    async def observe(self, job: Job) -> JobRecord:
        """Record what the API just said about a job; the ledger's record of it, as updated."""
        from scenario_upscale_mcp.jobs.bookkeeping import observe

        return await observe(self.ledger, job)

    async def submit(self, submission: Submission, *, allow_duplicate: bool, wait_budget: float) -> Submitted:
        """Submit a billed job, never twice (see `jobs.submission`)."""
        from scenario_upscale_mcp.jobs.submission import submit

        return await submit(
            self.submitter, submission, allow_duplicate=allow_duplicate, wait_budget=wait_budget
        )

    async def watch_job(
        self, job_id: str, *, wait_seconds: float, on_update: Callable[[Job], Awaitable[None]]
    ) -> Job:
        """Poll one job until it ends or `wait_seconds` pass, at the configured intervals."""
        from scenario_upscale_mcp.jobs.watching import watch_job

        return await watch_job(
            self.client,
            job_id,
            wait_seconds=wait_seconds,
            first_interval=self.settings.poll_initial_seconds,
            max_interval=self.settings.poll_max_seconds,
            on_update=on_update,
            clock=self.clock,
        )

    async def watch_jobs(
        self,
        job_ids: list[str],
        *,
        wait_seconds: float,
        on_update: Callable[[Job], Awaitable[None]],
        on_round: Callable[[Mapping[str, Job | ScenarioError]], Awaitable[None]],
    ) -> dict[str, Job | ScenarioError]:
        """Poll several jobs together until all end or `wait_seconds` pass, at the configured intervals."""
        from scenario_upscale_mcp.jobs.watching import watch_jobs

        return await watch_jobs(
            self.client,
            job_ids,
            wait_seconds=wait_seconds,
            first_interval=self.settings.poll_initial_seconds,
            max_interval=self.settings.poll_max_seconds,
            on_update=on_update,
            on_round=on_round,
            clock=self.clock,
        )

    async def save_job_outputs(
        self, job: Job, folder: Path, naming: NamingHint, *, target_format: str | None = None
    ) -> list[SavedFile]:
        """Save every output of a successful job into `folder`, named by `naming`."""
        from scenario_upscale_mcp.jobs.saving import save_job_outputs

        return await save_job_outputs(self.client, job, folder, naming, target_format=target_format)

    async def save_asset(
        self,
        asset_id: str,
        folder: Path,
        file_name_for: Callable[[str], str],
        *,
        target_format: str | None = None,
    ) -> SavedFile:
        """Save one asset into `folder` under `file_name_for(extension)`."""
        from scenario_upscale_mcp.jobs.saving import save_asset

        return await save_asset(self.client, asset_id, folder, file_name_for, target_format=target_format)

    # --- images -----------------------------------------------------------------------------------

    async def check_images(self, references: dict[str, str], scratch: Path) -> dict[str, CheckedImage]:
        """Check every image reference (keyed by field) and learn its identity; nothing is uploaded."""
        from scenario_upscale_mcp.images.resolving import check_images

        return await check_images(references, scratch, settings=self.settings, fetch_url=self.fetch_image_url)

    async def upload_images(self, checked: dict[str, CheckedImage]) -> dict[str, ResolvedImage]:
        """Turn checked images into asset ids, uploading each distinct content once."""
        from scenario_upscale_mcp.images.resolving import upload_images

        return await upload_images(self.uploader, checked)

    async def resolve_images(self, references: dict[str, str], scratch: Path) -> dict[str, ResolvedImage]:
        """Check every image reference, then upload what needs uploading: each to an asset id."""
        return await self.upload_images(await self.check_images(references, scratch))
