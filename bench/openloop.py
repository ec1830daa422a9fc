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


class Connections:
    """Keep-alive connections to the server, at most `limit` open; a free one is reused."""

    def __init__(self, port, limit):
        self.port = port
        self.free = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def take(self):
        await self.slots.acquire()
        if self.free:
            return self.free.pop()
        self.opened += 1
        return await asyncio.open_connection(HOST, self.port)

    def give_back(self, conn, reusable):
        if reusable:
            self.free.append(conn)
        else:
            conn[1].close()
        self.slots.release()

    def close(self):
        for _, writer in self.free:
            writer.close()


async def _post(conn, head, body):
    """One request on `conn`; (status, keep-alive)."""
    reader, writer = conn
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    await reader.readexactly(length)
    return status, keep


async def _run_rate(port, headers, bodies, rate, seconds, max_connections, timeout):
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    heads = [(f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() for body in bodies]
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
            status, keep = await asyncio.wait_for(_post(conn, heads[i], bodies[i]), timeout)
            pool.give_back(conn, keep)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            if conn is not None:
                pool.give_back(conn, False)
            else:
                pool.slots.release()
        latencies.append((time.perf_counter() - due) * 1000)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
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
    pool.close()
    created = statuses.get(201, 0)
    errors = sum(n for s, n in statuses.items() if s != 201)
    return {
        "rate": rate, **summary(latencies), "max_ms": max(latencies) if latencies else None,
        "sent": count, "schedule_s": sent_by - start, "elapsed_s": elapsed,
        "events_per_s": created / elapsed if elapsed else None, "statuses": {str(k): v for k, v in statuses.items()},
        "errors": errors, "connections_opened": pool.opened, "client_late_ms": late[0] * 1000,
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
