"""The panels of the main screen. Each renders from plain values the app hands it once per poll;
none of them touches the runner or the session."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.widgets import DataTable, Sparkline, Static

from ..runner import FAILED, FINISHED, IDLE, RUNNING, STOPPED
from .snapshot import DEVICE_LOST

MUTED = "#7f8796"
GOOD = "#3ddc84"
WARN = "#f2c94c"
BAD = "#ff4d4d"


def fmt_us(us: float | None) -> str:
    """A latency for people: microseconds below 1 ms, milliseconds above."""
    if us is None:
        return "—"
    if us < 1000:
        return f"{us:.1f}µs"
    if us < 10_000:
        return f"{us / 1000:.2f}ms"
    return f"{us / 1000:.1f}ms"


def fmt_count(n: int) -> str:
    """A count in at most five characters: exact below 10,000, then 12.3k, 1.23M."""
    if n < 10_000:
        return str(n)
    unit, scale = ("k", 1000) if n < 1_000_000 else ("M", 1_000_000)
    # three significant digits, truncated (so 99,999 stays 99.9k), never fewer than the units
    decimals = max(0, 3 - len(str(n // scale)))
    return f"{n // (scale // 10 ** decimals) / 10 ** decimals:.{decimals}f}{unit}"


def fmt_clock(seconds: float) -> str:
    """Audio time for the state line: `seconds` (negative counts as 0) as MM:SS.mmm, or
    H:MM:SS.mmm from an hour on."""
    minutes, sec = divmod(max(0.0, seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{sec:06.3f}"
    return f"{minutes:02d}:{sec:06.3f}"


# -- counters --------------------------------------------------------------------------------------

class CounterPanel(Static):
    """The smaller counters: copies by kind, xruns, drops and node errors.

    Three aligned lines in the wide layout, one line (`compact`) in a narrow terminal. Counts
    that mean trouble (drops, xruns, errors, engine copies) turn red or amber above zero."""

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.compact = compact

    def show(self, stats: Mapping[str, Any] | None) -> None:
        """Redraw from a stats report (None before a run: all zeros): copies engine/cow/io,
        xruns in/out, drops and errors, as three aligned lines or one compact line. Nothing
        is redrawn when no count changed."""
        values = self._values(stats)
        if values == getattr(self, "_shown", None):
            return
        self._shown = values
        self.update(self.line(stats) if self.compact else self.grid(stats), layout=False)

    @staticmethod
    def _values(stats: Mapping[str, Any] | None) -> list[tuple[str, list[tuple[str, int, str]]]]:
        s = stats or {}
        copies = s.get("copies", {})
        xruns = s.get("xruns", {})
        return [
            ("copies", [("engine", copies.get("engine", 0), WARN),
                        ("cow", copies.get("cow", 0), ""), ("io", copies.get("io", 0), "")]),
            ("xruns", [("in", xruns.get("input_overflow", 0), BAD),
                       ("out", xruns.get("output_underflow", 0), BAD)]),
            ("faults", [("drops", s.get("drops", 0), BAD), ("errors", s.get("errors", 0), BAD)]),
        ]

    @staticmethod
    def _value(value: int, bad: str) -> Text:
        return Text(fmt_count(value), style=f"bold {bad}" if bad and value else "bold")

    @classmethod
    def grid(cls, stats: Mapping[str, Any] | None) -> Table:
        """The wide layout: one row each for copies (engine, cow, io), xruns (in, out) and
        faults (drops, errors), labels right-aligned, counts that mean trouble bold red or
        amber above zero."""
        table = Table.grid(padding=(0, 1))
        table.add_column(style="bold #c0c6d4", no_wrap=True)
        for _ in range(3):
            table.add_column(style=MUTED, no_wrap=True, justify="right")
            table.add_column(no_wrap=True, min_width=3)
        for head, items in cls._values(stats):
            cells: list = [head]
            for label, value, bad in items:
                cells += [label, cls._value(value, bad)]
            table.add_row(*cells)
        return table

    @classmethod
    def line(cls, stats: Mapping[str, Any] | None) -> Text:
        """The narrow layout: the same counts as grid() on one line, groups separated by bars."""
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, (head, items) in enumerate(cls._values(stats)):
            if i:
                out.append(" │ ", style="#3a3f4b")
            out.append(head, style="bold #c0c6d4")
            for label, value, bad in items:
                out.append(f" {label} ", style=MUTED)
                out.append_text(cls._value(value, bad))
        return out


# -- latency ---------------------------------------------------------------------------------------

class LatencyView(Horizontal):
    """Recent per-frame latencies: the name and p50/p95/p99/max (and the p99 as a share of the
    block's duration) on the left, a sparkline of the last frames on the right."""

    DEFAULT_CSS = """
    LatencyView { height: 2; }
    LatencyView > .latency-stats { width: 50; height: 2; }
    LatencyView > Sparkline { width: 1fr; height: 2; }
    LatencyView.missing { height: 1; }
    LatencyView.missing > Sparkline { display: none; }
    """

    def __init__(self, title: str, *, id: str | None = None, show_load: bool = False) -> None:
        super().__init__(id=id)
        self.title = title
        self.show_load = show_load
        self._shown = ""

    def compose(self) -> ComposeResult:
        """Build the view: a text block for the name and percentiles, and a sparkline of the
        recent frames."""
        yield Static(Text(self.title), classes="latency-stats")
        yield Sparkline([], classes="latency-spark")

    def show(self, recent_us: Sequence[float] | None, summary: Mapping[str, float] | None,
             budget_us: float | None, missing: str = "no data yet") -> None:
        """Redraw from one poll: `recent_us` (per-frame latencies in microseconds, oldest first)
        feeds the sparkline; `summary` gives p50/p95/p99/max (microseconds, shown as µs or
        ms); with show_load and `budget_us` (the block's duration in microseconds) the p99
        load as a percentage of it, red from 50%. A None summary folds the view to one line
        reading `missing`."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(self.title, style="bold #c0c6d4")
        spark = self.query_one(Sparkline)
        self.set_class(summary is None, "missing")
        if summary is None:
            text.append(f"  {missing}", style=MUTED)
            spark.data = []
        else:
            if budget_us and self.show_load:
                load = 100.0 * summary.get("p99", 0.0) / budget_us
                text.append("   p99 load ", style=MUTED)
                text.append(f"{load:.2f}%", style=f"bold {BAD if load >= 50 else GOOD}")
                text.append(f" of {budget_us / 1000:g} ms", style=MUTED)
            text.append("\n")
            for key in ("p50", "p95", "p99", "max"):
                text.append(f"{key} ", style=MUTED)
                text.append(f"{fmt_us(summary.get(key)):<8}", style="bold")
            spark.data = list(recent_us or ())
        if text.plain != self._shown:
            self._shown = text.plain
            self.query_one(".latency-stats", Static).update(text, layout=False)


# -- state -----------------------------------------------------------------------------------------

_BADGES = {
    RUNNING: ("● RUNNING", "bold #0b1a10 on #3ddc84"),
    STOPPED: ("■ STOPPED", "bold #1c1f26 on #c0c6d4"),
    FINISHED: ("◆ FINISHED", "bold #1c1f26 on #8ab4f8"),
    FAILED: ("✖ FAILED", "bold #ffffff on #d62d2d"),
    IDLE: ("○ IDLE", "bold #1c1f26 on #7f8796"),
    DEVICE_LOST: ("✖ DEVICE LOST", "bold #ffffff on #d62d2d"),
}


class StateLine(Static):
    """Running, stopped, finished or failed, and why; audio time; realtime factor; bypass."""

    def show(self, state: str, reason: str | None, stats: Mapping[str, Any] | None,
             period_s: float | None, bypass: bool) -> None:
        """Redraw the state line from one poll (see line()); nothing is redrawn when its text is
        unchanged."""
        text = self.line(state, reason, stats, period_s, bypass)
        if text.plain != getattr(self, "_shown", None):
            self._shown = text.plain
            self.update(text, layout=False)

    @staticmethod
    def line(state: str, reason: str | None, stats: Mapping[str, Any] | None,
             period_s: float | None, bypass: bool) -> Text:
        """The state line's text: a coloured badge for `state` (RUNNING, STOPPED, FINISHED,
        FAILED, IDLE, DEVICE LOST), a BYPASS badge when on, the audio time (frames_in times
        `period_s`, the block duration in seconds), the realtime factor while running, and
        `reason` (red for a failure or a lost device)."""
        label, style = _BADGES.get(state, (state.upper(), "bold"))
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f" {label} ", style=style)
        if bypass:
            out.append(" ")
            out.append(" BYPASS ", style="bold #1c1f26 on #f2c94c")
        if stats is not None and period_s:
            out.append("  t ", style=MUTED)
            out.append(fmt_clock(stats.get("frames_in", 0) * period_s), style="bold")
            if state == RUNNING:
                out.append("  speed ", style=MUTED)
                out.append(f"×{stats.get('realtime_factor', 0.0):.2f}", style="bold")
        if reason:
            out.append("  ")
            out.append(reason, style=f"bold {BAD}" if state in (FAILED, DEVICE_LOST)
                       else MUTED)
        return out


# -- pipeline --------------------------------------------------------------------------------------

NODE_COLUMNS = (("#", "idx"), ("node", "id"), ("type", "type"), ("calls", "calls"),
                ("errors", "errors"), ("p50 µs", "p50"), ("p99 µs", "p99"), ("max µs", "max"))
_NUMBER_WIDTHS = {"calls": 8, "errors": 6, "p50": 7, "p99": 7, "max": 8}
#: the columns a narrow terminal drops
_WIDE_ONLY = {"idx", "max"}


class NodeTable(DataTable):
    """A DataTable whose render caches stay small.

    DataTable keys its render caches by an update counter, so a table whose cells change on
    every poll never hits an old entry again. Left at their sizes (10,000 cells, 1,000 rows and
    lines) the caches fill with dead renders, about 100k objects after a minute of polling, and
    every full garbage collection then walks them holding the GIL for 50-100 ms: long enough for
    a sound device to miss its deadline. A screenful is all a live table can reuse."""

    CACHE_SIZES = {"_cell_render_cache": 512, "_row_render_cache": 64,
                   "_row_renderable_cache": 64, "_line_cache": 128}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, size in self.CACHE_SIZES.items():
            getattr(self, name).maxsize = size


class PipelineView(Horizontal):
    """One row per node in topological order (a DataTable) beside the graph's edges. In a
    narrow terminal (`compact`) the table drops its index and max columns."""

    compact: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        """Build the view: the node table (rows are added by set_pipeline) beside a scrollable
        box with the graph's edges."""
        table = NodeTable(id="nodes", cursor_type="row", zebra_stripes=True)
        table.border_title = "pipeline"
        yield table
        with VerticalScroll(id="edges") as edges:
            edges.border_title = "graph"
            yield Static(id="edges-text")

    def set_pipeline(self, nodes: Sequence[tuple[str, str]], edges: Sequence[tuple[str, str]]):
        """nodes: (id, type) in topological order; edges: (from, to)."""
        self._node_rows = list(nodes)
        self._build_table()
        self.query_one("#edges-text", Static).update(edge_text(edges))

    def watch_compact(self) -> None:
        """Textual watcher of `compact` (the app sets it below NARROW columns): rebuild the
        table with or without the index and max columns, once a pipeline is set."""
        if hasattr(self, "_node_rows"):
            self._build_table()

    def _columns(self) -> list[tuple[str, str]]:
        return [c for c in NODE_COLUMNS if not (self.compact and c[1] in _WIDE_ONLY)]

    def _build_table(self) -> None:
        nodes = self._node_rows
        table = self.query_one("#nodes", DataTable)
        table.clear(columns=True)
        widths = {"idx": len(str(len(nodes))),
                  "id": max([4, *(len(node_id) for node_id, _ in nodes)]),
                  "type": max([4, *(len(node_type) for _, node_type in nodes)]),
                  **_NUMBER_WIDTHS}
        if self.compact:
            widths.update(p50=6, p99=6)
        columns = self._columns()
        for label, key in columns:
            header = Text(label, justify="right" if key in _NUMBER_WIDTHS else "left")
            table.add_column(header, key=key, width=widths[key])
        self._values: dict[str, tuple] = {}
        for i, (node_id, node_type) in enumerate(nodes, 1):
            first = {"idx": Text(str(i), style=MUTED), "id": Text(node_id, style="bold"),
                     "type": node_type}
            cells = dict(zip([k for _, k in NODE_COLUMNS[3:]], self._cells(None)))
            row = [first.get(key, cells.get(key)) for _, key in columns]
            table.add_row(*row, key=node_id)

    def show(self, node_stats: Mapping[str, Mapping[str, Any]] | None) -> None:
        """Update the node rows from the stats report's `nodes` section: calls, errors (red
        above zero) and latency p50/p99/max in microseconds; a row whose values did not
        change is left alone, and None shows zeros and dashes. A fused node's latency (its
        share of its group's, engine/schedule.py) is shown muted after a "~", and the table's
        subtitle says what the mark means."""
        table = self.query_one("#nodes", DataTable)
        if any("fused" in r for r in (node_stats or {}).values()):
            table.border_subtitle = "~ share of a fused group's time"
        values = getattr(self, "_values", {})
        for node_id in list(table.rows):
            record = (node_stats or {}).get(node_id.value)
            key = _record_key(record)
            if values.get(node_id.value) == key:
                continue
            values[node_id.value] = key
            shown = {column for _, column in self._columns()}
            for (_, column), cell in zip(NODE_COLUMNS[3:], self._cells(record)):
                if column in shown:
                    table.update_cell(node_id, column, cell)

    @staticmethod
    def _cells(record: Mapping[str, Any] | None) -> tuple[Text, ...]:
        def cell(text: str, style: str = "") -> Text:
            # one line, never wrapped: the table re-renders every cell on each update
            return Text(text, style=style, justify="right", no_wrap=True, end="")

        if record is None:
            return (cell("0"), cell("0"), *(cell("—", MUTED) for _ in range(3)))
        lat = record.get("latency_us") or {}
        errors = record.get("errors", 0)
        mark, style = ("~", MUTED) if "fused" in record else ("", "")
        return (cell(f"{record.get('calls', 0):,}"),
                cell(f"{errors:,}", f"bold {BAD}" if errors else ""),
                *(cell(f"{mark}{lat.get(k, 0.0):,.1f}", style) for k in ("p50", "p99", "max")))


