"""validate, nodes and tui; the console entry points."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest

from remotemedia import cli
from remotemedia.engine.node import registry


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_validate_accepts_every_shipped_manifest(remotemedia_cmd, manifests_dir):
    for path in sorted(manifests_dir.glob("*.yaml")):
        proc = run(remotemedia_cmd + ["validate", str(path)])
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"{path}: ok") and proc.stderr == ""


def test_validate_names_the_node_and_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: v1\nnodes:\n  - {id: g, node_type: Gain, params: {dbb: 1}}\n"
                   "connections:\n  - {from: input, to: g}\n  - {from: g, to: output}\n")
    assert cli.main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "bad.yaml: node 'g': unknown param 'dbb'" in err and "did you mean 'db'" in err


def builtin_types() -> dict:
    """The node types remotemedia ships (other tests may register their own in this process;
    the subprocess under test does not see those)."""
    return {name: cls for name, cls in registry.types().items()
            if cls.__module__.startswith("remotemedia.")}


def test_nodes_lists_every_type_with_params(remotemedia_cmd):
    proc = run(remotemedia_cmd + ["nodes"])
    assert proc.returncode == 0
    listed = {line.split(":")[0].split(" ")[0] for line in proc.stdout.splitlines()
              if line and not line.startswith(" ")}
    builtins = builtin_types()
    assert set(builtins) <= listed
    for cls in builtins.values():
        assert f"{cls.node_type}: {cls.description}" in proc.stdout or \
            f"{cls.node_type} (fan-in): {cls.description}" in proc.stdout
    assert "    db: float = None  gain in decibels" in proc.stdout


def test_nodes_json_describes_params(remotemedia_cmd):
    proc = run(remotemedia_cmd + ["nodes", "--json"])
    text = run(remotemedia_cmd + ["nodes"])
    assert proc.returncode == 0
    described = {d["node_type"]: d for d in json.loads(proc.stdout)}
    assert set(builtin_types()) <= set(described)
    assert all(f"{name}" in text.stdout for name in described)     # the same list both ways
    gain = {p["name"]: p for p in described["Gain"]["params"]}
    assert gain["db"]["type"] == "float" and gain["db"]["default"] is None
    meter = {p["name"]: p for p in described["LevelMeter"]["params"]}
    assert (meter["every"]["type"], meter["every"]["default"]) == ("int", 1)
    assert described["Mix"]["inputs"] == "many"
    assert all(d["description"] for d in described.values())


def test_tui_hands_its_arguments_to_run_app(monkeypatch):
    calls = []
    fake = types.ModuleType("remotemedia.tui.app")
    fake.run_app = lambda **kw: calls.append(kw) or 0
    monkeypatch.setitem(sys.modules, "remotemedia.tui.app", fake)
    monkeypatch.setattr(cli.tui, "_has_terminal", lambda: True)
    assert cli.main(["tui", "--manifest", "m.yaml", "--input", "sine:440",
                     "--output", "null", "--mode", "callback"]) == 0
    (call,) = calls
    assert callable(call.pop("on_app"))        # how a signal reaches the app to quit it
    assert call == {"manifest": "m.yaml", "input_spec": "sine:440", "output_spec": "null",
                    "mode": "callback", "reconnect": True}
    assert cli.main(["tui", "--manifest", "m.yaml", "--no-reconnect"]) == 0
    assert calls[-1]["reconnect"] is False


def test_tui_without_the_app_is_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "remotemedia.tui.app", None)   # import fails
    monkeypatch.setattr(cli.tui, "_has_terminal", lambda: True)
    assert cli.main(["tui"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("remotemedia: error: the TUI is not available") and err.count("\n") == 1


def test_python_dash_m_help_and_version(remotemedia_cmd):
    helped = run(remotemedia_cmd + ["stream", "--help"])
    assert helped.returncode == 0
    for flag in ("--manifest", "--input", "--output", "--duration", "--realtime", "--fast",
                 "--json", "--strict", "--events", "--allow-import"):
        assert flag in helped.stdout
    version = run(remotemedia_cmd + ["--version"])
    assert version.returncode == 0 and version.stdout.startswith("remotemedia ")


@pytest.mark.parametrize("text,seconds", [("5", 5.0), ("2.5", 2.5), ("300s", 300.0)])
def test_duration_parsing(text, seconds):
    assert cli.parse_duration(text) == seconds
