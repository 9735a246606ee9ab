"""Markdown tables of benchmark results, headed by the machine they ran on.

A ``Row`` shows one figure of ours (``value``) next to the figure it is compared with
(``reference``: the original 0.10.0, SQLite, or another figure of ours), each as the median
of the runs with their min–max, and the ratio of the two medians. A ``Target`` (from the
issues) is checked against that ratio, or against the value itself.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from peer import Results

__all__ = ["Ref", "Row", "Target", "describe_machine", "render_table"]


@dataclass(frozen=True)
class Ref:
    """One figure: ``metric`` of case ``key`` run on ``side``, shown as ``label``."""

    key: str
    side: str
    metric: str
    label: str = ""


@dataclass(frozen=True)
class Target:
    """A goal, ``op`` (``"<="`` or ``">="``) ``bound``, on the ratio or (``on_value``) the value."""

    op: str
    bound: float
    source: str
    on_value: bool = False

    def holds(self, x: float) -> bool:
        """Whether ``x`` meets the goal."""
        return x <= self.bound if self.op == "<=" else x >= self.bound

    def text(self, unit: str) -> str:
        """E.g. ``<= 1.2x (issue 11)`` or ``>= 400k ev/s (issue 11)``."""
        if not self.on_value:
            bound = f"{self.bound:g}x"
        else:
            bound = _fmt(self.bound, unit) if unit in ("ev/s", "B") else f"{self.bound:g} {unit}"
        return f"{self.op} {bound} ({self.source})"


@dataclass(frozen=True)
class Row:
    """One line of a table."""

    measure: str
    data: str
    unit: str
    value: Ref
    reference: Ref | None = None
    target: Target | None = None


def _fmt(x: float, unit: str) -> str:
    if unit == "B":
        return f"{x:,.0f} B" if x < 10_000 else f"{x / 2**20:,.1f} MiB"
    if unit == "ev/s":
        return f"{x / 1e3:,.0f}k ev/s" if x >= 10_000 else f"{x:,.0f} ev/s"
    if unit == "ms" and x >= 100_000:
        return f"{x / 1e3:,.0f} s"
    if unit == "ms" and x < 0.1:
        return _fmt(x * 1e3, "µs")
    if x < 1:
        return f"{x:.3g} {unit}"
    digits = 2 if x < 10 else 1 if x < 100 else 0
    return f"{x:,.{digits}f} {unit}"


def _cell(results: Results, ref: Ref, unit: str) -> tuple[str, float | None]:
    note = results.note(ref.key, ref.side)
    values = results.values(ref.key, ref.side, ref.metric)
    prefix = f"{ref.label}: " if ref.label else ""
    if note is not None and not values:
        short = note if len(note) <= 90 else note[:89] + "…"
        return f"{prefix}{short}", None
    if not values:
        return f"{prefix}not run", None
    med = statistics.median(values)
    spread = f" ({_fmt(min(values), unit)} – {_fmt(max(values), unit)})" if len(values) > 1 else ""
    failed = f"; {len(values)} run(s) only, then {note}" if note is not None and note.startswith("error") else ""
    if len(failed) > 120:
        failed = failed[:119] + "…"
    return f"{prefix}{_fmt(med, unit)}{spread}{failed}", med


def render_table(rows: Sequence[Row], results: Results) -> str:
    """The markdown table: measure, data, ours, reference, ratio, target."""
    out = ["| measure | data | ours: median (min – max) | compared with: median (min – max) | ratio | target |",
           "|---|---|---|---|---|---|"]
    for row in rows:
        ours, ours_med = _cell(results, row.value, row.unit)
        ref, ref_med = _cell(results, row.reference, row.unit) if row.reference else ("", None)
        ratio = ours_med / ref_med if ours_med is not None and ref_med else None
        ratio_text = "n/a" if ratio is None else "< 0.01x" if ratio < 0.01 else f"{ratio:.2f}x"
        target = ""
        if row.target is not None:
            x = ours_med if row.target.on_value else ratio
            if x is not None:
                verdict = "met" if row.target.holds(x) else "MISSED"
            elif ours_med is None and results.note(row.value.key, row.value.side) is not None:
                verdict = "MISSED (not measurable)"
            else:
                verdict = "n/a"
            target = f"{row.target.text(row.unit)}: {verdict}"
        out.append(f"| {row.measure} | {row.data} | {ours} | {ref} | {ratio_text} | {target} |")
    return "\n".join(out)


# -- the machine ---------------------------------------------------------------------------------
def _first_line_with(path: str, prefix: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _filesystem_of(path: str) -> str:
    """The type of the file system holding ``path`` (the longest mount point above it)."""
    real = os.path.realpath(path)
    best, fstype = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1].replace("\\040", " ")
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):
                    best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


def describe_machine(bench_dir: str, pythons: dict[str, str]) -> str:
    """One paragraph: date, CPU, cores, RAM, kernel, file system, Pythons, load average."""
    cpu = _first_line_with("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    mem_kb = _first_line_with("/proc/meminfo", "MemTotal")
    ram = f"{int(mem_kb.split()[0]) / 2**20:.0f} GiB RAM" if mem_kb else "RAM unknown"
    try:
        import msgpack

        msgpack_version = ".".join(map(str, msgpack.version))
    except ImportError:
        msgpack_version = "absent"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    peer_py = pythons.get("peer")
    py = f"Python {pythons.get('ours', sys.version.split()[0])} (ours)"
    py += f" and {peer_py} (routilux 0.10.0, serilux 0.3.1)" if peer_py else ""
    return (f"Measured {now} on {cpu}, {os.cpu_count()} cores, {ram}, "
            f"{platform.system()} {platform.release()}, bench dir on {_filesystem_of(bench_dir)}; "
            f"{py}; msgpack {msgpack_version}; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
            f"(1 / 5 / 15 min) at the end.")
