"""Load: many MCP sessions at once over streamable HTTP against one server process, then two sharing a ledger.

Everything is spawned as a user would: the simulator (`scenario-upscale-mcp sandbox`, jobs of
`--job-seconds`, in memory) and the server (`scenario-upscale-mcp --transport http` on 127.0.0.1, a
port it picks, SCENARIO_SANDBOX=1 against that simulator). Each of `--sessions` MCP sessions (half in
the 2026-07-28 protocol, half with the initialize handshake) lists the tools, then does what an
assistant does, in a loop, for about `--seconds`: an `upscale_v3` dry run, `upscale_v3` with
`wait: 0` (a small PNG of its own each time, so no two requests are identical), `wait_for_jobs` on
that job, and `download_assets` of it. The sessions start spread over one job's length.

The reference, measured first in the same run: one session alone on each server process (which also
warms it up), the same four calls, one at a time; medians without the first (cold) call of each kind.

Tool-call overhead, per kind of call:
- dry run, submit (`wait: 0`: upload + generate), download: the answer time; none waits for a job.
- wait_for_jobs: the answer time after the server saw the job finished (when its 100 % progress
  notification reached the client): saving the output, and the answer. Beside it, "job done →
  answer": the answer time minus the job's remaining simulated time (its success in the simulator's
  own timeline), which adds the poll schedule's lag (1 s growing to 5 s by default: a design choice).

Counts: jobs submitted; billed twice (jobs in the simulator beyond one per distinct request, or two
jobs for one request key in the ledger: must be 0); lost (a submitted job not at success in both the
simulator and the ledger, or with no saved file on disk: 0); failed calls (an error, a timeout, an
unexpected answer: 0). Measured too: tool calls per second, the API requests per second the server
made, server peak RSS (the kernel's high-water mark, VmHWM) and CPU (process CPU seconds / wall), the
CPU of the clients and the simulator, which share this machine's cores, the load average, and how long
each process's threads waited on the run queue for a CPU (schedstat): on a busy machine that wait,
not the server's own work, is most of the latency.

Then the same with two server processes on two ports sharing one SCENARIO_STATE_DIR (one ledger),
the sessions split between them; `--pairs` pairs of sessions, one on each process, send identical
requests to both at the same moment, every round: each pair must get one job between them.

Loopback only, bounded in count and time: each phase's load ends by `--seconds` (a session starts no
round it cannot finish by then, judging by its last one).

    python -m tests.benchmarks.load [--sessions 50] [--seconds 60] [--job-seconds 5] [--servers both] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from tests.images import png_bytes

AUTH = ("sandbox", "sandbox")
KINDS = ("dry run", "submit", "wait", "download")
LABELS = {
    "dry run": "dry run",
    "submit": "submit, wait 0",
    "wait": "wait, after done",
    "download": "download",
}
GOAL_P99_MS = 250.0
GOAL_RSS_MB = 300.0
MODES = ("auto", "legacy")  # the 2026-07-28 protocol, and the initialize handshake (a session header)
REFERENCE_ROUNDS = 8
SIMULATOR_URL = re.compile(r"(http://127\.0\.0\.1:\d+/v1)")
SERVER_URL = re.compile(r"serving MCP over streamable HTTP at (http://127\.0\.0\.1:\d+/mcp)")


# --- processes -------------------------------------------------------------------------------------


@dataclass
class Spawned:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


def command() -> list[str]:
    """`scenario-upscale-mcp`, the console script a user runs (`python -m` where it is not installed)."""
    script = Path(sys.executable).parent / "scenario-upscale-mcp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "scenario_upscale_mcp"]


@contextmanager
def spawned(
    arguments: list[str], env: dict[str, str], log: Path, pattern: re.Pattern[str]
) -> Iterator[Spawned]:
    """A process of ours, its stderr in `log`, once `pattern` shows in the log (its URL); stopped after."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command(), *arguments],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while (found := pattern.search(log.read_text(errors="replace"))) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{arguments[0]} did not start:\n{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.05)
        yield Spawned(process, found.group(1))
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def clean_environment(**env: str) -> dict[str, str]:
    """This environment without any SCENARIO_* setting of the user's, plus `env`."""
    return {name: value for name, value in os.environ.items() if not name.startswith("SCENARIO_")} | env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, name: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak since the process started), from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {name} for {pid}")


