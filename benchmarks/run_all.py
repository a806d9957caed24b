"""Run every ``benchmarks/bench_*.py`` and assemble ``benchmarks/RESULTS.md``.

Each script runs in its own process (so one failure does not stop the others) and writes its
table to ``benchmarks/results/<topic>.md``; afterwards every file in ``benchmarks/results/`` is
concatenated, in name order, into ``benchmarks/RESULTS.md``. ``make bench`` calls this.

Usage (from the repository root)::

    python benchmarks/run_all.py                 # run everything, then assemble
    python benchmarks/run_all.py -k baselines    # only scripts whose name contains "baselines"
    python benchmarks/run_all.py --assemble-only # just rebuild RESULTS.md from results/

The exit status is 1 when any script failed (the others' results are still assembled).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
OUTPUT = BENCH_DIR / "RESULTS.md"


def scripts(pattern: str | None = None) -> list[Path]:
    """The benchmark scripts, in name order, optionally filtered by a substring."""
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    return [p for p in found if pattern is None or pattern in p.stem]


def run(script: Path, timeout: float | None) -> tuple[bool, float, str]:
    """Run one script from the repository root; return (ok, seconds, last lines of output)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script.relative_to(REPO))], cwd=REPO, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - start, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - start
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return proc.returncode == 0, seconds, tail


def _nest_headings(text: str, top: int = 2) -> str:
    """Shift markdown headings so the file's highest heading has level ``top`` (each results
    file becomes one section of RESULTS.md whatever levels its script used)."""
    lines = text.splitlines()
    fenced = False
    levels = []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            levels.append(len(line) - len(line.lstrip("#")))
    if not levels:
        return text
    shift = top - min(levels)
    out, fenced = [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * max(1, min(6, level + shift)) + line[level:]
        out.append(line)
    return "\n".join(out)


def assemble(failures: dict[str, str]) -> Path:
    """Concatenate ``results/*.md`` into ``RESULTS.md`` (atomic write)."""
    parts = [
        "# chuchun benchmark results",
        "",
        "chuchun side by side with reference libraries on the same data and split, in one"
        " process run per script. Each section names the command that produced it and the"
        " machine it ran on. Regenerate everything with `make bench`"
        " (`python benchmarks/run_all.py`).",
        "",
        f"Assembled: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
    ]
    if failures:
        parts += ["**Scripts that failed in the last run** (their older results, if any, are"
                  " still shown below):", ""]
        parts += [f"- `{name}`: {reason.splitlines()[-1] if reason else 'failed'}"
                  for name, reason in failures.items()]
        parts.append("")
    results = sorted(RESULTS_DIR.glob("*.md")) if RESULTS_DIR.exists() else []
    if not results:
        parts.append("_No results yet._")
    for path in results:
        parts += [_nest_headings(path.read_text().strip()), ""]
    tmp = OUTPUT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(OUTPUT)
    return OUTPUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and assemble RESULTS.md.")
    parser.add_argument("-k", dest="pattern", help="only scripts whose name contains this")
    parser.add_argument("--assemble-only", action="store_true",
                        help="do not run anything; rebuild RESULTS.md from results/")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per script (default: no limit)")
    args = parser.parse_args(argv)

    failures: dict[str, str] = {}
    if not args.assemble_only:
        todo = scripts(args.pattern)
        if not todo:
            print(f"no benchmark scripts match {args.pattern!r}", file=sys.stderr)
            return 1
        for script in todo:
            print(f"running {script.name} ...", flush=True)
            ok, seconds, tail = run(script, args.timeout)
            print(f"  {'ok' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
            if not ok:
                failures[script.name] = tail
                print(tail, file=sys.stderr)
    path = assemble(failures)
    print(f"wrote {path.relative_to(REPO)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
