"""What each node call of a simulated conversation costs (remotemedia.converse): measured, from
a cost file a simulated run wrote, or a live run's model runs and device path.

Cost files (JSON): a simulated run's `{"version": 1, "nodes": {NODE_ID: [ms, ...]}}` (every
call, in order: a run from it repeats exactly), and a live run's `{"version": 1,
"model_runs": {NODE_ID: [[ms, ...] per user turn]}, "device_latency_ms": ms}` (its Whisper
runs and device path: a run from it measures every other call). ScriptError (exit 2) naming
the file for anything else.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .engine.errors import UsageError

COST_FILE_VERSION = 1
#: the most one node call may cost (s, in a cost file or a recording): a minute of compute
#: for one block, sentence or reply is already far past any voice loop's budget
MAX_COST_S = 60.0


class ScriptError(UsageError):
    """A bad conversation script, audio file or cost file (exit 2), naming it."""


class Costs:
    """What each node call costs, in seconds: measured now (`measured=True`: perf_counter
    around the call, recorded) or replayed from a cost file (the k-th call of a node costs the
    file's k-th figure for it; past the end, the median of its figures). `save(path)` writes
    what was charged: {"version": 1, "nodes": {NODE_ID: [ms, ...]}}.

    `model_runs` {NODE_ID: [ms, ...] or [[ms, ...] per user turn]} (measured costs only): a
    node that times its own model runs (`runs`, a count, and `run_ms`: Transcribe's Whisper)
    is charged, for its j-th run (in the user turn it runs in, for a list per turn), the j-th
    figure in place of what that run took here (past the end, the median of that turn's, else
    of all), the rest of the call as measured. A live run's own Whisper costs per user turn
    (LiveConversation's `live.model_runs_by_turn`) so charged make a simulated run of the
    same script pay what the live one paid, turn by turn (a speculative run more or less in
    one turn shifts no other turn's): the two then differ by the loop and the device path,
    not by the load of the moment. ScriptError for a figure that is not a number of ms from 0
    to MAX_COST_S s."""

    def __init__(self, table: dict[str, list[float]] | None = None, source: str = "measured",
                 model_runs: dict[str, list[float]] | None = None):
        self.measured = table is None
        self.source = source
        if model_runs is not None and not self.measured:
            raise ValueError("model_runs go with measured costs (a cost file costs each call)")
        #: NODE_ID -> the model runs to charge (s): a list, or a list per user turn
        self.model_runs = check_model_runs(model_runs or {}, "model_runs")
        #: a live run's device path (ms, from its cost file; None otherwise)
        self.device_latency_ms: float | None = None
        self._run_median = {k: (float(np.median(_flat(v))) if _flat(v) else 0.0)
                            for k, v in self.model_runs.items()}
        #: NODE_ID -> the model runs charged (s), and how many were past the given ones
        self.model_charged: dict[str, list[float]] = {}
        self.model_past_end: dict[str, int] = {}
        self._in_turn: dict[tuple, int] = {}
        self._table = {k: list(v) for k, v in (table or {}).items()}
        self._median = {k: (float(np.median(v)) if v else 0.0) for k, v in
                        self._table.items()}
        self.charged: dict[str, list[float]] = {}
        self._expected: set[str] = set()
        #: per node, the calls past the end of its list in the file (charged the median)
        self.past_end: dict[str, int] = {}

    @classmethod
    def load(cls, path: str) -> "Costs":
        """A cost file written by save(); ScriptError naming the file if it is not one, and
        the node and the call for a cost that is not a number of ms from 0 to MAX_COST_S s
        (check_costs)."""
        from .engine.errors import UsageError
        from .engine.loader import read_text_file
        try:   # bounded: a FIFO or /dev/zero is refused, not read for ever
            data = json.loads(read_text_file(path, "--timing"))
        except UsageError as exc:
            raise ScriptError(str(exc)) from None
        except ValueError as exc:
            raise ScriptError(f"{path}: not a cost file (JSON: {exc})") from None
        if not isinstance(data, dict) or data.get("version") != COST_FILE_VERSION:
            raise ScriptError(f"{path}: not a cost file (version {COST_FILE_VERSION} expected)")
        if "model_runs" in data:     # a live run's (save_live): its model runs and device path
            extra = set(data) - {"version", "model_runs", "device_latency_ms"}
            latency = data.get("device_latency_ms")
            if extra or isinstance(latency, bool) or not isinstance(latency, (int, float)) \
                    or not 0 <= latency <= MAX_COST_S * 1e3:
                raise ScriptError(f"{path}: a live run's cost file is {{version, model_runs: "
                                  f"{{NODE_ID: [ms, ...]}}, device_latency_ms: ms from 0 to "
                                  f"{MAX_COST_S * 1e3:g}}}")
            check_model_runs(data["model_runs"], f"{path}: model_runs")   # names the file
            costs = cls(source=path, model_runs=data["model_runs"])
            costs.device_latency_ms = float(latency)
            return costs
        return cls(check_costs(data.get("nodes"), f"{path}: nodes", "ms"), source=path)

    @staticmethod
    def save_live(path: str, model_runs: dict[str, list], device_latency_ms: float) -> None:
        """Write a live run's cost file: its model runs (ms, per node that times them: a list
        per user turn) and its device path (ms), for a simulated run of the same script that
        pays what the live one paid (load: measured costs with these model runs;
        ConversationRun hears the output that much later). Such a run measures every other
        call, so two runs from it differ by those."""
        data = {"version": COST_FILE_VERSION,
                "model_runs": {k: [[round(float(x), 3) for x in g] for g in v]
                               for k, v in sorted(model_runs.items())},
                "device_latency_ms": round(float(device_latency_ms), 3)}
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)

    def expect_nodes(self, node_ids) -> None:
        """The run's node ids: a cost file must cost exactly these (ScriptError naming the
        file and the ids missing or unknown: a node it does not cost would be charged
        nothing, and a partial file measured in part would no longer repeat exactly);
        measured costs save an entry for each, even a node never called."""
        ids = set(node_ids)
        self._expected = ids
        if self.measured:
            return
        missing, unknown = sorted(ids - set(self._table)), sorted(set(self._table) - ids)
        if missing or unknown:
            parts = ([f"no costs for node(s) {', '.join(missing)}"] if missing else []) + \
                ([f"costs for node(s) {', '.join(unknown)} the manifest does not have"]
                 if unknown else [])
            raise ScriptError(f"{self.source}: this cost file is for another manifest: "
                              f"{'; '.join(parts)} (write one for this manifest with "
                              f"--save-timing)")

    def charge(self, node_id: str, spent_s: float, runs_s=(), turn: int = 0) -> float:
        """The cost to charge for a call that took `spent_s` here (recorded either way), of
        which `runs_s` (s each) were the node's model runs (charged from `model_runs`, those
        of user turn `turn`, 0-based, for a list per turn)."""
        done = self.charged.setdefault(node_id, [])
        if self.measured:
            if runs_s:
                spent_s = max(0.0, spent_s - sum(runs_s) + sum(
                    self._model_run(node_id, turn) for _ in runs_s))
            cost = round(spent_s, 6)
        else:
            table = self._table.get(node_id, ())
            if len(done) < len(table):
                cost = table[len(done)]
            else:
                cost = self._median.get(node_id, 0.0)
                self.past_end[node_id] = self.past_end.get(node_id, 0) + 1
        done.append(cost)
        return cost

    def _model_run(self, node_id: str, turn: int) -> float:
        runs = self.model_charged.setdefault(node_id, [])
        table = self.model_runs[node_id]
        if table and isinstance(table[0], list):      # a list per user turn
            turn = max(turn, 0)
            table = table[turn] if turn < len(table) else []
            j = self._in_turn.get((node_id, turn), 0)
            self._in_turn[(node_id, turn)] = j + 1
        else:
            j = len(runs)
        if j < len(table):
            cost = table[j]
        else:   # past the given ones: the median of the turn's, else of all
            cost = float(np.median(table)) if table else self._run_median[node_id]
            self.model_past_end[node_id] = self.model_past_end.get(node_id, 0) + 1
        runs.append(cost)
        return cost

    def shortfall(self) -> str | None:
        """One line saying which nodes a cost file had too few costs for (called more often
        than its list: the rest were charged its median, so the run does not repeat the one
        the file was saved from), or None."""
        if not self.past_end:
            return None
        parts = [f"{k} called {len(self.charged.get(k, ()))} times, {len(self._table.get(k, ()))}"
                 f" costs" for k in sorted(self.past_end)]
        return (f"{self.source}: too few costs for {'; '.join(parts)} (the rest charged the "
                f"median; --save-timing writes a file for this script)")

    def save(self, path: str) -> None:
        """Write the charged costs (ms, 3 decimals: microseconds) for a later run."""
        charged = {k: self.charged.get(k, []) for k in
                   sorted(set(self.charged) | self._expected)}
        data = {"version": COST_FILE_VERSION,
                "nodes": {k: [round(x * 1e3, 3) for x in v] for k, v in charged.items()}}
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "x", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)


def check_costs(raw: Any, where: str, unit: str = "s") -> dict[str, list[float]]:
    """A cost table {NODE_ID: [cost, ...]} in `unit` ("ms" or "s") checked and turned to
    seconds: each cost a finite number (not a bool) from 0 to MAX_COST_S s. ScriptError
    (exit 2) naming `where`, the node and the call otherwise."""
    div = 1e3 if unit == "ms" else 1.0
    if not isinstance(raw, dict):
        raise ScriptError(f"{where} must be {{NODE_ID: [{unit}, ...]}}, got {raw!r:.60}")
    out = {}
    for node, values in raw.items():
        if not isinstance(values, list):
            raise ScriptError(f"{where}.{node} must be a list of costs in {unit}, got "
                              f"{values!r:.60}")
        for i, x in enumerate(values):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or \
                    not 0 <= x <= MAX_COST_S * div:   # NaN compares false; an int is no float
                raise ScriptError(f"{where}.{node}[{i}] must be a cost from 0 to "
                                  f"{MAX_COST_S * div:g} {unit}, got {x!r:.60}")
        out[str(node)] = [x / div for x in values]
    return out


def check_model_runs(raw: Any, where: str) -> dict[str, list]:
    """A model-run table {NODE_ID: [ms, ...] or [[ms, ...] per user turn]} checked and turned
    to seconds (check_costs for each list); ScriptError naming `where`, the node and the turn
    otherwise."""
    if not isinstance(raw, dict):
        raise ScriptError(f"{where} must be {{NODE_ID: [ms, ...]}}, got {raw!r:.60}")
    out = {}
    for node, values in raw.items():
        if isinstance(values, list) and values and all(isinstance(g, list) for g in values):
            out[str(node)] = [check_costs({f"{node}[{i}]": g}, where, "ms")[f"{node}[{i}]"]
                              for i, g in enumerate(values)]
        else:
            out.update(check_costs({node: values}, where, "ms"))
    return out


def _flat(table: list) -> list:
    return [x for g in table for x in g] if table and isinstance(table[0], list) else table



__all__ = ["COST_FILE_VERSION", "Costs", "MAX_COST_S", "ScriptError", "check_costs",
           "check_model_runs"]
