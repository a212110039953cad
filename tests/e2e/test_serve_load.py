"""`smart serve` under load, for real: a server process on 127.0.0.1 and clients that are many,
idle, slow or gone. Each trial is bounded in count and in time (tests/serve_load.py)."""

from __future__ import annotations

import re

from smartcli import defaults
from tests import serve_load
from tests.serving import Served

WAIT = defaults.SERVE_REQUEST_TIMEOUT + 5  # past the server's request timeout, with room for a busy machine


def test_two_hundred_clients_idle_slow_and_vanishing_ones(sample_store, tmp_path):
    store, _ = sample_store
    served = Served("--store", store, env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    pid = served.process.pid
    try:
        start_lines = len(served.lines)
        # 200 searches at once: queued and all answered (a listen backlog of 5 timed 21 out).
        crowd = serve_load.concurrent_searches(served.url, clients=200, timeout=120)
        assert crowd["answered"] == 200, crowd

        # 100 keep-alive connections that go quiet: no thread each, and closed by the server.
        idle = serve_load.idle_connections(served.url, pid, connections=100, wait=WAIT)
        assert idle["threads_idle"] <= idle["threads_before"] + 2, idle
        assert idle["still_open"] == 0, idle

        # 200 clients that drip their request heads: no thread each, others still answered at
        # once, and each closed once its head is overdue.
        slow = serve_load.slow_headers(served.url, pid, connections=200, wait=WAIT, drip=2.0)
        assert slow["connections"] == 200 and slow["threads_most"] <= slow["threads_before"] + 2, slow
        assert isinstance(slow["ordinary_request_s"], float) and slow["ordinary_request_s"] < 5, slow
        assert slow["still_open"] == 0, slow

        # 200 clients that hang up or reset before their answer: nothing on stderr, still serving.
        gone = serve_load.early_disconnects(served.url, clients=200)
        assert gone["then_answered"] == 200, gone
    finally:
        assert served.stop() == 0
    logged = "".join(served.lines[start_lines:])
    assert not re.search(r"Traceback|Exception|Error", logged), logged