def queue_seconds(pid: int) -> float:
    """How long a process's threads have waited on a run queue for a CPU, in all (Linux schedstat; threads
    that have ended are not counted): the machine's contention, apart from the process's own work."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended meanwhile
    return waited / 1e9


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- sessions --------------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str
    session: int
    server: int
    started: float  # time.time(), to compare with the simulator's dates
    answered: float
    ok: bool
    alone: bool = False  # the reference: one session alone on its server
    error: str | None = None
    job_id: str | None = None
    seen: float | None = None  # wait_for_jobs: when its 100 % progress notification arrived
    saved: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """One assistant: its index, the server(s) it talks to (two for a pair sending identical requests
    to both processes at once), and its protocol mode."""

    index: int
    servers: list[int]
    mode: str


@dataclass
class Run:
    images: Path
    urls: list[str]
    job_seconds: float
    calls: list[Call] = field(default_factory=list)
    contents: set[bytes] = field(default_factory=set)  # every distinct image submitted: one job each
    pairs: list[tuple[str | None, ...]] = field(default_factory=list)  # the job ids each pair got

    @property
    def timeout(self) -> float:
        return self.job_seconds * 4 + 60

    def image(self, plan: Plan, number: int) -> list[Path]:
        """Image `number` of this assistant: a flat PNG whose colour no other has; a pair gets two files
        of identical content (one name each), so only their content makes them one request."""
        serial = (plan.index + 1) * 4096 + number
        data = png_bytes(64, 48, (serial % 256, serial // 256 % 256, serial // 65536 % 256))
        self.contents.add(data)
        paths = []
        for server in plan.servers:
            path = self.images / f"session{plan.index}-{number}-{server}.png"
            path.write_bytes(data)
            paths.append(path)
        return paths


async def call(
    run: Run,
    client: Client,
    kind: str,
    plan: Plan,
    server: int,
    alone: bool,
    tool: str,
    arguments: dict[str, Any],
) -> tuple[Call, dict[str, Any] | None]:
    """One tool call, timed and recorded: the record, and the structured answer if it succeeded."""
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if not seen and progress >= (total or 1.0):
            seen.append(time.time())

    record = Call(kind, plan.index, server, time.time(), 0.0, False, alone)
    run.calls.append(record)
    try:
        result = await client.call_tool(
            tool, arguments, progress_callback=on_progress if kind == "wait" else None
        )
    except Exception as exc:
        record.answered, record.error = time.time(), f"{type(exc).__name__}: {exc}"
        return record, None
    record.answered = time.time()
    record.seen = seen[0] if seen else None
    content = result.structured_content
    record.ok = not result.is_error and content is not None
    if not record.ok:
        record.error = str(result.content)[:300]
    return record, content if record.ok else None


async def submit(
    run: Run,
    client: Client,
    plan: Plan,
    server: int,
    image: Path,
    alone: bool,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> str | None:
    """A dry run, then (once `ready` returns) the same request submitted with `wait: 0`: the job id, or
    None if a call failed."""
    arguments = {"image": str(image)}
    await call(run, client, "dry run", plan, server, alone, "upscale_v3", arguments | {"dryRun": True})
    if ready is not None:
        await ready()
    record, submitted = await call(
        run, client, "submit", plan, server, alone, "upscale_v3", arguments | {"wait": 0}
    )
    job_id = submitted.get("jobId") if submitted else None
    if not isinstance(job_id, str):
        if record.ok:
            record.ok, record.error = False, f"no job id in {submitted}"
        return None
    record.job_id = job_id
    return job_id


async def wait_and_download(
    run: Run, client: Client, plan: Plan, server: int, job_id: str, alone: bool
) -> None:
    """wait_for_jobs on the job (it must succeed and be saved), then download_assets of it."""
    arguments = {"jobIds": [job_id], "timeout": run.timeout}
    record, waited = await call(run, client, "wait", plan, server, alone, "wait_for_jobs", arguments)
    record.job_id = job_id
    if waited is not None:
        [job] = waited["jobs"]
        record.saved = [output["path"] for output in job["outputs"] if output.get("path")]
        if job["status"] != "success" or not record.saved:
            record.ok, record.error = False, f"job {job_id}: {job['status']}, saved {record.saved}"
    arguments = {"jobId": job_id}
    record, downloaded = await call(
        run, client, "download", plan, server, alone, "download_assets", arguments
    )
    record.job_id = job_id
    if downloaded is not None:
        record.saved = [file["path"] for file in downloaded["files"] if file.get("path")]
        if not record.saved:
            record.ok, record.error = False, f"nothing saved for {job_id}"


async def one_round(run: Run, clients: list[Client], plan: Plan, number: int) -> None:
    """Dry run, submit with wait 0, wait_for_jobs, download_assets: on each of the assistant's sessions at once."""
    images = run.image(plan, number)
    job_ids: list[str | None] = [None] * len(clients)
    waiting: list[int] = []
    everyone_ready = anyio.Event()

    async def ready() -> None:
        """A pair submits at the same moment: each waits for the other's dry run to end."""
        waiting.append(1)
        if len(waiting) == len(clients):
            everyone_ready.set()
        await everyone_ready.wait()

    async def on_client(position: int) -> None:
        client, server = clients[position], plan.servers[position]
        job_id = job_ids[position] = await submit(run, client, plan, server, images[position], False, ready)
        if job_id is not None:
            await wait_and_download(run, client, plan, server, job_id, False)

    async with anyio.create_task_group() as group:
        for position in range(len(clients)):
            group.start_soon(on_client, position)
    if len(clients) > 1:
        run.pairs.append(tuple(job_ids))


