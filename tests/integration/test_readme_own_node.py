"""The README's "Test your own node in five minutes", run as written: its two files in an
empty folder, its pytest command and its stream command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import soundfile as sf

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text()
    start = text.index("### Test your own node in five minutes")
    end = re.compile(r"\n##+ ").search(text, start + 10)
    return text[start:end.start() if end else len(text)]


def test_the_readme_section_runs_as_written(tmp_path):
    blocks = re.findall(r"```(\w+)\n(.*?)```", section(), re.S)
    files = {m.group(1): body for lang, body in blocks if lang == "python"
             for m in [re.match(r"# (\S+\.py)\n", body)] if m}
    assert set(files) == {"mynodes.py", "test_mynodes.py"}
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    (commands,) = [body for lang, body in blocks if lang == "sh"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the package as installed; this checkout first, in case it is not the installed one
    env["PYTHONPATH"] = str(README.parent)
    bindir = Path(sys.executable).parent
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    for line in commands.strip().splitlines():
        argv = line.split()
        if argv[0] == "python":
            argv[0] = sys.executable
        elif argv[0] == "remotemedia":
            # the console script, as a user types it: unlike `python -m`, it does not put
            # the current folder on sys.path
            script = bindir / "remotemedia"
            argv = ([str(script)] if script.exists()
                    else [sys.executable, "-m", "remotemedia"]) + argv[1:]
        argv = [a.strip('"') for a in argv]
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
    assert sf.info(str(tmp_path / "out.wav")).frames == 48000


def test_without_the_fixture_the_registry_is_the_process_wide_one():
    from remotemedia.testing.registry import active_registry
    assert active_registry() is None


def test_the_fixture_makes_its_registry_the_default(rm_registry):
    from remotemedia.testing.registry import active_registry
    assert active_registry() is rm_registry
