"""The socket side of `smart serve`: :class:`~smartcli.cli.web.ViewApp` behind HTTP/1.1.

The standard library's ``ThreadingHTTPServer`` holds one thread per connection for as long as the
connection lives, idle or half-sent, with a listen backlog of 5: it cannot bound its threads and
keep slow clients from holding them. Here connections are coroutines of one asyncio loop (an idle
or slow one costs a socket, not a thread), HTTP/1.1 is parsed by h11, and the app's work runs on a
fixed pool of threads:

- at most ``max_connections`` connections are open; more wait, queued, in a listen backlog of
  ``backlog`` and are taken as others close;
- a connection must send a complete request head within ``request_timeout`` seconds of opening or
  of its previous answer (an idle keep-alive connection and one that drips its headers alike),
  and read each part of an answer within ``write_timeout``, or it is closed;
- a client that hangs up or resets the connection ends it quietly: nothing is logged.
"""

from __future__ import annotations

import asyncio
import http
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import h11

from smartcli import defaults

CHUNK = 256 << 10  # bytes of a file read and sent at a time
MAX_REQUEST_HEAD = 64 << 10  # bytes of a request line and headers
HEAD_READ = 8 << 10  # bytes read at a time while a request head comes in (h11 checks its size between reads)
GONE = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, h11.RemoteProtocolError)  # a client gone, slow or not speaking HTTP


