"""Turning measurements into the table, the target checks, the JSON file and the chart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scripts.bench.ceiling import serialized

Row = dict[str, Any]


def find(rows: list[Row], case: str, setup: str) -> Row | None:
    return next((r for r in rows if r["case"] == case and r["setup"] == setup), None)


def notes(row: Row) -> str:
    """The case-specific figures of a row, as one short text."""
    parts = []
    for key, fmt in (
        ("locked", "locked={}"),
        ("per_result_at_end", "{:.2g} s/result at end"),
        ("batches", "{} batches"),
        ("peak_rss_mib", "peak RSS {:.0f} MiB"),
        ("ratio", "{:.2f} of ceiling"),
        ("emit_rate", "emit {:,.0f}/s"),
        ("lag", "lag {:.2f} s"),
        ("emit_p50_ms", "emit p50 {:.3f} ms"),
        ("emit_p99_ms", "p99 {:.3f} ms"),
        ("xadd_p50_us", "xadd p50 {:.1f} us"),
        ("emit_p50_us", "emit p50 {:.1f} us"),
        ("ratio_p50", "emit/xadd {:.2f}x"),
        ("pipelined_xadd_rate", "pipelined xadd {:,.0f}/s"),
        ("emit_many_rate", "emit_many {:,.0f}/s"),
        ("buffered_rate", "buffered {:,.0f}/s"),
        ("vs_json", "{:.1f}x the Dask+JSON way"),
        ("entries", "{:,} stream entries"),
        ("bytes_per_record", "MEMORY USAGE {:.1f} B/record"),
        ("info_bytes_per_record", "INFO used_memory {:.1f} B/record"),
    ):
        if row.get(key) is not None:
            parts.append(fmt.format(row[key]))
    return ", ".join(parts)


def table(rows: list[Row], markdown: bool) -> str:
    head = ("case", "setup", "records", "seconds", "rate /s", "notes")
    body = [
        (
            r["case"],
            r["setup"],
            f"{r['records']:,}",
            f"{r['seconds']:.2f}",
            f"{r['rate']:,.0f}",
            notes(r),
        )
        for r in rows
    ]
    return _render(head, body, markdown)


def _render(head: tuple[str, ...], body: list[tuple[str, ...]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row) for row in [head, tuple("-" * w for w in widths), *body])


def targets(rows: list[Row]) -> list[Row]:
    """Each target of issues 4 and 11 that this run measured: value, threshold, met or not."""
    out: list[Row] = []

    def check(name: str, value: float | None, op: str, limit: float) -> None:
        if value is None:
            return
        met = value >= limit if op == ">=" else value < limit if op == "<" else value <= limit
        out.append({"target": name, "value": value, "op": op, "limit": limit, "met": met})

    redis_rate = _rate(find(rows, "ceiling", "redis-drain"))
    targets = (("sqlite", "sqlite-executemany", 0.8), ("postgresql", "pg-copy per 2000", 0.7))
    for db, ceiling, limit in targets:
        drain, db_rate = find(rows, "drain", db), _rate(find(rows, "ceiling", ceiling))
        if drain and redis_rate and db_rate:
            drain["ratio"] = drain["rate"] / serialized(redis_rate, db_rate)
            check(f"drain {db} / serialized ceiling", drain["ratio"], ">=", limit)
    batched = find(rows, "drain", "sqlite batched")
    sqlite_rate = _rate(find(rows, "ceiling", "sqlite-executemany"))
    if batched and redis_rate and sqlite_rate:
        batched["ratio"] = batched["rate"] / serialized(redis_rate, sqlite_rate)
        check("drain sqlite batched / per-entry serialized ceiling", batched["ratio"], ">=", 1.6)
    e2e = find(rows, "end-to-end", "P=16 sqlite")
    if e2e:
        check("e2e P=16 stored rate / emit rate", e2e["rate"] / e2e["emit_rate"], ">=", 0.95)
        check("e2e P=16 lag after last emit (s)", e2e["lag"], "<", 1.0)
        for setup, limit in (("sqlite-wal W=16", 10), ("sqlite-default W=16", 20)):
            seed = _rate(find(rows, "seed-direct", setup))
            if seed:
                check(f"e2e P=16 / seed-direct {setup}", e2e["rate"] / seed, ">=", limit)
        check("e2e P=16 dead letters + lock failures", e2e["dead"], "<=", 0)
        missing = abs(e2e["records"] - e2e["stored"]) + (e2e["stored"] - e2e["distinct"])
        check("e2e P=16 rows missing or doubled", missing, "<=", 0)
    emit = find(rows, "emit", "loopback")
    if emit:
        check("emit p50 / bare xadd p50", emit["ratio_p50"], "<=", 1.2)
        check("emit p99 (ms)", emit["emit_p99_ms"], "<", 2.0)
        check("emit_many / pipelined xadd", emit["emit_many_ratio"], ">=", 0.8)
        check("Emitter(buffer=1000) / pipelined xadd", emit["buffered_ratio"], ">=", 0.8)
    rss = find(rows, "drain", "sqlite rss") or find(rows, "drain", "sqlite")
    if rss:
        check(
            f"collector peak RSS (MiB) draining {rss['records']:,}", rss["peak_rss_mib"], "<", 150
        )
    _pipelined(rows, check)
    return out


def _pipelined(rows: list[Row], check: Callable[[str, float | None, str, float], None]) -> None:
    """The targets of the pipelined collector (issue 25), against the same ceilings."""
    redis_rate = _rate(find(rows, "ceiling", "redis-drain"))
    sqlite_rate = _rate(find(rows, "ceiling", "sqlite-executemany"))
    piped = find(rows, "drain", "sqlite pipelined")
    if piped and redis_rate and sqlite_rate:
        piped["ratio"] = piped["rate"] / serialized(redis_rate, sqlite_rate)
        check("drain sqlite pipelined / serialized ceiling", piped["ratio"], ">=", 1.1)
    e2e = find(rows, "end-to-end", "P=16 sqlite pipelined")
    if e2e:
        name = "e2e P=16 pipelined"
        check(f"{name} stored rate / emit rate", e2e["rate"] / e2e["emit_rate"], ">=", 0.95)
        check(f"{name} lag after last emit (s)", e2e["lag"], "<", 1.0)
        missing = abs(e2e["records"] - e2e["stored"]) + (e2e["stored"] - e2e["distinct"])
        check(f"{name} rows missing or doubled", missing, "<=", 0)
    rss = find(rows, "drain", "sqlite rss pipelined") or find(rows, "drain", "sqlite pipelined")
    if rss:
        records = f"{rss['records']:,}"
        check(f"pipelined pair peak RSS (MiB) draining {records}", rss["peak_rss_mib"], "<", 150)


def _rate(row: Row | None) -> float | None:
    return row["rate"] if row else None


def targets_table(checks: list[Row], markdown: bool) -> str:
    head = ("target", "value", "needed", "met")
    body = [
        (c["target"], f"{c['value']:.3g}", f"{c['op']} {c['limit']:g}", "yes" if c["met"] else "NO")
        for c in checks
    ]
    return _render(head, body, markdown)


def save(directory: Path, stem: str, payload: dict[str, Any]) -> list[Path]:
    """``<stem>.json`` and ``<stem>.png`` (rates on a log scale) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    json_path.write_text(json.dumps(payload, indent=2, default=str))
    return [json_path, _chart(directory / f"{stem}.png", payload["results"])]


def _chart(path: Path, rows: list[Row]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["case"] not in ("emit", "memory")]
    labels = [f"{r['case']} {r['setup']}" for r in shown]
    colors = {"seed-direct": "tab:red", "seed-json": "tab:orange", "ceiling": "tab:gray"}
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(shown) + 1.2))
    ax.barh(
        labels, [r["rate"] for r in shown], color=[colors.get(r["case"], "tab:blue") for r in shown]
    )
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("records per second (log scale)")
    ax.set_title("result-collector benchmark")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
