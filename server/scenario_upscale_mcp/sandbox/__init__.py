"""A simulator of the parts of Scenario's REST API this project uses.

It serves the tests, the demo, and anyone who wants to try the MCP server
without a Scenario account. It follows ``docs/SCENARIO_API.md``: the two upscale
models and their input validation, assets and a signed CDN, the multipart
upload flow, generate (with dry runs), jobs that move through the real statuses
over time and are listed in pages, and the documented error shapes. Knobs on
:class:`~scenario_upscale_mcp.sandbox.faults.Faults` inject the failures a client
must survive (plan limit, a plan without the action, a model the plan lacks, 5xx,
accepted-then-500, slow answers, failed jobs, expired URLs, truncated downloads).

Its answers follow Scenario's official SDK (scenario-sdk, generated from the
OpenAPI spec): ``tests/test_api_contract.py`` parses every one of them under the
SDK's response types with validation on. The one exception is the dry run's
HTTP 269, whose ``"job": {}`` is what the real API sends (SCENARIO_API.md §1).

It says it is a simulator wherever it answers: every response carries
``x-scenario-sandbox: simulator``, ``GET /`` says so, and injected faults say
they are simulated. It stands alone (starlette, uvicorn, Pillow, stdlib): it
imports nothing from the rest of the project, so it cannot drift along with the
client it is meant to check. Its time comes from an injected clock (``clock``),
so tests drive job timelines, upload imports and URL expiry without sleeping.

It keeps what it creates in memory, or in a state folder (``Sandbox(state_dir=...)``): then its
assets, jobs and uploads outlive the process, and every simulator opening the folder, one after
another or at once, serves the same simulated account. A job's status depends only on the time since
its stored creation date, so a job started before a restart finishes on schedule after it.

What is made up (the real API does not publish it) is marked ``Made up`` in the
modules: the cost formula, the timeline of job statuses, and error texts.

The modules, one concept each:

- ``app``: the :class:`Sandbox` facade, its route table, auth and the control routes
- ``catalogue``: the two models, their inputs and cost formula; ``GET /models/{id}``
- ``generate``: ``POST /generate``: input validation, dry runs, plan limits
- ``timeline``: a job's record and how it moves through the statuses over time
- ``jobs``: the job store, rendering outputs, ``GET /jobs/{id}``, cancel, and ``GET /jobs``
  (filters, pagination tokens)
- ``assets``: assets, format conversions and the signed CDN
- ``uploads``: the multipart upload flow and its presigned part URLs
- ``signed_urls``: the HMAC-signed, expiring URLs of the CDN and the parts
- ``imaging``: what Pillow does (sniffing, the real resize, conversions)
- ``faults``: the fault knobs
- ``errors``, ``request_parsing``, ``wire_format``: error shapes, how requests are read,
  how ids, dates and numbers are written
- ``clock``: the one time source
- ``storage``: blobs and tables, in memory; ``persistence``: the same in a state folder (SQLite and
  blob files), shared by processes
- ``serving``: running it with uvicorn on loopback

Like every package here, this ``__init__`` imports nothing: ``Sandbox`` is in ``app``,
``serve_in_thread`` in ``serving``.
"""