class ViewServer:
    """``app`` listening on ``host``:``port`` (port 0: any free one). Raises OSError if it cannot.

    ``serve_forever()`` runs the loop on the calling thread until ``shutdown()`` (from another
    thread) or Ctrl-C; ``server_close()`` then closes the socket and the threads.
    """

    def __init__(
        self,
        app,
        host: str,
        port: int,
        *,
        threads: int = defaults.SERVE_THREADS,
        max_connections: int = defaults.SERVE_MAX_CONNECTIONS,
        backlog: int = defaults.SERVE_BACKLOG,
        request_timeout: float = defaults.SERVE_REQUEST_TIMEOUT,
        write_timeout: float = defaults.SERVE_WRITE_TIMEOUT,
    ):
        self.app = app
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=backlog)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.write_timeout = write_timeout
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="smart-serve")
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_about_clients)
        self._main: asyncio.Task | None = None
        self._stopped = threading.Event()
        app.bound(self.server_address[1])

    # -- running -----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self._main = self._loop.create_task(self._accept())
        # Ctrl-C stops the loop between callbacks (a KeyboardInterrupt raised inside one would
        # end a connection's task midway and be reported as that task's error).
        on_main_thread = threading.current_thread() is threading.main_thread()
        if on_main_thread:
            self._loop.add_signal_handler(signal.SIGINT, self._main.cancel)
        try:
            self._loop.run_until_complete(self._main)
        except asyncio.CancelledError:
            pass
        finally:
            if on_main_thread:
                self._loop.remove_signal_handler(signal.SIGINT)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (called from another thread) and wait until it has returned."""
        if self._main is not None and not self._stopped.is_set():
            self._loop.call_soon_threadsafe(self._main.cancel)
            self._stopped.wait()

    def server_close(self) -> None:
        if not self._loop.is_closed():
            tasks = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()
        self.socket.close()
        self._pool.shutdown(wait=True)

    # -- connections -------------------------------------------------------------------------

    async def _accept(self) -> None:
        slots = asyncio.Semaphore(self.max_connections)
        connections: set = set()
        try:
            while True:
                await slots.acquire()  # past max_connections, the next clients wait in the backlog
                try:
                    conn, _ = await self._loop.sock_accept(self.socket)
                except OSError:  # e.g. out of file descriptors: try again shortly
                    slots.release()
                    await asyncio.sleep(0.1)
                    continue
                task = self._loop.create_task(self._connection(conn, slots))
                connections.add(task)
                task.add_done_callback(connections.discard)
        finally:
            for task in list(connections):
                task.cancel()

    async def _connection(self, conn: socket.socket, slots: asyncio.Semaphore) -> None:
        writer = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=CHUNK)
            await self._converse(reader, writer)
        except GONE:
            pass
        finally:
            if writer is not None:
                writer.close()
            else:
                conn.close()
            slots.release()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Requests in, answers out, until the client or a timeout ends the connection."""
        http_conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        while True:
            try:
                request = await asyncio.wait_for(_next_request(http_conn, reader), self.request_timeout)
            except h11.RemoteProtocolError as exc:
                await self._refuse(http_conn, writer, exc.error_status_hint)
                return
            if request is None:
                return
            headers = {}
            for name, value in request.headers:
                headers[name.decode("latin-1")] = value.decode("latin-1")
            method = request.method.decode("latin-1")
            response = await self._loop.run_in_executor(self._pool, self.app.handle, method, request.target.decode("latin-1"), headers)
            await self._answer(http_conn, writer, response, head_only=method == "HEAD")
            if http_conn.our_state is not h11.DONE or http_conn.their_state is not h11.DONE:
                return  # Connection: close, HTTP/1.0, or a request body we did not read
            http_conn.start_next_cycle()

    async def _answer(self, http_conn: h11.Connection, writer: asyncio.StreamWriter, response, head_only: bool) -> None:
        headers = [("Content-Type", response.content_type), ("Server", "smart")]
        if response.stream is None or response.length is not None:
            headers.append(("Content-Length", str(len(response.body) if response.stream is None else response.length)))
        headers += list(response.headers.items())
        try:
            await self._send(writer, http_conn.send(_response(response.status, headers)))
            if not head_only:
                if response.stream is None:
                    await self._send(writer, http_conn.send(h11.Data(data=response.body)))
                else:
                    await self._stream(http_conn, writer, response)
            await self._send(writer, http_conn.send(h11.EndOfMessage()))
        finally:
            response.close()

    async def _stream(self, http_conn: h11.Connection, writer: asyncio.StreamWriter, response) -> None:
        left = response.length if response.length is not None else defaults.MAX_DECOMPRESSED_BYTES
        while left > 0:
            block = await self._loop.run_in_executor(self._pool, response.stream.read, min(CHUNK, left))
            if not block:
                break
            left -= len(block)
            await self._send(writer, http_conn.send(h11.Data(data=block)))
        if response.length is not None and left > 0:
            raise ConnectionAbortedError("the file got shorter while it was sent")

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if data:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.write_timeout)

    async def _refuse(self, http_conn: h11.Connection, writer: asyncio.StreamWriter, status: int) -> None:
        if http_conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = (http.HTTPStatus(status).phrase + "\n").encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), ("Connection", "close")]
        await self._send(writer, http_conn.send(_response(status, headers)) + http_conn.send(h11.Data(data=body)))


async def _next_request(http_conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
    """The next request head (None: the client closed the connection), its end read if it has no body."""
    while True:
        event = http_conn.next_event()
        if event is h11.NEED_DATA:
            http_conn.receive_data(await reader.read(HEAD_READ))
        elif isinstance(event, h11.Request):
            http_conn.next_event()  # its end, if it has no body (one with a body is answered, then closed)
            return event
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None


def _response(status: int, headers: list) -> h11.Response:
    try:
        reason = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        reason = b""
    return h11.Response(status_code=status, headers=headers, reason=reason)


def _quiet_about_clients(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """The loop's error handler: a client's connection errors are not worth a line; anything else
    is reported as the loop would."""
    if isinstance(context.get("exception"), GONE):
        return
    loop.default_exception_handler(context)


def make_server(app, host: str, port: int, **limits) -> ViewServer:
    """``app`` behind a socket on ``host``:``port`` (port 0: any free one); raises OSError."""
    return ViewServer(app, host, port, **limits)
