"""Load trials against a running `smart serve` on 127.0.0.1 (tests/e2e/test_serve_load.py runs
them; ``python -m tests.serve_load URL PID`` runs them against any server, e.g. an older one, to
count the same trials before and after a change). Every trial is bounded in count and in time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def token_of(url: str) -> str | None:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("token")
    return values[0] if values else None


def address_of(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1", "load trials run against 127.0.0.1 only"
    return parts.hostname, parts.port


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def request_bytes(url: str, target: str, keep_alive: bool = True) -> bytes:
    host, port = address_of(url)
    token = token_of(url)
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def concurrent_searches(url: str, clients: int = 200, timeout: float = 60.0) -> dict:
    """``clients`` searches started at once, each on its own connection; how many were answered
    with a 200 and how many failed (timed out, refused, reset), and the slowest answer."""
    base = url.split("?")[0].rstrip("/")
    token = token_of(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    words = ("terminal", "wifi", "sourdough", "bicycle", "houseplants", "router", "chain", "starter")
    results: list = [None] * clients
    start = threading.Barrier(clients)

    def one(i):
        query = urllib.parse.quote(f"{words[i % len(words)]} {i}")
        start.wait()
        began = time.monotonic()
        try:
            request = urllib.request.Request(f"{base}/api/search?q={query}&k=5", headers=headers)
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = json.loads(response.read())
                results[i] = (
                    "ok" if response.status == 200 and "results" in body else f"status {response.status}",
                    time.monotonic() - began,
                )
        except urllib.error.HTTPError as exc:
            results[i] = (f"status {exc.code}", time.monotonic() - began)
        except Exception as exc:  # a timeout, a refusal, a reset: what the trial counts
            results[i] = (type(exc).__name__, time.monotonic() - began)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 30)
    failures: dict = {}
    for outcome in results:
        name = outcome[0] if outcome else "no answer"
        if name != "ok":
            failures[name] = failures.get(name, 0) + 1
    answered = sum(1 for r in results if r and r[0] == "ok")
    return {
        "clients": clients,
        "answered": answered,
        "failed": failures,
        "slowest_s": round(max((r[1] for r in results if r), default=0.0), 2),
        "seconds": round(time.monotonic() - began, 2),
    }


def _open(url: str) -> socket.socket:
    sock = socket.create_connection(address_of(url), timeout=10)
    return sock


def _still_open(sock: socket.socket) -> bool:
    """Whether the server has not closed ``sock`` (nothing unread is expected on it)."""
    sock.setblocking(False)
    try:
        data = sock.recv(1)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
    return bool(data)


def _read_response(sock: socket.socket) -> int:
    """Read one response with a Content-Length; its status."""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1])


def idle_connections(url: str, pid: int, connections: int = 100, wait: float = 30.0) -> dict:
    """``connections`` keep-alive connections that each get one answer and then say nothing; the
    server's threads while they idle, and how many it still holds open after ``wait`` seconds."""
    before = threads_of(pid)
    socks = []
    try:
        for _ in range(connections):
            sock = _open(url)
            sock.sendall(request_bytes(url, "/static/style.css"))
            _read_response(sock)
            socks.append(sock)
        during = threads_of(pid)
        time.sleep(wait)
        still = sum(_still_open(s) for s in socks)
        return {"connections": connections, "threads_before": before, "threads_idle": during, "open_after_s": wait, "still_open": still}
    finally:
        for s in socks:
            s.close()


def slow_headers(url: str, pid: int, connections: int = 200, wait: float = 30.0, drip: float = 2.0) -> dict:
    """``connections`` clients that send a request head a few bytes at a time, every ``drip``
    seconds, never finishing it; the server's threads meanwhile, whether an ordinary request is
    answered meanwhile, and how many of the slow ones are still open after ``wait`` seconds."""
    before = threads_of(pid)
    socks = []
    try:
        for _ in range(connections):
            try:
                sock = _open(url)
                sock.sendall(b"GET / HTTP/1.1\r\n")
                socks.append(sock)
            except OSError:
                break
        opened = len(socks)
        most = threads_of(pid)
        base = url.split("?")[0].rstrip("/")
        began = time.monotonic()
        answered_meanwhile = None
        deadline = began + wait
        n = 0
        while time.monotonic() < deadline:
            for s in socks:
                try:
                    s.sendall(f"X-Slow-{n}: 1\r\n".encode())
                except OSError:
                    pass
            n += 1
            most = max(most, threads_of(pid))
            if answered_meanwhile is None:
                try:
                    token = token_of(url)
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    t0 = time.monotonic()
                    with urllib.request.urlopen(urllib.request.Request(base + "/static/style.css", headers=headers), timeout=wait) as r:
                        r.read()
                    answered_meanwhile = round(time.monotonic() - t0, 2)
                except Exception as exc:
                    answered_meanwhile = type(exc).__name__
            time.sleep(drip)
        still = sum(_still_open(s) for s in socks)
        return {
            "connections": opened,
            "threads_before": before,
            "threads_most": most,
            "ordinary_request_s": answered_meanwhile,
            "open_after_s": wait,
            "still_open": still,
        }
    finally:
        for s in socks:
            s.close()


def early_disconnects(url: str, clients: int = 200) -> dict:
    """``clients`` that ask for a search (or a page picture) and hang up before the answer, half
    with a reset; afterwards the server must still answer."""
    import struct

    for i in range(clients):
        try:
            sock = _open(url)
            target = f"/api/search?q=terminal+{i}&k=20&explain=1" if i % 2 else "/"
            sock.sendall(request_bytes(url, target))
            if i % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset
            sock.close()
        except OSError:
            pass
    time.sleep(2)
    sock = _open(url)
    try:
        sock.sendall(request_bytes(url, "/static/style.css", keep_alive=False))
        status = _read_response(sock)
    finally:
        sock.close()
    return {"clients": clients, "then_answered": status}


def main(argv: list[str]) -> None:
    url, pid = argv[0], int(argv[1])
    trials = argv[2:] or ["concurrent", "idle", "slow", "disconnect"]
    for trial in trials:
        if trial == "concurrent":
            result = concurrent_searches(url)
        elif trial == "idle":
            result = idle_connections(url, pid)
        elif trial == "slow":
            result = slow_headers(url, pid)
        else:
            result = early_disconnects(url)
        print(trial, json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
