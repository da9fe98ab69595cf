"""The soak's report: each finding category with examples (all of them in findings.txt in the
work directory), what Redis's fsync policy lost, and the one summary line."""

from __future__ import annotations

from pathlib import Path

from scripts.soak.canary import Window
from scripts.soak.check import Result

SHOWN = 50


def summary(seed: int, result: Result) -> str:
    c = result.counts
    faults = ",".join(f"{k[6:]}={n}" for k, n in sorted(c.items()) if k.startswith("fault "))
    findings = sum(len(v) for v in result.findings.values())
    return (f"SOAK seed={seed} faults[{faults}] emitted={c['emitted']} stored={c['stored']} "
            f"dead={c['dead']} lost={c['lost']} dup={c['dup']} phantom={c['phantom']} "
            f"lost_to_redis_fsync={len(result.fsync_lost)} findings={findings} "
            f"{'FAIL' if findings else 'PASS'}")  # fmt: skip


def print_report(seed: int, result: Result, windows: list[Window], work: Path) -> bool:
    """Print it; whether anything was found."""
    lines = []
    for category, items in sorted(result.findings.items()):
        lines.append(f"FINDING {category}: {len(items)}")
        lines += [f"  {item}" for item in items]
    for w in windows:
        lines.append(f"redis fsync window: {w.end - w.start:.3f} s, {w.lost_writes} canary "
                     f"writes lost")  # fmt: skip
    if result.fsync_lost:
        lines.append(f"lost to Redis's fsync policy (appendfsync everysec, SIGKILL), within the "
                     f"canary's windows: {len(result.fsync_lost)}")  # fmt: skip
        lines += [f"  {item}" for item in result.fsync_lost]
    (work / "findings.txt").write_text("\n".join(lines) + "\n")
    shown = 0
    for line in lines:
        if line.startswith("  "):
            shown += 1
            if shown == SHOWN + 1:
                print(f"  ... (all in {work / 'findings.txt'})")
            if shown > SHOWN:
                continue
        else:
            shown = 0
        print(line)
    print(summary(seed, result), flush=True)
    return bool(result.findings)
