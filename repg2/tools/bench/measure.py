"""How a figure is measured and kept: timing helpers, the :class:`Figure` record, the progress line.

Every section times with the helpers here and returns :class:`Figure`
records; the report divides a figure by its floor (another figure of the
same run, named by ``floor``) and by real Erlang's reference value.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Figure", "Progress", "latency_figure", "per_call", "percentile", "timed"]


@dataclass
class Figure:
    """One measured figure: a value per repeated run, and how it compares.

    ``runs`` holds one value per run (a median latency, a rate...); the
    figure is their median, with their min-max. ``floor`` names the figure
    (by ``id``) this one is divided by; ``erlang`` is real Erlang's value for
    the same operation in the same unit, if there is one, and
    ``erlang_source`` says where it comes from: ``'same_run'`` (real OTP
    nodes timed in this run, a figure of section ``erlang``) or ``'stored'``
    (the reference file: pg2, which OTP 25 no longer has, or no ``erl`` here).
    """

    id: str
    section: str
    name: str
    where: str
    unit: str
    runs: list[float]
    p99: float | None = None
    floor: str | None = None
    erlang: float | None = None
    erlang_source: str | None = None  # 'same_run' | 'stored' | None (no Erlang value)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        """The median of the runs (NaN if none succeeded)."""
        good = [r for r in self.runs if r == r]
        return statistics.median(good) if good else float("nan")

    def as_json(self) -> dict[str, Any]:
        """Return the figure as a JSON object, with median, min and max."""
        good = [r for r in self.runs if r == r]
        data = asdict(self)
        data.update(median=self.median, min=min(good, default=None), max=max(good, default=None))
        return data


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) of ``values``, by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def timed(fun: Callable[[], Any], repetitions: int) -> list[float]:
    """Run ``fun`` once to warm up, then ``repetitions`` times; return each call's microseconds."""
    fun()
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        fun()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def per_call(fun: Callable[[], Any], calls: int) -> float:
    """Return the mean microseconds per call of ``fun`` over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fun()
    return (time.perf_counter() - start) * 1e6 / calls


def latency_figure(fid: str, section: str, name: str, where: str, samples: list[float], runs: int, **kw: Any) -> Figure:
    """Make a latency figure in microseconds: the samples in ``runs`` chunks, a median each; p99 of all."""
    size = max(1, len(samples) // runs)
    chunks = [samples[i : i + size] for i in range(0, size * runs, size)]
    return Figure(
        fid, section, name, where, "us", [statistics.median(c) for c in chunks if c], p99=percentile(samples, 99), **kw
    )


class Progress:
    """A one-line progress display on stderr: step n of N, elapsed time, what runs now.

    On a terminal the line is rewritten in place; otherwise (CI, a pipe) each
    step is one line, so a log shows where a slow run spent its time.
    """

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, what: str) -> None:
        """Announce the next step."""
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done:>2}/{self.total}] {time.monotonic() - self.start:6.1f} s  {what}"
        if self.tty:
            sys.stderr.write("\r\x1b[2K" + line[:150])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        """End the display with the total time."""
        if self.enabled:
            end = "\r\x1b[2K" if self.tty else ""
            sys.stderr.write(f"{end}done: {self.done} steps in {time.monotonic() - self.start:.1f} s\n")
            sys.stderr.flush()
