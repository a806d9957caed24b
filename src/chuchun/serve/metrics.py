"""Request counters and latency histograms in the Prometheus text exposition format (0.0.4).

One :class:`Metrics` per process: with ``--workers N`` each worker keeps its own numbers and
labels them with its ``pid``, so a scraper that reaches several workers can add them up.
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
from collections.abc import Iterable

__all__ = ["BUCKETS", "Metrics"]

#: upper bounds (seconds) of the latency histogram buckets
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class Metrics:
    """Counts and latency histograms per (method, route, status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, str], int] = {}
        self._sums: dict[tuple[str, str, str], float] = {}
        self._buckets: dict[tuple[str, str, str], list[int]] = {}
        self.pid = str(os.getpid())

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        j = bisect.bisect_left(BUCKETS, seconds)  # the first bucket with seconds <= bound
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            self._sums[key] = self._sums.get(key, 0.0) + seconds
            buckets = self._buckets.get(key)
            if buckets is None:
                buckets = self._buckets[key] = [0] * (len(BUCKETS) + 1)  # last: above all
            buckets[j] += 1

    def render(self, model_versions: dict[str, tuple[str, int]]) -> str:
        """The exposition text; ``model_versions`` maps name -> (class, version)."""
        with self._lock:
            counts = dict(self._counts)
            sums = dict(self._sums)
            # per-bucket counts -> the cumulative counts the exposition format wants
            buckets = {k: list(itertools.accumulate(v[:-1])) for k, v in self._buckets.items()}
        pid = ("pid", self.pid)
        out = [
            "# HELP chuchun_http_requests_total HTTP requests answered.",
            "# TYPE chuchun_http_requests_total counter",
        ]
        for (method, route, status), n in sorted(counts.items()):
            lab = _labels([("method", method), ("route", route), ("status", status), pid])
            out.append(f"chuchun_http_requests_total{lab} {n}")
        out += [
            "# HELP chuchun_http_request_duration_seconds Time from request to response.",
            "# TYPE chuchun_http_request_duration_seconds histogram",
        ]
        for key in sorted(counts):
            method, route, status = key
            base = [("method", method), ("route", route), ("status", status), pid]
            for bound, n in zip(BUCKETS, buckets[key], strict=True):
                lab = _labels([*base, ("le", repr(bound))])
                out.append(f"chuchun_http_request_duration_seconds_bucket{lab} {n}")
            lab = _labels([*base, ("le", "+Inf")])
            out.append(f"chuchun_http_request_duration_seconds_bucket{lab} {counts[key]}")
            out.append(f"chuchun_http_request_duration_seconds_sum{_labels(base)} {sums[key]:.6f}")
            out.append(f"chuchun_http_request_duration_seconds_count{_labels(base)} {counts[key]}")
        out += [
            "# HELP chuchun_model_version Version of each served model (1 + reloads).",
            "# TYPE chuchun_model_version gauge",
        ]
        for name, (cls, version) in sorted(model_versions.items()):
            lab = _labels([("model", name), ("class", cls), pid])
            out.append(f"chuchun_model_version{lab} {version}")
        return "\n".join(out) + "\n"
