"""Where the first run of ``chuchun demo`` spends its compile time: one line per kernel.

Runs the demo in this process against an empty numba cache (a fresh ``NUMBA_CACHE_DIR``, so the
cache beside the sources is neither used nor filled) with the background warm-up off, and
records every numba compilation: the dispatcher, its argument types, and the wall and CPU
seconds it took. Nested compilations (a kernel calling another compiled function) are listed
under their caller and are included in the caller's time; ``self`` excludes them.

    python benchmarks/profile_first_run.py                  # the full demo
    python benchmarks/profile_first_run.py --quick --model BPR --model ItemKNN

The machine is shared: read the CPU column, wall time is inflated by other jobs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any


_PHASES = ("fit", "recommend", "predict", "explain", "similar_items", "recommend_for_history")


def _phase() -> str:
    """The outermost estimator method on the stack (which call made numba compile)."""
    frame = sys._getframe(2)
    found = "-"
    while frame is not None:
        if frame.f_code.co_name in _PHASES and "chuchun" in frame.f_code.co_filename:
            found = frame.f_code.co_name
        frame = frame.f_back
    return found


@dataclass
class Compile:
    name: str
    args: str
    depth: int
    phase: str = "-"
    wall: float = 0.0
    cpu: float = 0.0
    children_wall: float = 0.0
    children_cpu: float = 0.0
    children: list[Compile] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the demo's --quick")
    parser.add_argument("--model", action="append", default=[], help="only these models")
    parser.add_argument("--min-seconds", type=float, default=0.2,
                        help="hide compilations (and their callees) faster than this")
    args = parser.parse_args()

    cache = tempfile.mkdtemp(prefix="chuchun-nbcache-")
    os.environ["NUMBA_CACHE_DIR"] = cache  # before numba is imported
    start_wall, start_cpu = time.perf_counter(), time.process_time()

    from numba.core import event

    import chuchun.cli._feedback as feedback
    from chuchun.cli.demo import demo_command

    top: list[Compile] = []
    stack: list[tuple[Compile, float, float]] = []

    class Recorder(event.Listener):  # type: ignore[misc]
        def on_start(self, ev: Any) -> None:
            disp = ev.data["dispatcher"]
            py = disp.py_func
            name = f"{py.__module__.removeprefix('chuchun.kernels.')}.{py.__qualname__}"
            sig = ", ".join(str(a) for a in ev.data["args"])
            node = Compile(name, sig, len(stack), _phase())
            (stack[-1][0].children if stack else top).append(node)
            stack.append((node, time.perf_counter(), time.process_time()))

        def on_end(self, ev: Any) -> None:
            node, wall, cpu = stack.pop()
            node.wall = time.perf_counter() - wall
            node.cpu = time.process_time() - cpu
            if stack:
                stack[-1][0].children_wall += node.wall
                stack[-1][0].children_cpu += node.cpu

    feedback.start_background_warm_up = lambda *a, **k: None  # one process: honest CPU times
    argv = [*(["--quick"] if args.quick else []), *(x for m in args.model for x in ("--model", m))]
    with event.install_listener("numba:compile", Recorder()):
        try:
            demo_command.main(argv, standalone_mode=False, prog_name="chuchun demo")
        except SystemExit as exc:
            if exc.code:
                print(f"demo exited with status {exc.code}", file=sys.stderr)
    total_wall = time.perf_counter() - start_wall
    total_cpu = time.process_time() - start_cpu

    print("\n| kernel | called in | argument types | wall s | CPU s | self CPU s |")
    print("|---|---|---|---|---|---|")

    def show(node: Compile) -> None:
        if node.cpu < args.min_seconds:
            return
        indent = "&nbsp;&nbsp;" * node.depth
        short = node.args if len(node.args) < 90 else node.args[:87] + "..."
        print(f"| {indent}{node.name} | {node.phase} | `{short}` | {node.wall:.1f} | "
              f"{node.cpu:.1f} | {node.cpu - node.children_cpu:.1f} |")
        for child in node.children:
            show(child)

    for node in sorted(top, key=lambda n: -n.cpu):
        show(node)
    compile_wall = sum(n.wall for n in top)
    compile_cpu = sum(n.cpu for n in top)
    print(f"\n{len(top)} top-level compilations: {compile_wall:.1f} s wall, "
          f"{compile_cpu:.1f} s CPU; whole run {total_wall:.1f} s wall, {total_cpu:.1f} s CPU "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