async def assistant(run: Run, plan: Plan, start_at: float, deadline: float) -> None:
    """One assistant: its session(s) opened and the tools listed, as a host does, then rounds until
    `deadline`; it starts no round it cannot finish by then (judging by its last round)."""
    await anyio.sleep(max(0.0, start_at - time.time()))
    async with AsyncExitStack() as stack:
        clients = []
        for server in plan.servers:
            record = Call("connect", plan.index, server, time.time(), 0.0, False)
            try:
                client = Client(run.urls[server], mode=plan.mode, read_timeout_seconds=run.timeout + 60)
                clients.append(await stack.enter_async_context(client))
                await client.list_tools()
            except Exception as exc:
                record.answered, record.error = time.time(), f"{type(exc).__name__}: {exc}"
                run.calls.append(record)
                return
        round_seconds = run.job_seconds + 2.0  # a guess until the first round is timed
        number = 0
        while time.time() + round_seconds < deadline:
            began = time.time()
            await one_round(run, clients, plan, number)
            round_seconds = time.time() - began
            number += 1


async def reference(run: Run, server: int, rounds: int) -> None:
    """The reference (and warm-up): one session on `server`, `rounds` dry runs and submissions one after
    the other, then, once their jobs are done, wait_for_jobs and download_assets on each in turn."""
    plan = Plan(10_000 + server, [server], MODES[0])
    async with Client(run.urls[server], mode=plan.mode, read_timeout_seconds=run.timeout + 60) as client:
        await client.list_tools()
        jobs = []
        for number in range(rounds):
            [image] = run.image(plan, number)
            job_id = await submit(run, client, plan, server, image, True)
            if job_id is not None:
                jobs.append(job_id)
        await anyio.sleep(run.job_seconds + 0.2)
        for job_id in jobs:
            await wait_and_download(run, client, plan, server, job_id, True)


# --- one phase -------------------------------------------------------------------------------------


@dataclass
class Phase:
    servers: int
    sessions: int
    seconds: float
    job_seconds: float
    pairs: int  # pairs of sessions sending identical requests to two server processes at once


def plans(phase: Phase) -> list[Plan]:
    """The assistants: `pairs` with one session on each of two servers, the others one session each,
    spread over the servers in turn; modes alternate."""
    result = [Plan(index, [0, 1], MODES[index % 2]) for index in range(phase.pairs)]
    for index in range(phase.pairs, phase.sessions - phase.pairs):
        result.append(Plan(index, [index % phase.servers], MODES[index % 2]))
    return result


