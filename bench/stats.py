"""Percentiles and medians of timings (milliseconds unless named otherwise)."""

import math
import os
import statistics


def percentile(values, p):
    """The nearest-rank p-th percentile (p in 0 … 100) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(latencies_ms):
    return {
        "n": len(latencies_ms),
        "p50_ms": percentile(latencies_ms, 50),
        "p95_ms": percentile(latencies_ms, 95),
        "p99_ms": percentile(latencies_ms, 99),
    }


def median_of_rounds(rounds, key):
    """Median over rounds (each a dict) of rounds[i][key]."""
    return median([r.get(key) for r in rounds])


def cpu_seconds(pids):
    """CPU seconds (user + system, every thread) the processes `pids` have used so far."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total
