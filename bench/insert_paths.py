"""`python -m bench.insert_paths`: what the embedded transport's insert costs the engine, against
chdb's own streaming insert, on the service's schema (raw table and its materialized views).

The transport writes an INSERT's Native blocks to a memfd and runs `INSERT … FROM INFILE
'/proc/self/fd/N' FORMAT Native`, because chdb's streaming insert (`send_insert` / `append` /
`finish`) does not report rows the engine rejects at commit. This runs both on the same encoded
10,000-event blocks in one process, alternating, and prints µs/event (median and minimum) of
the engine's part; encoding and the column look-up are the same on both paths and not timed.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

from clickhouse_driver.block import RowOrientedBlock
from clickhouse_driver.bufferedwriter import BufferedSocketWriter
from clickhouse_driver.streams.native import BlockOutputStream

from analytics_site.chdb_backend.transport import EmbeddedClient, _BytesSink
from viewing import ddl, queries


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.insert_paths", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=20, help="per path")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="insert-paths-", ignore_cleanup_errors=True) as tmp:
        client = EmbeddedClient(path=tmp)
        for statement, _ in ddl.statements(365):
            client.execute(statement)
        engine = client.connection._engine
        engine.query("SET async_insert = 0")  # as the service's connections do
        columns = client.execute(f"DESCRIBE (SELECT {', '.join(queries.EVENT_COLUMNS)} FROM viewing_events)")
        columns = [(name, type_) for name, type_, *_ in columns]
        head = f"INSERT INTO viewing_events ({', '.join(queries.EVENT_COLUMNS)})"
        now, rng = int(time.time()), random.Random(7)
        users = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(5000)]
        movies = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(500)]

        def block():
            rows = [(uuid.uuid4(), rng.choice(users), rng.choice(movies), rng.choice(("start", "progress", "finish")),
                     rng.randrange(7200), now - rng.randrange(86400 * 20), uuid.uuid4(), '{"device":"tv"}', now)
                    for _ in range(args.rows)]
            sink = _BytesSink()
            BlockOutputStream(BufferedSocketWriter(sink, 1 << 20), client.connection.context).write(
                RowOrientedBlock(columns, rows, types_check=False))
            return sink.take()

        def streaming(data):
            inserter = engine.send_insert(head, "Native")
            inserter.append(data)
            inserter.finish()

        def memfd(data):
            fd = os.memfd_create("bench-insert", os.MFD_CLOEXEC)
            try:
                os.write(fd, data)
                engine.query(f"{head} FROM INFILE '/proc/self/fd/{fd}' FORMAT Native", "TabSeparated")
            finally:
                os.close(fd)

        times = {"streaming insert (chdb send_insert)": [], "memfd + INSERT FROM INFILE (the transport)": []}
        paths = list(zip(times, (streaming, memfd), strict=True))
        for i in range(args.batches):
            for name, insert in paths if i % 2 else paths[::-1]:
                data = block()
                started = time.perf_counter()
                insert(data)
                times[name].append((time.perf_counter() - started) * 1e6 / args.rows)
        stored = client.execute("SELECT count() FROM viewing_events")[0][0]
        assert stored == 2 * args.batches * args.rows, stored
        print(f"{args.batches} batches of {args.rows:,} events per path, alternating; engine part only")
        for name, values in times.items():
            print(f"  {name:45} median {statistics.median(values):6.2f}  min {min(values):6.2f} µs/event")
        client.disconnect()  # the engine's background work may still write; cleanup ignores that
    return 0


if __name__ == "__main__":
    sys.exit(main())