async def run_phase(phase: Phase, folder: Path) -> dict[str, Any]:
    images, state = folder / "images", folder / "state"
    images.mkdir()
    env = clean_environment(
        SCENARIO_SANDBOX="1",
        SCENARIO_ALLOWED_DIRS=str(images),
        SCENARIO_OUTPUT_DIR=str(folder / "output"),
        SCENARIO_STATE_DIR=str(state),  # one ledger for every server process of the phase
        SCENARIO_LOG_LEVEL="INFO",  # the default; the server logs its URL at INFO
    )
    with ExitStack() as stack:
        simulator = stack.enter_context(
            spawned(
                ["sandbox", "--port", "0", "--job-seconds", str(phase.job_seconds), "--in-memory"],
                env,
                folder / "simulator.log",
                SIMULATOR_URL,
            )
        )
        servers = [
            stack.enter_context(
                spawned(
                    ["--transport", "http", "--host", "127.0.0.1", "--port", "0"],
                    env | {"SCENARIO_BASE_URL": simulator.url},
                    folder / f"server-{number}.log",
                    SERVER_URL,
                )
            )
            for number in range(phase.servers)
        ]
        run = Run(images, [server.url for server in servers], phase.job_seconds)
        async with anyio.create_task_group() as group:
            for number in range(phase.servers):
                group.start_soon(reference, run, number, REFERENCE_ROUNDS)
        idle_kib = [memory_kib(server.pid, "VmRSS") for server in servers]
        cpu_before = [cpu_seconds(process.pid) for process in [*servers, simulator]]
        own_before = own_cpu_seconds()
        queued_before = [queue_seconds(process.pid) for process in [*servers, simulator]]
        own_queued_before = queue_seconds(os.getpid())
        requests_before = await simulator_request_count(simulator.url)
        load_before = os.getloadavg()[0]
        began = time.time()
        deadline = began + phase.seconds
        everyone = plans(phase)
        async with anyio.create_task_group() as group:
            for position, plan in enumerate(everyone):
                start_at = began + phase.job_seconds * position / len(everyone)
                group.start_soon(assistant, run, plan, start_at, deadline)
        wall = time.time() - began
        usage = {
            "cpu": [
                (cpu_seconds(process.pid) - before) / wall
                for process, before in zip([*servers, simulator], cpu_before, strict=True)
            ],
            "client_cpu": (own_cpu_seconds() - own_before) / wall,
            "queued": [
                (queue_seconds(process.pid) - before) / wall
                for process, before in zip([*servers, simulator], queued_before, strict=True)
            ],
            "client_queued": (queue_seconds(os.getpid()) - own_queued_before) / wall,
            "load": (load_before, os.getloadavg()[0]),
            "rss_idle_mb": [kib / 1024 for kib in idle_kib],
            "rss_peak_mb": [memory_kib(server.pid, "VmHWM") / 1024 for server in servers],
            "api_requests_per_s": (await simulator_request_count(simulator.url) - requests_before - 1) / wall,
        }
        simulated = await simulator_jobs(simulator.url)
    ledger = read_ledger(state / "sandbox" / "ledger.sqlite3")
    return figures(phase, run, wall, usage, simulated, ledger)


async def simulator_request_count(base_url: str) -> int:
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        count: int = (await http.get(f"{base_url.removesuffix('/v1')}/_sandbox/state")).json()["requestCount"]
    return count


async def simulator_jobs(base_url: str) -> dict[str, Any]:
    """The simulator's own record: every job it made (billed), with its status and when it succeeded."""
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
        state = (await http.get(f"{base_url.removesuffix('/v1')}/_sandbox/state")).json()
        jobs: dict[str, dict[str, Any]] = {}
        limiter = anyio.Semaphore(16)

        async def fetch(job_id: str) -> None:
            async with limiter:
                jobs[job_id] = (await http.get(f"{base_url}/jobs/{job_id}", auth=AUTH)).json()["job"]

        async with anyio.create_task_group() as group:
            for job_id in state["jobs"]:
                group.start_soon(fetch, job_id)
    return {
        "status": {job_id: job["status"] for job_id, job in jobs.items()},
        "succeeded_at": {
            job_id: datetime.fromisoformat(entry["date"].replace("Z", "+00:00")).timestamp()
            for job_id, job in jobs.items()
            for entry in job["statusHistory"]
            if entry["status"] == "success"
        },
    }


def read_ledger(path: Path) -> dict[str, Any]:
    """The shared ledger, read once the servers have stopped: each job's request key and status, and the
    files recorded as saved for it."""
    with closing(sqlite3.connect(path)) as db:
        jobs = {
            row[0]: (row[1], row[2]) for row in db.execute("SELECT job_id, request_key, status FROM jobs")
        }
        saved: dict[str, list[str]] = defaultdict(list)
        for job_id, saved_path in db.execute("SELECT job_id, path FROM downloads WHERE job_id IS NOT NULL"):
            saved[job_id].append(saved_path)
    return {"jobs": jobs, "saved": saved}


