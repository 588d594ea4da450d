"""What a benchmark section hands back, and the two ways it is shown: a terminal table and
Markdown for BENCHMARKS.md."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Target:
    """A promise from the issue, the figure that tests it, and whether it holds (None: unknown)."""

    claim: str
    figure: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "not measured"}[self.met]


@dataclass
class Section:
    """One section's figures: a table, the targets it checks, and notes on how it was measured."""

    name: str
    title: str
    method: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the section has no figures
    seconds: float = 0.0


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; fine for a few hundred samples."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def ratio(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}x"


def size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- rendering


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])


def render_text(sections: Sequence[Section]) -> str:
    out = []
    for s in sections:
        out.append(f"== {s.title} ({s.name}, {s.seconds:.0f} s)")
        if s.skipped:
            out.append(f"   skipped: {s.skipped}")
        if s.rows:
            out.append(text_table(s.headers, s.rows))
        out.extend(f"   target {t.verdict}: {t.claim}: {t.figure}" for t in s.targets)
        out.append("")
    out.append("== Targets")
    targets = [(s, t) for s in sections for t in s.targets]
    out.append(text_table(["section", "target", "figure", "verdict"],
                          [[s.name, t.claim, t.figure, t.verdict] for s, t in targets]))
    return "\n".join(out)


def render_markdown(sections: Sequence[Section], machine: dict[str, str], *,
                    command: str, partial: str | None, preamble: str = "") -> str:
    out = ["# Benchmarks", ""]
    out.append("All figures below come from one run of one command on one machine, measured side "
               "by side on loopback against the built-in stand-in server "
               "(`connector/standin/`). Rerun it to get your own:")
    out += ["", "```", command, "```", ""]
    if preamble:
        out += [preamble, ""]
    if partial:
        out += [f"> **{partial}**", ""]
    out += ["## Machine", "", markdown_table(["", ""], list(machine.items())), ""]
    out += ["## Targets", ""]
    out.append(markdown_table(
        ["section", "target", "figure", "verdict"],
        [[s.title, t.claim, t.figure, f"**{t.verdict}**"] for s in sections for t in s.targets]))
    out.append("")
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.method:
            out += [s.method, ""]
        if s.skipped:
            out += [f"**Not available in this run:** {s.skipped}", ""]
        if s.rows:
            out += [markdown_table(s.headers, s.rows), ""]
        out += [f"- {note}" for note in s.notes]
        out += [f"- Section time: {s.seconds:.0f} s.", ""]
    return "\n".join(out).rstrip() + "\n"
