"""The TUI reads manifests through the same bounded loader as every command: a bomb given to
`tui -m` is a notification naming the limit, and the app stays up with nothing loaded."""

from __future__ import annotations

from .conftest import make_app, runner_threads
from .test_app import SIZE, notified, press


def laughs() -> str:
    lines = ["version: v1", "metadata:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines += ["nodes: [{id: g, node_type: Gain}]",
              "connections: [{from: input, to: g}, {from: g, to: output}]"]
    return "\n".join(lines) + "\n"


async def test_a_manifest_bomb_is_a_notification_and_nothing_loads(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    app = make_app(tmp_path, manifest=bomb)
    async with app.run_test(size=SIZE) as pilot:
        await notified(pilot, "expand to more than 1,000,000 values")
        assert app.pipeline is None and runner_threads() == []
        await press(pilot, "escape", "q")