# --- figures ---------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 300 values is the 297th smallest); NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def overheads(calls: list[Call], cold: bool) -> dict[str, list[float]]:
    """Each call's overhead in seconds, by kind (see the module's docstring); without each server's first
    call of a kind unless `cold`."""
    result: dict[str, list[float]] = {kind: [] for kind in KINDS}
    first: set[tuple[str, int]] = set()
    for c in calls:
        if c.kind not in result or not c.ok:
            continue
        if not cold and (c.kind, c.server) not in first:
            first.add((c.kind, c.server))
            continue
        since = c.seen if c.kind == "wait" and c.seen is not None else c.started
        result[c.kind].append(c.answered - since)
    return result


def figures(
    phase: Phase,
    run: Run,
    wall: float,
    usage: dict[str, Any],
    simulated: dict[str, Any],
    ledger: dict[str, Any],
) -> dict[str, Any]:
    measured = [c for c in run.calls if not c.alone]
    loaded = overheads(measured, cold=True)
    by_itself = overheads([c for c in run.calls if c.alone], cold=False)
    late = [
        c.answered - max(c.started, simulated["succeeded_at"][c.job_id])
        for c in measured
        if c.kind == "wait" and c.ok and c.job_id in simulated["succeeded_at"]
    ]
    submitted = {c.job_id for c in run.calls if c.kind == "submit" and c.ok and c.job_id}
    # Lost: a submitted job that did not succeed, in the simulator and in the ledger, with a file on disk.
    saved_files: dict[str, list[str]] = defaultdict(list, ledger["saved"])
    for c in run.calls:
        if c.job_id:
            saved_files[c.job_id] = saved_files[c.job_id] + c.saved
    lost = sorted(
        job_id
        for job_id in submitted
        if simulated["status"].get(job_id) != "success"
        or ledger["jobs"].get(job_id, (None, None))[1] != "success"
        or not any(Path(path).is_file() for path in saved_files[job_id])
    )
    # Billed twice: more jobs in the simulator than distinct requests, or two jobs for one request key.
    billed = set(simulated["status"])
    keys = Counter(ledger["jobs"][job_id][0] for job_id in billed if job_id in ledger["jobs"])
    duplicate_keys = sum(count - 1 for count in keys.values())
    failed = [c for c in run.calls if not c.ok]
    p99 = {kind: percentile(values, 0.99) * 1000 for kind, values in loaded.items()}
    return {
        "servers": phase.servers,
        "sessions": phase.sessions,
        "seconds": wall,
        "calls": len(measured),
        "calls_per_s": sum(c.ok for c in measured) / wall,
        "cpu_ms_per_call": sum(usage["cpu"][:-1]) * wall / max(1, len(measured)) * 1000,
        "p50_ms": {kind: percentile(values, 0.5) * 1000 for kind, values in loaded.items()},
        "p99_ms": p99,
        "max_ms": {kind: max(values, default=float("nan")) * 1000 for kind, values in loaded.items()},
        "alone_ms": {
            kind: statistics.median(values) * 1000 if values else float("nan")
            for kind, values in by_itself.items()
        },
        "worst_p99_ms": max(p99.values()),
        "late_p50_s": percentile(late, 0.5),
        "late_p99_s": percentile(late, 0.99),
        **usage,
        "jobs_submitted": len(submitted),
        "billed_jobs": len(billed),
        "distinct_requests": len(run.contents),
        "duplicate_keys": duplicate_keys,
        "unrecorded_jobs": len(billed - set(ledger["jobs"])),
        "billed_twice": max(len(billed) - len(run.contents), duplicate_keys, 0),
        "lost": len(lost),
        "lost_ids": lost[:5],
        "failed_calls": len(failed),
        "failures": [f"{c.kind} (session {c.session}, server {c.server}): {c.error}" for c in failed[:5]],
        "pairs": len(run.pairs),
        "pairs_one_job": sum(1 for ids in run.pairs if None not in ids and len(set(ids)) == 1),
    }