def _record_key(record: Mapping[str, Any] | None):
    if record is None:
        return None
    lat = record.get("latency_us") or {}
    return (record.get("calls"), record.get("errors"), lat.get("p50"), lat.get("p99"),
            lat.get("max"), "fused" in record)


def edge_text(edges: Sequence[tuple[str, str]]) -> Text:
    """The graph as lines of arrows, a straight run of nodes on one line:

        input ─▶ a ─▶ b ─▶ c ─▶ output        (a chain)
        input ─▶ gain ─▶ meter, output        (a fan-out)
        left ─▶ mix                           (one line per input of a fan-in)

    Every edge appears exactly once; the session's own ends stand out."""
    targets: dict[str, list[str]] = {}
    producers: dict[str, int] = {}
    for src, dst in edges:
        targets.setdefault(src, []).append(dst)
        producers[dst] = producers.get(dst, 0) + 1

    def name(node: str) -> Text:
        if node in ("input", "output"):
            return Text(node, style=f"bold {GOOD}")
        return Text(node, style="bold #c0c6d4")

    arrow = Text(" ─▶ ", style=MUTED)
    out = Text()
    done: set[str] = set()
    for src in targets:
        if src in done:
            continue
        chain = [src]
        done.add(src)
        while True:
            outs = targets[chain[-1]]
            nxt = outs[0]
            if len(outs) == 1 and producers[nxt] == 1 and nxt in targets and nxt not in done:
                chain.append(nxt)
                done.add(nxt)
                continue
            break
        if out:
            out.append("\n")
        for node in chain:
            out.append_text(name(node))
            out.append_text(arrow)
        for j, dst in enumerate(targets[chain[-1]]):
            if j:
                out.append(", ", style=MUTED)
            out.append_text(name(dst))
    return out
