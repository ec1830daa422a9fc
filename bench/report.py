"""The results as a Markdown table, the targets beside the measured figures."""

from .privacy import rows as privacy_rows

NAMES = {
    "popular": "popular", "user_stats": "user stats", "trends": "trends", "peak_hours": "peak hours",
    "summary": "summary", "retention": "retention (top movie)", "concurrency_hour_1d": "concurrency hour × 1 day",
    "concurrency_day_30d": "concurrency day × 30 days", "realtime": "realtime",
}
NAMES.update({f"{name}_kathmandu": f"{label} (Asia/Kathmandu)" for name, label in list(NAMES.items())})
REALTIME_TARGET_MS = 50
TZ_TARGET = 2.0  # a time zone's p50 at most twice the same endpoint's in UTC


def _n(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _ms(value):
    return "–" if value is None else f"{value:.1f} ms"


def _verdict(ok):
    return "–" if ok is None else ("met" if ok else "**missed**")


def table(results):
    m = results["machine"]
    lines = [
        f"Run: {results['mode']}, {results.get('started_at')}, commit {results['git']['commit'][:10]}"
        f"{' (uncommitted changes)' if results['git']['dirty'] else ''}, {results.get('seconds', 0):.0f} s. "
        f"Machine: {m['cores']} cores, {m['cpu_model']}, {m['memory_gib']} GiB; {m['engine']}, "
        f"chdb-core {m['chdb_version']}, Python {m['python']}; data on {results.get('data_filesystem', 'an unknown file system')}. "
        f"Medians of {results['config']['rounds']} rounds.",
        "",
        "| figure | measured | target | ratio | |",
        "|---|---|---|---|---|",
    ]
    row = lines.append

    ingest = results.get("ingest", {}).get("summary")
    if ingest:
        row(f"| ingest: engine floor, one Native insert of {results['config']['ingest_events']:,} rows | "
            f"{_n(ingest['floor_events_per_s'])} ev/s | | | |")
        if ingest.get("floor_chunked_events_per_s"):
            row(f"| ingest: engine floor, the same rows in inserts of 10,000 (a fixed cost per insert) | "
                f"{_n(ingest['floor_chunked_events_per_s'])} ev/s | | {_n(ingest['floor_chunked_vs_floor'], 2)} × "
                f"floor | |")
        for label, key in (("one connection", "batch"), (f"{ingest.get('batch_pooled_connections')} connections",
                                                          "batch_pooled")):
            if ingest.get(f"{key}_events_per_s") is None and key == "batch_pooled":
                continue
            chunked = ingest.get(f"{key}_vs_chunked_floor")
            ratio = ingest.get(f"{key}_vs_floor")
            cpu = ingest.get(f"{key}_server_cpu_us_per_event")
            row(f"| ingest: HTTP batch, 10,000 a request, {label} ({ingest.get(f'{key}_errors', 0)} errors"
                f"{f'; server CPU {cpu:.1f} µs an event' if cpu else ''}) | "
                f"{_n(ingest[f'{key}_events_per_s'])} ev/s | ≥ 0.5 × floor (aim 0.8) | "
                f"{_n(ratio, 2)}{f' ({chunked:.2f} × 10,000-row floor)' if chunked else ''} | "
                f"{_verdict(ratio >= 0.5 if ratio else None)} |")
        row(f"| ingest: single events, 32 clients | {_n(ingest['single_events_per_s'])} ev/s, "
            f"p50 {_ms(ingest['single_p50_ms'])}, p99 {_ms(ingest['single_p99_ms'])}, "
            f"{ingest['single_errors']} errors | | | |")
        per = ingest["single_parts_per_1000"]
        row(f"| ingest: single events, parts per 1,000 events (raw table; all 6 tables: "
            f"{_n(ingest['single_parts_per_1000_all_tables'], 1)}) | {_n(per, 2)} | ≤ 2 | | "
            f"{_verdict(per is not None and per <= 2)} |")
    open_loop = results.get("ingest", {}).get("open_loop")
    if open_loop:
        for r in open_loop["rounds"]:
            cpu = ""
            if r.get("server_cpu_ms_per_event") is not None:
                cpu = (f"; CPU an event: server {r['server_cpu_ms_per_event']:.2f} ms, load generator "
                       f"{r['client_cpu_ms_per_event']:.2f} ms; load average {r['load_average_before']:.1f}")
            row(f"| ingest: single events, open loop at {r['rate']:,}/s for {open_loop['seconds']} s "
                f"({open_loop['threads']} server threads) | {_n(r['events_per_s'])} ev/s, p50 {_ms(r['p50_ms'])}, "
                f"p99 {_ms(r['p99_ms'])}, {r['errors']} errors{cpu} | p99 ≤ 500 ms, no errors | | "
                f"{_verdict(r['met'])} |")
        capacity = open_loop["capacity_events_per_s"]
        row(f"| ingest: single events, open-loop capacity (highest rate met) | "
            f"{_n(capacity) + ' ev/s' if capacity else 'none of the rates'} | ≥ 1,000 ev/s | | "
            f"{_verdict(capacity is not None and capacity >= 1000)} |")
        per = open_loop["parts_per_1000"]
        row(f"| ingest: single events, open loop, parts per 1,000 events (raw table, all rates) | {_n(per, 2)} | "
            f"≤ 10 | | {_verdict(per is not None and per <= 10)} |")
    kafka = results.get("kafka", {}).get("summary")
    if kafka:
        row(f"| Kafka: bare kafka-python read loop, {kafka['messages']:,} messages | "
            f"{_n(kafka['bare_events_per_s'])} msg/s | | | |")
        ratio = kafka["e2e_vs_bare"]
        row(f"| Kafka: consume_stream end to end | {_n(kafka['e2e_events_per_s'])} ev/s | ≥ 0.5 × bare (aim 0.8) | "
            f"{_n(ratio, 2)} | {_verdict(ratio is not None and ratio >= 0.5)} |")
    for label, entry in results.get("queries", {}).items():
        for name, e in entry.get("endpoints", {}).items():
            ok = e["http_p50_ms"] <= e["http_limit_ms"]
            row(f"| {label} {NAMES[name]}: HTTP p50 / p95 · SQL p50 (raw table p50) | "
                f"{_ms(e['http_p50_ms'])} / {_ms(e['http_p95_ms'])} · {_ms(e['sql_engine_p50_ms'])} "
                f"({_ms(e['raw_engine_p50_ms'])}, {e['raw_vs_mv']:.0f}× the MV) | "
                f"p50 ≤ 1.5 × SQL + 5 ms = {_ms(e['http_limit_ms'])} | {e['http_vs_sql']:.2f} × SQL | {_verdict(ok)} |")
            utc = entry["endpoints"].get(name.removesuffix("_kathmandu"))
            if name.endswith("_kathmandu") and utc:
                ratio = e["http_p50_ms"] / utc["http_p50_ms"]
                row(f"| {label} {NAMES[name]}, 30-date from/to: HTTP p50 vs UTC | {_ms(e['http_p50_ms'])} vs "
                    f"{_ms(utc['http_p50_ms'])} | ≤ {TZ_TARGET:.0f} × UTC | {ratio:.2f} | {_verdict(ratio <= TZ_TARGET)} |")
            if name == "realtime":
                row(f"| {label} realtime: HTTP p50 | {_ms(e['http_p50_ms'])} | ≤ {REALTIME_TARGET_MS} ms (at 10M) | | "
                    f"{_verdict(e['http_p50_ms'] <= REALTIME_TARGET_MS)} |")
    growth = results.get("growth")
    if growth:
        for name, g in growth["endpoints"].items():
            row(f"| {NAMES[name]}: HTTP p50 growth {growth['from']} → {growth['to']} (SQL {g['sql_p50_ratio']:.2f}×, "
                f"raw table {g['raw_p50_ratio']:.1f}×) | {g['http_p50_ratio']:.2f}× | ≤ 1.5× | | "
                f"{_verdict(g['http_p50_ratio'] <= 1.5)} |")
    mixed = results.get("mixed")
    if mixed:
        for concurrency in ("8", "32"):
            if concurrency in mixed:
                x = mixed[concurrency]
                row(f"| mixed {mixed['dataset']}, {concurrency} clients | {_n(x['requests_per_s'])} req/s, "
                    f"p50 {_ms(x['p50_ms'])}, p99 {_ms(x['p99_ms'])}, {x['errors']} errors of {x['requests']:,} | "
                    f"error rate 0 | | {_verdict(x['errors'] == 0)} |")
    admin = results.get("admin")
    if admin:
        for name, what in (("changelist", "changelist page"), ("search", "exact-UUID user search")):
            x = admin[name]
            row(f"| admin {admin['dataset']}: {what} p50 / p95 | {_ms(x['p50_ms'])} / {_ms(x['p95_ms'])} | "
                f"< 1 s | | {_verdict(x['p95_ms'] < 1000 and x['errors'] == 0)} |")
    for line in privacy_rows(results):
        row(line)
    rss = []
    if ingest:
        rss.append(f"server {_n(ingest['server_peak_rss_mib_batch'])} MiB (batch ingest), "
                   f"{_n(ingest['server_peak_rss_mib_single'])} MiB (single events)")
    for label, entry in results.get("queries", {}).items():
        if entry.get("server_peak_rss_mib"):
            rss.append(f"server {_n(entry['server_peak_rss_mib'])} MiB (queries {label})")
    if kafka:
        rss.append(f"consumer {_n(kafka['consumer_peak_rss_mib_small'])} MiB at {kafka['small_messages']:,} "
                   f"messages, {_n(kafka['consumer_peak_rss_mib_large'])} MiB at {kafka['messages']:,}")
    if rss:
        flat = None
        if kafka and kafka["consumer_peak_rss_mib_small"]:
            flat = kafka["consumer_peak_rss_mib_large"] / kafka["consumer_peak_rss_mib_small"]
        row(f"| peak RSS: {'; '.join(rss)} | | consumer flat | {_n(flat, 2) if flat else '–'} | "
            f"{_verdict(flat <= 1.25) if flat else '–'} |")
    return "\n".join(lines)
