"""A local fal queue over HTTPS, for CI: the real ``fal_client`` talks to it unchanged.

Start it (``fal-assets emulate`` or ``python -m fal_assets.emulator --port 0``) and run
the client in a process whose environment holds the printed ``FAL_RUN_HOST``,
``FAL_QUEUE_RUN_HOST`` and ``SSL_CERT_FILE`` *before* ``fal_client`` is imported (it reads
the hosts at import time). Any ``Authorization: Key <anything>`` is accepted; the key is
never logged or stored.

What it does like fal: submit / status (``IN_QUEUE`` with a 0-indexed position,
``IN_PROGRESS``, ``COMPLETED``) / result / cancel, on both the short queue URLs
(``owner/alias/requests/<id>``, what ``get_handle`` builds) and the long ones with the
endpoint sub-path; 422 bodies for invalid arguments (``fal_assets.validation``); at most
``concurrency`` jobs in progress, the rest wait in order; results in fal's shapes, with the
files at ``https://<host>/_media/<id>/<name>``; inputs as data URIs, local paths,
``file://`` URLs or this emulator's own media URLs. Rendering is the local renderer
(``fal_assets.jobs.run_job``) in a thread pool. Plain ``run()`` (the synchronous
``fal.run`` host) is not emulated: use the queue.

Billing: ``GET /_emulator/ledger`` lists what fal would have charged
(``fal_assets.pricing``) per completed request, nsfw-flagged ones included; never for
rejected or faulted submits, failed renders, or jobs cancelled while queued (a job
cancelled in progress finishes and is billed). ``arguments_sha256`` is the sha256 of the
submitted body as canonical JSON (sorted keys, no spaces). ``POST /_emulator/reset``
clears it (a JSON body ``{"faults": "...", "seed": N}`` also changes the faults).

Faults (``--faults 429=0.3,503=0.05,drop=0.02,hang=0.01,nsfw=0.01``), each drawn
independently per call from one ``random.Random(--seed)``:

- ``429``: ``{"detail": "Rate limit exceeded"}``; fal_client retries it itself.
- ``503``: ``{"detail": ..., "error_type": "runner_scheduling_failure"}`` with
  ``X-Fal-Error-Type``. It carries ``x-fal-request-id`` like every answer from fal's own
  servers, so fal_client does *not* retry it: the caller must.
- ``drop``: the TCP connection is aborted without an answer.
- ``hang``: no answer for ``--hang-seconds`` (60), then the connection is dropped.
- ``nsfw``: the job completes and is billed, with ``has_nsfw_concepts: [true]`` and
  black images, as fal does.

429/503/drop/hang hit submit, status and result calls (503/drop also media downloads).
On submit they all strike *before* the job is accepted, so a faulted submit enqueues and
bills nothing. That is the only safe place: fal's submit has no idempotency key, so a
connection lost *after* fal accepted a job leaves a paid job the client cannot know about,
and the client's own retry enqueues (and pays for) a second one. No client can make that
safe; the emulator does not pretend otherwise by faking it.
"""

from __future__ import annotations

from .faults import FAULT_KINDS, parse_faults
from .process import EmulatorProcess
from .queue import arguments_sha256
from .runner import run_emulator

__all__ = ["FAULT_KINDS", "EmulatorProcess", "arguments_sha256", "parse_faults", "run_emulator"]
