"""Helpers for running the CLI as a user does: a plugin module of test nodes on PYTHONPATH."""

from __future__ import annotations

import os
import textwrap

import pytest

PLUGIN = textwrap.dedent('''
    """Test nodes, imported only through --allow-import."""
    import pickle

    from remotemedia.engine.data import TextData
    from remotemedia.engine.node import Node, Param


    class Pickler(Node):
        node_type = "Pickler"

        def process(self, frame):
            pickle.dumps(frame.array)
            return frame


    class Boom(Node):
        node_type = "Boom"
        params = (Param("at", int, 5),)

        def setup(self):
            self.count = 0

        def process(self, frame):
            self.count += 1
            if self.count == self.at:
                raise RuntimeError("boom")
            return frame


    class Talker(Node):
        node_type = "Talker"

        def process(self, frame):
            return (frame, TextData(f"frame {frame.seq}", pts=frame.pts))
''')


@pytest.fixture
def plugin_env(tmp_path):
    """An environment whose PYTHONPATH holds the module `rm_test_nodes`."""
    (tmp_path / "rm_test_nodes.py").write_text(PLUGIN)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path),
                                                      env.get("PYTHONPATH", "")]))
    return env
