"""Shared pieces of the benchmark scripts: data, timing, peak memory, markdown tables.

Every ``benchmarks/bench_*.py`` script runs chuchun and a reference library on the same data and
split in one process, then writes ``benchmarks/results/<topic>.md`` with :func:`write_results`,
which records the exact command and the machine at the top of the file.

The datasets are read from ``../shared/datasets`` beside the repository (override with the
``CHUCHUN_SHARED`` environment variable pointing at the ``shared`` folder); MovieLens 100K is
never copied into the project.
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# ``run_all.py --quick`` points this elsewhere so a quick check never overwrites the results
RESULTS_DIR = Path(os.environ.get("CHUCHUN_BENCH_RESULTS", BENCH_DIR / "results"))
SHARED = Path(os.environ.get("CHUCHUN_SHARED", REPO.parent / "shared"))
DATASETS = SHARED / "datasets"
ML100K = DATASETS / "ml-100k"

# make `import chuchun` work from a source checkout without installing it
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from chuchun import DataWarning, Interactions  # noqa: E402
from chuchun.data.splits import Split, movielens_100k_folds, user_holdout  # noqa: E402

ML100K_COLUMNS = ["user", "item", "rating", "timestamp"]


# -- data --------------------------------------------------------------------------------------
def _need(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(
            f"benchmark data not found: {path}. Put the shared datasets at {DATASETS} "
            "or set CHUCHUN_SHARED to the folder holding datasets/"
        )
    return path


def ml100k_folds() -> list[Split]:
    """The official MovieLens 100K folds u1..u5 (test pairs unknown to training are counted in
    each split's ``info``; the warning about them is silenced here, the counts are reported)."""
    _need(ML100K / "u1.base")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return movielens_100k_folds(ML100K)


def ml100k_fold_paths() -> list[tuple[str, str]]:
    """(base, test) file paths of u1..u5, for reference libraries that read files."""
    return [(str(ML100K / f"u{f}.base"), str(ML100K / f"u{f}.test")) for f in range(1, 6)]


def read_ml100k_file(path: str | Path) -> Interactions:
    """One tab-separated MovieLens 100K file (``u.data``, ``u1.base``, ...)."""
    return Interactions.from_csv(
        _need(Path(path)), sep="\t", header=False, names=ML100K_COLUMNS, rating_scale=(1.0, 5.0)
    )


def ml100k_ratings() -> Interactions:
    """All 100,000 ratings of ``u.data``."""
    return read_ml100k_file(ML100K / "u.data")


def ml100k_temporal_split(test_fraction: float = 0.2) -> Split:
    """"The temporal split": each user's most recent ``floor(n_u * test_fraction)`` ratings
    (by timestamp, then item id) are the test part (:func:`chuchun.data.splits.user_holdout`
    with ``order="time"``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return user_holdout(ml100k_ratings(), test_fraction=test_fraction, order="time")


# -- timing and memory -------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float]:
    """Run ``fn`` ``repeat`` times; return the last result and the fastest wall time (s)."""
    best = math.inf
    result: Any = None
    for _ in range(max(1, repeat)):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


_MEMORY_WRAPPER = """
import gc, json, resource, sys
sys.path.insert(0, {src!r})
sys.path.insert(0, {bench!r})
{setup}

def _status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1

gc.collect()
try:  # reset the peak (VmHWM) to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    reset = True
except OSError:
    reset = False
before = _status("VmRSS")
{code}
peak = _status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("__PEAK__" + json.dumps({{"before_kib": before, "peak_kib": peak, "reset": reset}}))
"""


def peak_memory(code: str, setup: str = "", timeout: float = 600.0) -> dict[str, float]:
    """Peak resident memory of running ``code`` in a fresh Python subprocess.

    ``setup`` runs first (imports, data loading); then the peak-RSS mark is reset to the
    current RSS (Linux ``/proc/self/clear_refs``) and ``code`` runs. Returns ``rss_before_mib``
    (resident memory when ``code`` starts), ``peak_mib`` (the process's peak during ``code``)
    and ``delta_mib`` (their difference: the extra memory the measured work needed at its
    peak). Without the reset (not Linux) the peak is the whole process's high-water mark.
    """
    script = _MEMORY_WRAPPER.format(
        src=str(REPO / "src"), bench=str(BENCH_DIR),
        setup=textwrap.dedent(setup), code=textwrap.dedent(code),
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
        cwd=str(REPO),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory measurement failed:\n{proc.stderr[-2000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("__PEAK__"))
    data = json.loads(line[len("__PEAK__"):])
    return {
        "rss_before_mib": data["before_kib"] / 1024,
        "peak_mib": data["peak_kib"] / 1024,
        "delta_mib": max(0, data["peak_kib"] - data["before_kib"]) / 1024,
        "reset": bool(data["reset"]),
    }


# -- reporting ---------------------------------------------------------------------------------
def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and value):
        return f"{int(value):,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value and abs(value) < 10 ** -digits:
            return f"{value:.1e}"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(frame: pd.DataFrame, digits: int = 4, index: bool = True) -> str:
    """A GitHub-markdown table of ``frame`` (numbers with ``digits`` decimals)."""
    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for key, row in frame.iterrows():
        cells = ([str(key)] if index else []) + [_fmt(v, digits) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        import psutil

        return f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        return "RAM unknown"


def machine_description(libraries: Iterable[str] = ()) -> str:
    """One paragraph: CPU, cores, memory, OS, Python and library versions."""
    versions = []
    for name in ["chuchun", "numpy", "scipy", "numba", "pandas", *libraries]:
        try:
            module = importlib.import_module(name)
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError:
            versions.append(f"{name} (not installed)")
    return (
        f"{_cpu_model()}, {os.cpu_count()} logical cores (shared with other work during the "
        f"run), {_memory_gib()}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; " + ", ".join(versions)
    )


def command_line() -> str:
    """The command that is running, as it could be typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(REPO))
    except ValueError:
        script_text = str(script)
    return " ".join(["python", shlex.quote(script_text), *map(shlex.quote, sys.argv[1:])])


def write_results(
    topic: str,
    title: str,
    sections: Sequence[tuple[str, str]],
    *,
    libraries: Iterable[str] = (),
    notes: str = "",
) -> Path:
    """Write ``benchmarks/results/<topic>.md``: title, command, machine, date, then each
    ``(heading, markdown body)`` section and optional notes. Returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"## {title}",
        "",
        f"Command: `{command_line()}` (run from the repository root)  ",
        f"Machine: {machine_description(libraries)}  ",
        f"Date: {now}",
        "",
    ]
    for heading, body in sections:
        parts += [f"### {heading}", "", body.strip(), ""]
    if notes:
        parts += [notes.strip(), ""]
    path = RESULTS_DIR / f"{topic}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(parts))
    tmp.replace(path)
    return path
