"""`remotemedia report`: figures and a self-contained HTML page that show the recorded counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")
from PIL import Image  # noqa: E402  (matplotlib depends on pillow)

from remotemedia.engine.errors import UsageError  # noqa: E402
from remotemedia.engine.node import AudioFormat  # noqa: E402
from remotemedia.report_figures import FIGURES, write_report  # noqa: E402
from tests.conftest import MANIFESTS  # noqa: E402
from tests.unit.test_record_replay_sim import METERED, GlitchySource, record  # noqa: E402


def description(path) -> str:
    with Image.open(path) as img:
        assert img.size[0] > 300 and img.size[1] > 100
        return img.text["Description"]


def test_report_of_a_recording_shows_the_recorded_counts(tmp_path):
    path, stats, _ = record(tmp_path, manifest=METERED, source=GlitchySource(
        AudioFormat(48000, 960, 1)), seconds=1.0)
    html = write_report(path)
    out = path / "report"
    assert html == out / "report.html"
    for name in FIGURES:
        assert (out / name).stat().st_size > 1000
    assert description(out / "levels.png") == "levels: xruns in 2, out 1, drops 1, errors 0"
    assert description(out / "events.png") == f"events: {stats['events_out']} (level 10)"
    assert description(out / "latency.png").startswith("latency per block: 50 blocks")
    counters = description(out / "counters.png")
    assert f"frames_in {stats['frames_in']}" in counters and "drops 1" in counters
    page = html.read_text()
    # self-contained: every figure inline, nothing fetched
    assert page.count("data:image/png;base64,") == 4 and 'src="http' not in page
    assert re.search(r'<th>drops</th><td class="n" id="drops">1</td>', page)
    assert re.search(r"<th>xruns.input_overflow</th><td[^>]*>2</td>", page)


def test_report_of_a_saved_json_report(tmp_path):
    out = subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m",
                          str(MANIFESTS / "five.yaml"), "-i", "noise", "-o", "null", "-d", "0.5",
                          "--json"], capture_output=True, text=True, timeout=60)
    report = tmp_path / "run.json"
    report.write_text(out.stdout.strip().splitlines()[-1])
    cli = subprocess.run([sys.executable, "-m", "remotemedia", "report", str(report)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    folder = tmp_path / "run-report"
    assert description(folder / "counters.png").startswith("counters: frames_in 25, frames_out 25")
    assert description(folder / "latency.png") == "latency percentiles: engine and 5 node(s)"
    assert (folder / "report.html").exists()


def test_report_of_neither_a_recording_nor_a_report_exits_2(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(UsageError, match="is not a stats report"):
        write_report(tmp_path / "x.json")
    cli = subprocess.run([sys.executable, "-m", "remotemedia", "report", str(tmp_path / "no")],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "no such recording directory" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_marks_count_from_the_first_rows_total():
    """A recording started mid-run joins with totals already counted: its first block is not
    an xrun unless the total went up there."""
    import numpy as np

    from remotemedia.report_figures import _marks
    assert _marks({"x": np.array([3, 3, 4, 4, 6])}, "x").tolist() == [2, 4]
    assert _marks({"x": np.array([0, 1])}, "x").tolist() == [1]
    assert _marks({"x": np.array([], dtype=np.int64)}, "x").tolist() == []


def test_labels_are_short_and_ids_that_differ_stay_apart():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from remotemedia.report_figures import MAX_LABEL, _label

    @settings(max_examples=300, deadline=None)
    @given(st.text(min_size=0, max_size=80), st.text(min_size=1, max_size=3),
           st.booleans())
    def check(stem, tag, at_end):
        a, b = (stem + "a" + tag, stem + "b" + tag) if at_end else \
            ("a" + tag + stem, "b" + tag + stem)
        assert len(_label(a)) <= MAX_LABEL and len(_label(b)) <= MAX_LABEL
        if len(tag) < MAX_LABEL // 2 - 1:
            assert _label(a) != _label(b)
        assert _label(stem) == stem or len(stem) > MAX_LABEL
    check()
