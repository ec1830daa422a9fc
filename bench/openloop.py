"""The open-loop load client: single events at a fixed arrival rate, in its own process.

A closed loop (bench.load's 32 clients, each waiting for its answer before sending again)
measures the server at the pace the server sets: when it slows down, the clients send less.
Players do not wait for each other: each sends its event when it happens. Here event i is
due at `start + i / rate` whatever happened to the ones before, on a connection of its own
(a free keep-alive connection, or a new one), and its latency is counted from that due time,
so a server (or a client) that falls behind shows it in the latency, not in a lower rate.

Bounded: `seconds` of arrivals at most, `max_connections` open at once (an event due while
all are busy waits for one, and the wait counts), every request `timeout` seconds. Loopback
only. Run by the orchestrator as `python -m bench.openloop` with a JSON spec on stdin
(`port`, `headers`, `rates` [events/s], `seconds`, `data`: generator parameters, one set per
rate); prints a JSON result on stdout.
"""

import asyncio
import json
import sys
import time

from .load import event_json, generated
from .stats import summary

HOST = "127.0.0.1"
PATH = "/api/v1/analytics/events"


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time. A protocol, not asyncio's streams:
    the client shares the 2 cores with the server it measures, and a stream's readline per
    header line cost it ~2x the CPU per request."""

    def __init__(self):
        self.transport = None
        self.buffer = b""
        self.answer = None  # the future of the request in flight

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0 or self.answer is None:
            return
        head = self.buffer[:head_end].split(b"\r\n")
        length, keep = 0, True
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                keep = False
        if len(self.buffer) < head_end + 4 + length:
            return
        self.buffer = self.buffer[head_end + 4 + length:]
        answer, self.answer = self.answer, None
        if not answer.done():
            answer.set_result((int(head[0].split()[1]), keep))

    def connection_lost(self, exc):
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("closed"))
        self.transport = None

    def send(self, request):
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.answer


class Connections:
    """Keep-alive connections to the server, at most `limit` open; a free one is reused."""

    def __init__(self, port, limit):
        self.port = port
        self.free = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def take(self):
        await self.slots.acquire()
        while self.free:
            conn = self.free.pop()
            if conn.transport is not None:
                return conn
        self.opened += 1
        _, conn = await asyncio.get_running_loop().create_connection(_Connection, HOST, self.port)
        return conn

    def give_back(self, conn, reusable):
        if reusable and conn.transport is not None:
            self.free.append(conn)
        elif conn.transport is not None:
            conn.transport.close()
        self.slots.release()

    def close(self):
        for conn in self.free:
            if conn.transport is not None:
                conn.transport.close()


async def _run_rate(port, headers, bodies, rate, seconds, max_connections, timeout):
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    requests = [(f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body for body in bodies]
    count = min(len(bodies), int(rate * seconds))
    pool = Connections(port, max_connections)
    latencies, statuses = [], {}
    late = [0.0]  # the most a request started after its due time (the client falling behind)

    async def send(i, due):
        status = 0
        conn = None
        try:
            conn = await pool.take()
            late[0] = max(late[0], time.perf_counter() - due)
            status, keep = await asyncio.wait_for(conn.send(requests[i]), timeout)
            pool.give_back(conn, keep)
        except (TimeoutError, OSError, ValueError, IndexError):
            if conn is not None:
                pool.give_back(conn, False)
            else:
                pool.slots.release()
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    cpu_before = time.process_time()
    start = time.perf_counter() + 0.2
    for i in range(count):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)  # the arrival schedule, not a wait for data
        tasks.append(asyncio.ensure_future(send(i, due)))
    sent_by = time.perf_counter()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - cpu_before
    pool.close()
    created = statuses.get(201, 0)
    errors = sum(n for s, n in statuses.items() if s != 201)
    return {
        "rate": rate, **summary(latencies), "max_ms": max(latencies) if latencies else None,
        "sent": count, "schedule_s": sent_by - start, "elapsed_s": elapsed,
        "events_per_s": created / elapsed if elapsed else None, "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors, "connections_opened": pool.opened, "client_late_ms": late[0] * 1000,
        "client_cpu_ms_per_event": 1000 * client_cpu / count if count else None,
    }


def run(spec):
    rounds = []
    for rate, data in zip(spec["rates"], spec["data"], strict=True):
        bodies = [json.dumps(event_json(e)).encode() for e in generated(data)]
        rounds.append(asyncio.run(_run_rate(spec["port"], spec.get("headers"), bodies, rate, spec["seconds"],
                                            spec.get("max_connections", 512), spec.get("timeout", 30))))
    return {"rounds": rounds}


def main():
    json.dump(run(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
