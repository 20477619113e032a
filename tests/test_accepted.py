"""The accepted log's group commit: every line durable before its call returns, fewer flushes."""

import json
import os
import threading

from fal_assets import accepted as accepted_module
from fal_assets.accepted import AcceptedLog


def test_concurrent_appends_share_fsyncs_and_each_returns_only_once_on_disk(tmp_path, monkeypatch):
    log = AcceptedLog(tmp_path / "accepted.log")
    flushed, calls = [], []
    real_write = AcceptedLog._write
    gate = threading.Event()

    def slow_write(self, data):
        gate.wait(5)  # the first flush waits until everyone queued: a slow disk
        real_write(self, data)
        flushed.extend(line for line in data.decode().splitlines())
        calls.append(len(data.decode().splitlines()))

    monkeypatch.setattr(AcceptedLog, "_write", slow_write)
    returned = []

    def accept(i):
        log.accepted(f"key-{i}", "fal-ai/flux-2-pro", f"req-{i}")
        returned.append(f"key-{i}")
        assert any(json.loads(line)["key"] == f"key-{i}" for line in flushed)  # on disk before it returned

    threads = [threading.Thread(target=accept, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    while len(log._pending) < 39:  # one flusher holds its batch, the rest queue behind it
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join(10)
    assert sorted(returned) == sorted(f"key-{i}" for i in range(40))
    assert sum(calls) == 40 and len(calls) <= 3  # 40 lines in a few flushes, not 40
    assert {log.last(f"key-{i}").request_id for i in range(40)} == {f"req-{i}" for i in range(40)}


def test_a_failed_flush_fails_its_callers_and_the_next_append_still_works(tmp_path, monkeypatch):
    log = AcceptedLog(tmp_path / "accepted.log")
    real_write = AcceptedLog._write
    failures = iter([OSError("disk full")])

    def flaky(self, data):
        failure = next(failures, None)
        if failure:
            raise failure
        real_write(self, data)

    monkeypatch.setattr(AcceptedLog, "_write", flaky)
    try:
        log.sending("k1", "fal-ai/flux-2-pro")
    except OSError:
        pass
    else:
        raise AssertionError("the failed flush must reach its caller")
    log.accepted("k2", "fal-ai/flux-2-pro", "req-2")
    lines = [json.loads(line) for line in (tmp_path / "accepted.log").read_text().splitlines()]
    assert [(line["key"], line["event"]) for line in lines] == [("k2", "accepted")]  # k1 was never sent
    assert accepted_module.SENDING == "sending" and os.path.getsize(tmp_path / "accepted.log") > 0
