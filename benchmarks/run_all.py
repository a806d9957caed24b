"""Run every ``benchmarks/bench_*.py`` and assemble ``benchmarks/RESULTS.md``.

Each script runs in its own process (so one failure does not stop the others) and writes its
table to ``benchmarks/results/<topic>.md``; afterwards every file in ``benchmarks/results/`` is
concatenated, in name order, into ``benchmarks/RESULTS.md``. ``make bench`` calls this.

Usage (from the repository root)::

    python benchmarks/run_all.py                 # run everything, then assemble
    python benchmarks/run_all.py -k baselines    # only scripts whose name contains "baselines"
    python benchmarks/run_all.py --assemble-only # just rebuild RESULTS.md from results/
    python benchmarks/run_all.py --quick         # a quick check, see below

``--quick`` runs the scripts that time chuchun's own kernels at smaller sizes with one
repetition (the flags are in :data:`QUICK_ARGS`), so a change to a kernel can be checked before a
full run; each still runs its comparison with the reference library. Timed once on the nearly
idle 2-core machine: 196 s for the eleven scripts (baselines 12, FM 16, implicit 20, ingest 2,
kNN 45, kNN ranking 28, MF 6, rules 25, speed_mf 8, topn 34). The scripts in
:data:`QUICK_SKIP` are left out of a quick run (each with its reason): they time a whole system
around the kernels (a JVM, torch training, a federated simulation, a load test) and take their
own minutes at any size. Its tables go to ``benchmarks/quick/results/`` and are assembled into
``benchmarks/quick/RESULTS.md`` (ignored by git): the committed results are never overwritten
by quick numbers.

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
QUICK_DIR = BENCH_DIR / "quick"

# arguments every run of a script needs (a positional part, a label)
FULL_ARGS: dict[str, list[str]] = {
    "bench_implicit": ["all"],
    "bench_search": ["--label", "optuna"],
}
# --quick: smaller sizes and one repetition, through each script's own options; "{out}" is
# replaced by the quick results folder (scripts that take an output path)
QUICK_ARGS: dict[str, list[str]] = {
    "bench_baselines": ["--repeat", "1"],
    "bench_speed_mf": ["--repeat", "1", "--folds", "1", "--no-spark"],
    "bench_fm": ["--folds", "1", "--feature-sets", "0", "--skip-myfm-features",
                 "--sections", "rmse"],
    "bench_implicit": ["all", "--recorded", "--repeat", "1", "--sizes", "100000",
                       "--bpr-epochs", "20",
                       "--out", "{out}/implicit.md"],
    "bench_ingest": ["--rows", "100000", "--repeats", "1"],
    "bench_knn": ["--quick", "--parts", "surprise,memory", "--out", "{out}/knn.md"],
    "bench_knn_ranking": ["--quick"],
    "bench_mf": ["--folds", "1", "--svdpp-folds", "", "--repeat", "1", "--no-tune",
                 "--out", "{out}/mf.md"],
    "bench_report": ["--repeat", "1"],
    "bench_rules": ["--quick", "--output", "{out}/rules.md"],
    "bench_topn": ["--datasets", "ml-100k", "--reduced", "--single",
                   "--models", "EASE", "RP3beta", "SLIM"],
}

# left out of --quick: not kernel timings, and minutes long at any size (run them with -k)
QUICK_SKIP: dict[str, str] = {
    "bench_federated": "a federated simulation over every MovieLens user",
    "bench_report": "the HTML report and its plots, not a kernel",
    "bench_search": "an optuna search, many fits",
    "bench_sequential": "torch training of GRU4Rec and SASRec",
    "bench_sequential_recbole": "RecBole's reference training, hours on this machine",
    "bench_serve": "a 60 s load test and a 1M-item index build",
    "bench_spark": "a Spark JVM",
}


def scripts(pattern: str | None = None) -> list[Path]:
    """The benchmark scripts, in name order, optionally filtered by a substring."""
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    return [p for p in found if pattern is None or pattern in p.stem]


def arguments(script: Path, quick: bool, results_dir: Path) -> list[str]:
    """Command-line arguments of one script for a full or a quick run."""
    table = QUICK_ARGS if quick else FULL_ARGS
    return [a.replace("{out}", str(results_dir)) for a in table.get(script.stem, [])]


def run(script: Path, timeout: float | None, quick: bool = False,
        results_dir: Path = RESULTS_DIR) -> tuple[bool, float, str]:
    """Run one script from the repository root; return (ok, seconds, last lines of output)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    if quick:
        env["CHUCHUN_BENCH_RESULTS"] = str(results_dir)  # scripts writing through common.py
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script.relative_to(REPO)),
             *arguments(script, quick, results_dir)], cwd=REPO, env=env,
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


def assemble(failures: dict[str, str], results_dir: Path = RESULTS_DIR,
             output: Path = OUTPUT, quick: bool = False) -> Path:
    """Concatenate ``results/*.md`` into ``RESULTS.md`` (atomic write)."""
    parts = [
        "# chuchun benchmark results" + (" (quick check: reduced sizes, one repetition)"
                                         if quick else ""),
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
    results = sorted(results_dir.glob("*.md")) if results_dir.exists() else []
    if not results:
        parts.append("_No results yet._")
    for path in results:
        parts += [_nest_headings(path.read_text().strip()), ""]
    tmp = output.with_suffix(".md.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and assemble RESULTS.md.")
    parser.add_argument("-k", dest="pattern", help="only scripts whose name contains this")
    parser.add_argument("--assemble-only", action="store_true",
                        help="do not run anything; rebuild RESULTS.md from results/")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per script (default: no limit)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes, one repetition; results go to benchmarks/quick/")
    args = parser.parse_args(argv)
    results_dir = QUICK_DIR / "results" if args.quick else RESULTS_DIR
    output = QUICK_DIR / "RESULTS.md" if args.quick else OUTPUT
    results_dir.mkdir(parents=True, exist_ok=True)

    failures: dict[str, str] = {}
    if not args.assemble_only:
        todo = scripts(args.pattern)
        if args.quick and args.pattern is None:
            for script in [t for t in todo if t.stem in QUICK_SKIP]:
                print(f"skipping {script.name} in a quick run: {QUICK_SKIP[script.stem]}")
            todo = [t for t in todo if t.stem not in QUICK_SKIP]
        if not todo:
            print(f"no benchmark scripts match {args.pattern!r}", file=sys.stderr)
            return 1
        for script in todo:
            print(f"running {script.name} ...", flush=True)
            ok, seconds, tail = run(script, args.timeout, args.quick, results_dir)
            print(f"  {'ok' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
            if not ok:
                failures[script.name] = tail
                print(tail, file=sys.stderr)
    path = assemble(failures, results_dir, output, args.quick)
    print(f"wrote {path.relative_to(REPO)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
