"""Shared helpers for the benchmarks in bench/: timing, resources, tables, results, profiles.

Every benchmark measures a callable several times and quotes the median, reports CPU seconds
next to wall time (the machines are shared: a wall time far above the CPU time means the run
was descheduled), prints one table with ratios against a baseline measured in the same run,
and writes the figures as JSON under ``bench/results/`` (ignored by git).

Nothing here imports bgpd: the helpers serve any benchmark.
"""

from __future__ import annotations

import datetime as _dt
import gc
import io
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# --- timing ---------------------------------------------------------------------------------


@dataclass
class Measurement:
    """Repeated runs of one piece of work: ``units`` items (prefixes, messages...) per run."""

    name: str
    units: int
    unit: str = "prefixes"
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    baseline: str | None = None  # name of the measurement the ratio is taken against
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)

    @property
    def rate(self) -> float:
        """Units per second of wall time (median run)."""
        t = self.median_wall
        return self.units / t if t > 0 else float("inf")

    def time_for(self, units: int) -> float:
        """Seconds the median run's rate needs for ``units`` units."""
        return units / self.rate

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "units": self.units,
            "unit": self.unit,
            "runs": len(self.wall),
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "median_wall_s": self.median_wall,
            "median_cpu_s": self.median_cpu,
            "min_wall_s": min(self.wall),
            "rate_per_s": self.rate,
            "baseline": self.baseline,
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def measure(
    name: str,
    fn: Callable[[], int],
    *,
    repeat: int,
    setup: Callable[[], None] | None = None,
    units: int | None = None,
    unit: str = "prefixes",
    baseline: str | None = None,
    note: str = "",
    verbose: bool = True,
) -> Measurement:
    """Run ``fn`` ``repeat`` times; it returns the number of units it processed.

    ``setup`` runs before each run, outside the timing (e.g. to clear caches). A full
    garbage collection also runs before each run so that one run does not pay for the
    garbage of the previous one; the collector stays enabled during the run, as it would be
    in the daemon. Every run must report the same number of units (a cheap correctness check),
    and ``units``, when given, is the number expected.
    """
    m = Measurement(name, units or 0, unit, baseline=baseline, note=note)
    for k in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        n = fn()
        t1 = time.perf_counter()
        c1 = time.process_time()
        if units is not None and n != units:
            raise AssertionError(f"{name}: run {k} processed {n} {unit}, expected {units}")
        if k and n != m.units:
            raise AssertionError(f"{name}: run {k} processed {n} {unit}, run 0 {m.units}")
        m.units = n
        m.wall.append(t1 - t0)
        m.cpu.append(c1 - c0)
        if verbose:
            print(
                f"  {name}: run {k + 1}/{repeat} {t1 - t0:.3f} s wall, {c1 - c0:.3f} s CPU",
                file=sys.stderr,
                flush=True,
            )
    return m


# --- resources ------------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (Linux reports kilobytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> int:
    """The process's resident set size now (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def cpu_seconds() -> float:
    """User + system CPU seconds used by this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine_info() -> dict:
    info = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": load_average(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def git_info(paths: Sequence[str] = ()) -> dict:
    """The commit measured, and whether ``paths`` (e.g. the code under test) had local changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            r = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    info = {"commit": git("rev-parse", "--short", "HEAD")}
    if paths:
        status = git("status", "--porcelain", "--", *paths)
        info["dirty"] = bool(status) if status is not None else None
    return info


def warn_if_busy(threshold: float = 0.5) -> None:
    """Print a warning when the 1-minute load average says the machine is not idle."""
    load = load_average()
    if load is not None and load[0] > threshold:
        print(
            f"warning: load average {load[0]:.2f} — the machine is busy, figures will be noisy",
            file=sys.stderr,
        )


# --- formatting -----------------------------------------------------------------------------


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_seconds(s: float) -> str:
    if s >= 100:
        return f"{s:,.0f} s"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1000:.0f} ms"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], file=None) -> str:
    """Print (and return) a plain-text table; the first column is left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        out = [cells[0].ljust(widths[0])]
        out += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(out).rstrip()

    text = "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])
    print(text, file=file or sys.stdout)
    return text


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |"]
    out.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


RATE_HEADERS = (
    "implementation",
    "units/run",
    "runs",
    "median",
    "CPU",
    "rate/s",
    "per 1M",
    "ratio",
)


def rate_rows(measurements: Sequence[Measurement], per: int = 1_000_000) -> list[list[str]]:
    """Rows for :data:`RATE_HEADERS`: ``baseline is`` = baseline rate / this rate."""
    by_name = {m.name: m for m in measurements}
    rows = []
    for m in measurements:
        ratio = None
        if m.baseline is not None and m.baseline in by_name:
            ratio = by_name[m.baseline].rate / m.rate
        rows.append(
            [
                m.name,
                fmt_int(m.units),
                str(len(m.wall)),
                fmt_seconds(m.median_wall),
                fmt_seconds(m.median_cpu),
                fmt_int(m.rate),
                fmt_seconds(m.time_for(per)),
                fmt_ratio(ratio),
            ]
        )
    return rows


def rate_headers(unit: str = "units", ratio: str = "baseline is") -> list[str]:
    """:data:`RATE_HEADERS` with the unit and the ratio column named."""
    h = list(RATE_HEADERS)
    h[1] = f"{unit}/run"
    h[5] = f"{unit}/s"
    h[7] = ratio
    return h


def print_rate_table(
    measurements: Sequence[Measurement],
    per: int = 1_000_000,
    unit: str = "units",
    ratio: str = "baseline is",
) -> str:
    """Print one row per measurement; ``ratio`` = baseline rate / this rate."""
    return print_table(rate_headers(unit, ratio), rate_rows(measurements, per))


# --- results --------------------------------------------------------------------------------


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def write_results(kind: str, payload: dict, directory: Path | None = None) -> Path:
    """Write ``payload`` (plus machine info and the command line) as JSON; return the path."""
    directory = directory or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    stamp = timestamp()
    path = directory / f"{kind}-{stamp}.json"
    n = 1
    while path.exists():  # two runs in the same second
        n += 1
        path = directory / f"{kind}-{stamp}-{n}.json"
    doc = {
        "benchmark": kind,
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "machine": machine_info(),
        "git": git_info(payload.pop("git_paths", ())),
        "peak_rss_bytes": peak_rss_bytes(),
        "cpu_seconds_total": cpu_seconds(),
        **payload,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, default=_json_default)
        f.write("\n")
    return path


def _json_default(o):
    if isinstance(o, Measurement):
        return o.to_dict()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


# --- profiling ------------------------------------------------------------------------------


def profile_pyinstrument(fn: Callable[[], object], max_lines: int = 60, interval=0.0005) -> str:
    """Run ``fn`` under pyinstrument; return the top ``max_lines`` lines of its call tree."""
    from pyinstrument import Profiler

    gc.collect()
    profiler = Profiler(interval=interval)
    profiler.start()
    try:
        fn()
    finally:
        profiler.stop()
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    lines = text.rstrip("\n").splitlines()
    if max_lines and len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def profile_cprofile(fn: Callable[[], object], sort: str = "tottime", limit: int = 25) -> str:
    """Run ``fn`` under cProfile; return the ``limit`` top functions sorted by ``sort``."""
    import cProfile
    import pstats

    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn()
    finally:
        prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    # Drop pstats' preamble up to the column headers.
    text = out.getvalue()
    start = text.find("   ncalls")
    return text[start:].rstrip() if start >= 0 else text.rstrip()
