"""Open-loop load on a collector from client processes that cost the server as little as they can.

The clients share the machine's cores with the server they measure, so every microsecond a
client spends is one the server does not get: each client builds everything it sends before
the clock starts (bodies, request bytes), all start together once every one is ready, and the
sizing clients speak HTTP/1.1 on a raw socket (one `sendall` of pre-encoded bytes, the answer
read by its Content-Length) instead of going through http.client's header parsing.

Open loop: each request has a scheduled send time and its latency counts from that time, so a
stall is not hidden by the clients slowing down with it (no coordinated omission).

    with Load(jobs) as load:        # processes started, each preparing
        start_at = load.start()     # all ready: go (returns the common start time)
        ...                         # the caller's own probes while the load runs
    outs = load.results             # one dict per job, in job order
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench_collector import body

BATCH = 500  # events per ingest request
Job = tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]


def schedule(rate: float, n: int, start_at: float) -> Iterator[float]:
    """Waits for the wall-clock `start_at`, then yields `n` due times `rate` per second apart,
    each once it has come (open loop: a late request does not push the next ones back)."""
    while (left := start_at - time.time()) > 0:
        time.sleep(min(left, 0.05))
    t_start = time.perf_counter()
    for i in range(n):
        due = t_start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        yield due


class RawHTTP:
    """A kept-alive HTTP/1.1 connection that sends pre-encoded requests and reads each answer by
    its Content-Length (the collector always sends one)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, b""
        return s

    def request(self, raw: bytes) -> int:
        """The status of the answer to `raw`; 0 when the connection failed (then reopened)."""
        try:
            s = self.sock or self._connect()
            s.sendall(raw)
            while (end := self.buf.find(b"\r\n\r\n")) < 0:
                self._more(s)
            head = self.buf[:end].split(b"\r\n")
            status = int(head[0].split(b" ", 2)[1])
            length = next(int(h.split(b":", 1)[1]) for h in head[1:]
                          if h[:15].lower() == b"content-length:")
            total = end + 4 + length
            while len(self.buf) < total:
                self._more(s)
            self.buf = self.buf[total:]
            return status
        except (OSError, ValueError, StopIteration):
            self.close()
            return 0

    def _more(self, s: socket.socket) -> None:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed by the server")
        self.buf += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""


def canned_server(port_out: Any, answer: bytes) -> None:
    """A process that answers every HTTP/1.1 request it reads with `answer`, at once: the
    sizing clients' latency against it is the floor this machine and these clients give (the
    same scheduling, the same loopback), whatever the server behind the real endpoint does.
    Writes its port to `port_out` (a multiprocessing Queue), then serves until killed."""
    import asyncio

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t, self.buf = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                self.buf = self.buf[end + 4:]
                self.t.write(answer)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", 0)
        port_out.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(serve())


def get_request(path: str, key: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "\r\n").encode()


def sizing_client(args: tuple[int, int, str, list[str], float, float],
                  start: Callable[[], float]) -> dict[str, Any]:
    """`rate` sizing requests/s on a schedule over one kept-alive raw connection, cycling
    through `agents` (base_size 10,000, score 1)."""
    client, port, key, agents, rate, seconds = args
    reqs = [get_request(f"/v1/agents/{a}/sizing?base_size=10000&score=1.0", key)
            for a in agents]
    conn = RawHTTP(port)
    conn.request(reqs[0])  # connected and warm before the clock starts
    n = int(rate * seconds)
    lat: list[float] = []
    rtt: list[float] = []
    bad = 0
    cpu0 = time.process_time()
    for i, due in enumerate(schedule(rate, n, start())):
        sent = time.perf_counter()
        bad += conn.request(reqs[(client + i) % len(reqs)]) != 200
        done = time.perf_counter()
        lat.append((done - due) * 1000)
        rtt.append((done - sent) * 1000)
    cpu = time.process_time() - cpu0
    conn.close()
    return {"lat": lat, "rtt": rtt, "bad": bad, "cpu": cpu}


def ingest_client(args: tuple[int, int, str, float, float], start: Callable[[], float]
                  ) -> dict[str, Any]:
    """Batches of BATCH SDK-shaped events at `eps` events/s on a schedule (bodies built before
    the start)."""
    client, port, key, eps, seconds = args
    rate = eps / BATCH
    n = int(rate * seconds)
    bodies = [body(100 + client, seq, BATCH) for seq in range(n)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = bad = 0
    lag: list[float] = []
    first = None
    cpu0 = time.process_time()
    for i, due in enumerate(schedule(rate, n, start())):
        first = due if first is None else first
        conn.request("POST", "/v1/events", body=bodies[i], headers=headers)
        resp = conn.getresponse()
        resp.read()
        bad += resp.status != 200
        sent += BATCH
        lag.append((time.perf_counter() - due) * 1000)
    cpu = time.process_time() - cpu0
    conn.close()
    return {"sent": sent, "bad": bad, "lat": lag, "cpu": cpu,
            "elapsed": time.perf_counter() - (first or 0.0)}


def _worker(i: int, job: Job, ready: Any, go: Any, start_at: Any, out: Any) -> None:
    fn, args = job

    def start() -> float:
        ready.wait()
        go.wait()
        return float(start_at.value)

    try:
        out.put((i, fn(args, start)))
    except BaseException as e:
        out.put((i, {"error": f"{type(e).__name__}: {e}"}))
        raise


class Load:
    """Client processes, one per job (`fn(args, start)`; `start()` blocks until every client
    is ready and returns the common start time), and their results."""

    def __init__(self, jobs: list[Job], lead_s: float = 0.5) -> None:
        self.jobs = jobs
        self.lead_s = lead_s
        ctx = mp.get_context("spawn")
        self._ready = ctx.Barrier(len(jobs) + 1)
        self._go = ctx.Barrier(len(jobs) + 1)
        self._start_at = ctx.Value("d", 0.0)
        self._out = ctx.Queue()
        self._procs = [ctx.Process(target=_worker, args=(i, j, self._ready, self._go,
                                                         self._start_at, self._out),
                                   daemon=True) for i, j in enumerate(jobs)]
        self.results: list[dict[str, Any]] = []

    def __enter__(self) -> Load:
        for p in self._procs:
            p.start()
        return self

    def start(self) -> float:
        """Waits until every client has prepared, then starts them `lead_s` from now."""
        self._ready.wait(timeout=600)
        self._start_at.value = time.time() + self.lead_s
        self._go.wait(timeout=60)
        return float(self._start_at.value)

    def __exit__(self, *exc: object) -> None:
        got: dict[int, dict[str, Any]] = {}
        if exc[0] is None:
            while len(got) < len(self._procs):
                i, r = self._out.get(timeout=900)
                got[i] = r
        for p in self._procs:
            p.join(60 if exc[0] is None else 1)
            if p.is_alive():
                p.terminate()
        self.results = [got[i] for i in sorted(got)]
        errors = [r["error"] for r in self.results if "error" in r]
        if errors:
            raise RuntimeError(f"load client failed: {errors[0]}")