def report(phase: Phase, result: dict[str, Any]) -> None:
    where = "one server process" if phase.servers == 1 else f"{phase.servers} server processes, one ledger"
    print(
        f"{phase.sessions} sessions over streamable HTTP, {where}; jobs of {phase.job_seconds:g} s; "
        f"{result['seconds']:.0f} s of load (load average {result['load'][0]:.1f} → {result['load'][1]:.1f} "
        f"on {os.cpu_count()} cores)"
    )
    print(
        f"  calls                  {result['calls']}: {result['calls_per_s']:.1f} tool calls/s "
        f"(and {result['api_requests_per_s']:.1f} API requests/s from the server)"
    )
    print("  overhead               p50      p99      max   one session alone (median)")
    for kind in KINDS:
        print(
            f"    {LABELS[kind]:19s} {result['p50_ms'][kind]:5.0f} ms {result['p99_ms'][kind]:5.0f} ms "
            f"{result['max_ms'][kind]:5.0f} ms   {result['alone_ms'][kind]:5.0f} ms"
        )
    print(
        f"    worst p99            {result['worst_p99_ms']:.0f} ms (goal ≤ {GOAL_P99_MS:.0f} ms); job done → answer "
        f"p50 {result['late_p50_s']:.2f} s, p99 {result['late_p99_s']:.2f} s (with the poll schedule's lag)"
    )
    rss = ", ".join(
        f"{idle:.0f} → {peak:.0f}"
        for idle, peak in zip(result["rss_idle_mb"], result["rss_peak_mb"], strict=True)
    )
    cpu = ", ".join(f"{share:.0%}" for share in result["cpu"][:-1])
    print(f"  server RSS             {rss} MB (after the reference → peak; goal ≤ {GOAL_RSS_MB:.0f} MB)")
    print(
        f"  CPU / wall             server {cpu}; simulator {result['cpu'][-1]:.0%}; "
        f"the {phase.sessions} clients {result['client_cpu']:.0%}"
    )
    queued = ", ".join(f"{share:.0%}" for share in result["queued"][:-1])
    print(
        f"  waiting for a CPU      run-queue wait of all threads per second: server {queued}; simulator "
        f"{result['queued'][-1]:.0%}; clients {result['client_queued']:.0%} (the machine's contention)"
    )
    print(
        f"  server CPU per call    {result['cpu_ms_per_call']:.1f} ms (all server processes, this mix of calls)"
    )
    print(
        f"  jobs                   {result['jobs_submitted']} submitted; the simulator billed {result['billed_jobs']} "
        f"for {result['distinct_requests']} distinct requests (the reference's included)"
    )
    print(
        f"  billed twice           {result['billed_twice']} (ledger: {result['duplicate_keys']} extra jobs for one "
        f"request key, {result['unrecorded_jobs']} billed jobs missing)"
    )
    if result["pairs"]:
        print(
            f"  identical requests     {result['pairs']} pairs sent to both processes at once: "
            f"{result['pairs_one_job']} got one job between them"
        )
    print(f"  lost                   {result['lost']} {' '.join(result['lost_ids'])}")
    print(f"  failed calls           {result['failed_calls']}")
    for failure in result["failures"]:
        print(f"    {failure}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description="MCP sessions over streamable HTTP at once: overhead, memory, CPU; nothing lost or billed twice"
    )
    parser.add_argument(
        "--sessions", type=int, default=None, help="MCP sessions at once (default 50; quick 10)"
    )
    parser.add_argument("--seconds", type=float, default=None, help="load per phase (default 60; quick 15)")
    parser.add_argument(
        "--job-seconds", type=float, default=None, help="simulated job length (default 5; quick 2)"
    )
    parser.add_argument(
        "--servers",
        choices=("1", "2", "both"),
        default="both",
        help="one server process, two, or both in turn",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="two servers: session pairs sending identical requests (sessions/10)",
    )
    parser.add_argument("--quick", action="store_true", help="10 sessions, 15 s per phase, jobs of 2 s")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sessions = args.sessions or (10 if args.quick else 50)
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    job_seconds = args.job_seconds or (2.0 if args.quick else 5.0)
    results: dict[str, dict[str, Any]] = {}
    for servers in {"1": [1], "2": [2], "both": [1, 2]}[args.servers]:
        pairs = 0 if servers == 1 else args.pairs if args.pairs is not None else max(1, sessions // 10)
        phase = Phase(servers, sessions, seconds, job_seconds, min(pairs, sessions // 2))
        folder = Path(tempfile.mkdtemp(prefix="load-benchmark-"))
        try:
            result = anyio.run(run_phase, phase, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        report(phase, result)
        results[f"{servers} server{'s' if servers > 1 else ''}"] = result
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
