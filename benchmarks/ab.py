#!/usr/bin/env python3
"""Interleaved A/B of two versions of bgtasks on bench_core and bench_control.

Run from a checkout::

    .venv/bin/python benchmarks/ab.py --old a75c822            # this tree against a75c822
    .venv/bin/python benchmarks/ab.py --old a75c822 --rounds 8 --out docs/benchmarks.md

The *same* benchmark scripts (this checkout's) run against both packages: the
old one is exported from git into a temporary folder and put first on
``PYTHONPATH``.  Each round runs both versions back to back, in ABBA order
(old-new, then new-old), each in a fresh process, so a burst of load on this
shared machine hits both alike.  Reported: the median of each measure over the
rounds for each version, and new relative to old as a speed ratio (> 1: the new
code is faster or stalls less; 0.95 is "within 5 %").

Exit status: 0 when every run finished, 2 when a benchmark run failed.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Callable

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

#: name -> (bench script, its arguments, parser of its stdout into {measure: value})
Measures = dict[str, float]

CORE_ROW = re.compile(r"^(flat|priorities|chains_rising|chains|fan_in)\s+(\d+)\s+(\d+)\s+(.*)$")
PAUSED = re.compile(r"^paused (.+): ([\d.]+) us/task")


def parse_core(out: str) -> Measures:
    found: Measures = {}
    for line in out.splitlines():
        if m := CORE_ROW.match(line):
            workload, n, threads, rest = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            tokens = rest.split()
            if n < 5000 or len(tokens) < 5:
                continue
            rate = float(tokens[0].rstrip("k")) * 1000  # bgtasks first (one repeat)
            found[f"core {workload} {n // 1000}k/{threads} tasks/s"] = rate
            found[f"core {workload} {n // 1000}k/{threads} stall ms"] = float(tokens[3])
        elif m := PAUSED.match(line):
            found[f"core paused {m.group(1)} us"] = float(m.group(2))
    return found


def parse_control(out: str) -> Measures:
    found: Measures = {}
    stalls = [float(x) for x in re.findall(r"flood run \d+: [\d.]+ s, stall ([\d.]+) ms", out)]
    if stalls:
        found["control progress flood stall ms"] = max(stalls)
    if m := re.search(r"report_progress\(\)` call, 8 tasks \| ([\d.]+) us", out):
        found["control report_progress us/call"] = float(m.group(1))
    if m := re.search(r"cancel x\d+: signal median ([\d.]+) ms", out):
        found["control cancel latency ms"] = float(m.group(1))
    if m := re.search(r"before the first wave, wave 1: .* all results in (\d+) ms", out):
        found["control dedupe wave ms"] = float(m.group(1))
    rates = [float(x) for x in re.findall(r"flat 20k/8 repeat \d+: current ([\d.]+)k/s", out)]
    if rates:
        found["control flat 20k/8 tasks/s"] = statistics.median(rates) * 1000
    return found


BENCHES: dict[str, tuple[str, list[str], Callable[[str], Measures]]] = {
    "core": ("bench_core.py", ["--quick", "--repeats", "1"], parse_core),
    "control": ("bench_control.py", ["--quick"], parse_control),
}


def export(rev: str, into: pathlib.Path) -> pathlib.Path:
    """The ``bgtasks`` package of ``rev``, exported into ``into``."""
    archive = into / "old.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", rev, "bgtasks"], cwd=ROOT, stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def run_once(bench: str, package_root: pathlib.Path) -> Measures:
    script, args, parse = BENCHES[bench]
    env = dict(os.environ, PYTHONPATH=str(package_root), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, script, *args],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode not in (0, 1):  # 1: a target failed, the run itself is fine
        raise RuntimeError(f"{script} against {package_root} failed:\n{proc.stderr[-2000:]}")
    return parse(proc.stdout)


def higher_is_better(measure: str) -> bool:
    return measure.endswith("tasks/s")


def report(rows: dict[str, dict[str, list[float]]], old: str, new: str, rounds: int) -> str:
    lines = [
        f"| measure | {old} (median) | {new} (median) | new vs old, speed | runs |",
        "|---|---:|---:|---:|---:|",
    ]
    speeds = []
    for measure in sorted(rows["old"]):
        a, b = rows["old"][measure], rows["new"].get(measure, [])
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        speed = (mb / ma if higher_is_better(measure) else ma / mb) if ma and mb else float("nan")
        speeds.append(speed)
        lines.append(f"| {measure} | {ma:,.2f} | {mb:,.2f} | {speed:.3f} | {len(a)}+{len(b)} |")
    if speeds:
        geo = statistics.geometric_mean([s for s in speeds if s == s and s > 0])
        lines.append(
            f"| **geometric mean of the speed ratios** | | | **{geo:.3f}** | {rounds} rounds |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="git revision of the old code")
    parser.add_argument("--new", help="git revision of the new code (default: this working tree)")
    parser.add_argument("--rounds", type=int, default=6, help="ABBA rounds (default 6)")
    parser.add_argument("--bench", choices=sorted(BENCHES), action="append", help="default: all")
    parser.add_argument("--out", help="also write the table to this file (appended)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    benches = args.bench or list(BENCHES)
    rows: dict[str, dict[str, list[float]]] = {"old": defaultdict(list), "new": defaultdict(list)}
    with tempfile.TemporaryDirectory(prefix="bgtasks-ab-") as tmp:
        base = pathlib.Path(tmp)
        (base / "old").mkdir()
        trees = {"old": export(args.old, base / "old"), "new": ROOT}
        if args.new:
            (base / "new").mkdir()
            trees["new"] = export(args.new, base / "new")
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for bench in benches:
                for version in order:
                    try:
                        measures = run_once(bench, trees[version])
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        print(exc, file=sys.stderr)
                        return 2
                    for k, v in measures.items():
                        rows[version][k].append(v)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    table = report(rows, args.old, args.new or "this tree", args.rounds)
    print(table)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
