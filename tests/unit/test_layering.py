"""The import graph points one way: faces (cli, app, runner) -> io, nodes, executors -> engine.
The engine imports no I/O, Textual, sounddevice, node or executor module, and a manifest that
names only built-in nodes loads them through the entry point, as a third party's would."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "remotemedia"

# Which packages each layer may import from (besides the standard library and numpy/yaml).
FORBIDDEN = {
    "engine": ("remotemedia.io", "remotemedia.nodes", "remotemedia.ipc", "remotemedia.ray",
               "remotemedia.executors", "remotemedia.tui", "remotemedia.app",
               "remotemedia.cli", "remotemedia.runner", "remotemedia.observers",
               "remotemedia.testing", "sounddevice", "textual", "soundfile"),
    "nodes": ("remotemedia.io", "remotemedia.ipc", "remotemedia.ray", "remotemedia.executors",
              "remotemedia.tui",
              "remotemedia.app", "remotemedia.cli", "remotemedia.runner", "sounddevice",
              "textual"),
    "io": ("remotemedia.nodes", "remotemedia.tui", "remotemedia.app", "remotemedia.cli",
           "remotemedia.runner", "remotemedia.observers", "textual"),
    # The command line is the top: nothing imports it back (event records live in io/events).
    "tui": ("remotemedia.cli",),
    "monitor": ("remotemedia.cli", "remotemedia.app", "remotemedia.tui"),
    "testing": ("remotemedia.cli", "remotemedia.app", "remotemedia.tui"),
    "ray": ("remotemedia.cli", "remotemedia.app", "remotemedia.tui", "remotemedia.runner"),
    "ipc": ("remotemedia.cli", "remotemedia.app", "remotemedia.tui", "remotemedia.runner"),
    "executors": ("remotemedia.cli", "remotemedia.app", "remotemedia.tui", "remotemedia.runner",
                  "remotemedia.io", "remotemedia.nodes", "remotemedia.testing"),
}


def imported_modules(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level > 1 else base
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_upward(layer):
    bad = []
    for path in sorted((PKG / layer).rglob("*.py")):
        package = "remotemedia." + ".".join(path.relative_to(PKG).parent.parts)
        for name in imported_modules(path, package.rstrip(".")):
            if name.startswith(FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert bad == []


def test_loading_a_manifest_imports_no_device_ui_or_executor_code():
    code = ("import sys, remotemedia as rm\n"
            "p = rm.Pipeline.from_manifest('manifests/gain.yaml')\n"
            "with p.session() as s: s.push(__import__('numpy').zeros(960, 'float32'))\n"
            "bad = [m for m in ('sounddevice', 'textual', 'remotemedia.ipc', 'remotemedia.ray',"
            " 'remotemedia.executors', 'ray', 'iceoryx2') if m in sys.modules]\n"
            "print(bad); assert 'remotemedia.nodes' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=PKG.parent, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_built_ins_and_executors_come_through_entry_points():
    from importlib.metadata import entry_points
    assert "builtins" in {ep.name for ep in entry_points(group="remotemedia.nodes")}
    assert {"thread", "process", "ray"} <= {ep.name for ep in
                                            entry_points(group="remotemedia.executors")}
    from remotemedia.engine.executors import executors
    assert executors.names()[0] == "inline" and "process" in executors.names()


def test_a_node_gets_one_context_at_setup():
    import numpy as np

    import remotemedia as rm
    from remotemedia.engine.node import Node, NodeContext
    from remotemedia.testing import chain, registered, run_blocks

    seen = []

    class Curious(Node):
        node_type = "Curious"

        def setup(self):
            seen.append(self.context)

        def process(self, frame):
            seen.append(self.context.clock())
            return frame

    with registered(Curious) as reg:
        run_blocks(chain("Curious", audio={"sample_rate": 16000, "block_size": 160}),
                   np.zeros(480, np.float32), registry=reg)
    context = seen[0]
    assert isinstance(context, NodeContext) and context.node_id == "curious"
    assert (context.format.sample_rate, context.format.block_size) == (16000, 160)
    assert context.counters is not None
    # The run's clock (simulated here): 0, 10 and 20 ms as the three blocks arrive.
    assert seen[1:] == [0.0, 0.01, 0.02]
    assert not hasattr(rm.engine.data, "current_counters")   # no thread-local side channel


def engine_import_graph(engine: Path = PKG / "engine") -> dict[str, set[str]]:
    """module -> the engine modules it imports, at any level of the file (TYPE_CHECKING and
    function-level imports included: a circle through them is still a circle to read)."""
    modules = {p.stem for p in engine.glob("*.py")}
    graph = {}
    for path in sorted(engine.glob("*.py")):
        found = set()
        for name in imported_modules(path, "remotemedia.engine"):
            parts = name.split(".")
            if parts[:2] == ["remotemedia", "engine"] and len(parts) > 2:
                found.add(parts[2])
        graph[path.stem] = {m for m in found if m in modules and m != path.stem}
    return graph


def test_the_engines_import_graph_has_no_circle():
    from graphlib import CycleError, TopologicalSorter
    graph = engine_import_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import circle in remotemedia/engine: {' -> '.join(exc.args[1])}")
    assert order.index("template") < order.index("closures") < order.index("schedule")
    assert order.index("fusion") < order.index("schedule")


def test_the_circle_check_sees_a_circle(tmp_path):
    # the check above can fail: two modules importing each other, one only for type checking
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                   "if TYPE_CHECKING:\n    from .a import y\n")
    from graphlib import CycleError, TopologicalSorter
    graph = engine_import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}}
    with pytest.raises(CycleError):
        list(TopologicalSorter(graph).static_order())


def test_the_audio_defaults_are_defined_once():
    # 48 kHz and 960-sample blocks are engine.node's DEFAULT_SAMPLE_RATE and DEFAULT_BLOCK_SIZE;
    # a number 48000 or 960 anywhere else in the package's code is a second definition (text in
    # docstrings and comments is not code)
    # The rates a library fixes (RNNoise works at 48 kHz only; WebRTC's processors take 16, 32
    # or 48 kHz) are that library's facts, not our default: named constants, listed here.
    library_rates = {"nodes/denoise.py": {"RNNOISE_RATE", "WEBRTC_RATES"},
                     "nodes/echo.py": {"RATES"}}
    home = PKG / "engine" / "node.py"
    found = []
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = library_rates.get(str(path.relative_to(PKG)), set())
        exempt = {id(c) for stmt in tree.body if isinstance(stmt, ast.Assign)
                  and {getattr(t, "id", None) for t in stmt.targets} & allowed
                  for c in ast.walk(stmt.value)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float) \
                    and node.value in (48000, 960) and path != home and id(node) not in exempt:
                found.append(f"{path.relative_to(PKG)}:{node.lineno}: {node.value}")
    assert found == []


def test_the_package_names_no_file_outside_its_repository():
    # docstrings say what they mean in the repository's own words or cite its own docs; a
    # design note or a machine path elsewhere is nothing a user of the package can open
    outside = re.compile(r"DESIGN\.md|UPSTREAM\.md|UPSTREAM-SPEECH|\.\./shared|/work/")
    pending: set = set()
    found = [f"{path.relative_to(PKG)}:{n}" for path in sorted(PKG.rglob("*.py"))
             if str(path.relative_to(PKG)) not in pending
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if outside.search(line)]
    assert found == []


def test_the_outside_file_check_sees_one():
    outside = re.compile(r"DESIGN\.md|UPSTREAM\.md|UPSTREAM-SPEECH|\.\./shared|/work/")
    assert outside.search('"""Facts from /work/shared/UPSTREAM.md Part B."""')
    assert not outside.search('"""As the README\'s "Manifests written for the upstream"."""')
