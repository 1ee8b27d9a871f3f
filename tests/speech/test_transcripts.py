"""Transcript outputs (.srt .vtt .txt .jsonl), the SubRip formatting rules the upstream's
SrtOutput follows, and the SrtOutput node. No model needed: transcript events are made here.
"""

from __future__ import annotations

import json
import math

import pytest
import srt
from hypothesis import given, settings, strategies as st

import remotemedia as rm
from remotemedia.engine.data import JsonData, TextData
from remotemedia.engine.errors import UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io.spec import make_sink
from remotemedia.engine.subtitles import cues, timecode, wrap
from remotemedia.io.transcripts import JsonlSink, SrtSink, TxtSink, VttSink
from remotemedia.testing import one_node

FMT = AudioFormat(16000, 1, 960)


def transcript(text, start, end, final=True, words=None):
    if words is None:
        toks = text.split()
        step = (end - start) / max(len(toks), 1)
        words = [{"word": w, "start_s": start + i * step, "end_s": start + (i + 1) * step,
                  "p": 0.9} for i, w in enumerate(toks)]
    return JsonData({"type": "transcript", "text": text, "start_s": start, "end_s": end,
                     "final": final, "words": words, "language": "en", "avg_logprob": -0.2,
                     "no_speech_prob": 0.01})


# -- formatting: the upstream's rules (its §3, checked there by running its Rust) ---------------

@pytest.mark.parametrize("seconds, code", [
    (0.0, "00:00:00,000"), (1.5, "00:00:01,500"), (61.234, "00:01:01,234"),
    (3661.0, "01:01:01,000"), (0.0025, "00:00:00,003"), (1.0005, "00:00:01,001"),
    (59.9996, "00:01:00,000"), (360000, "100:00:00,000"), (-1, "00:00:00,000"),
    (1e300, "5124095576030:25:51,615"), (math.inf, "5124095576030:25:51,615"),
    (math.nan, "00:00:00,000")])
def test_timecodes_round_half_away_from_zero_as_the_upstream(seconds, code):
    assert timecode(seconds) == code
    assert timecode(seconds, ".") == code.replace(",", ".")


def test_wrapping_counts_utf8_bytes_as_the_upstream():
    long = "This is a long subtitle that should be wrapped at forty two chars ok"
    assert wrap(long, 42) == ("This is a long subtitle that should be\n"
                              "wrapped at forty two chars ok")
    assert wrap("ééééé ééééé", 15) == "ééééé\nééééé"
    assert wrap("a\nb c", 3) == "a b\nc"
    assert wrap(long, 0) == long
    assert wrap("short", 42) == "short"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Z")), min_size=1,
                        max_size=50), min_size=1, max_size=60),
       st.floats(0, 1e5))
def test_cues_hold_at_most_two_lines_of_42_bytes_timed_in_order(tokens, t0):
    words = [{"word": w, "start_s": t0 + i * 0.3, "end_s": t0 + i * 0.3 + 0.25, "p": 1.0}
             for i, w in enumerate(tokens)]
    value = {"type": "transcript", "text": " ".join(tokens), "start_s": t0,
             "end_s": words[-1]["end_s"], "final": True, "words": words}
    made = cues(value)
    assert " ".join(t for _, _, t in made).split() == " ".join(tokens).split()
    last = -1.0
    for start, end, text in made:
        lines = text.split("\n")
        assert 1 <= len(lines) <= 2 or all(len(w.encode()) > 21 for w in text.split())
        for line in lines:
            assert len(line.encode()) <= 42 or " " not in line   # only a lone long word
        assert last <= start <= end
        last = end


# -- the sinks -------------------------------------------------------------------------------------

def feed(sink, items):
    sink.open()
    try:
        for item in items:
            sink.write_event(item)
    finally:
        sink.close()


EVENTS = [transcript("Hello there.", 1.0, 1.8, final=False),
          transcript("Hello there.", 1.0, 1.9),
          TextData("Hello there.", metadata={"type": "transcript"}),
          JsonData({"type": "speech_end", "pts": 3}),
          transcript("This is a long subtitle that should be wrapped at forty two chars "
                     "and then some more words to make a second cue", 3.0, 9.0)]


def test_srt_output_is_valid_subrip_with_numbered_cues_of_final_transcripts(tmp_path):
    path = tmp_path / "out.srt"
    sink = make_sink(f"file:{path}", FMT)
    assert isinstance(sink, SrtSink)
    feed(sink, EVENTS)
    subs = list(srt.parse(path.read_text(encoding="utf-8")))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert subs[0].content == "Hello there." and subs[0].start.total_seconds() == 1.0
    assert len(subs) >= 3                           # the long one became two cues
    for s in subs:
        assert all(len(line.encode()) <= 42 for line in s.content.split("\n"))
        assert len(s.content.split("\n")) <= 2
        assert s.start <= s.end
    assert sink.transcripts == 2
    report = {}
    sink.extend_report(report)
    assert report["transcripts"] == {"file": str(path), "written": 2}


def test_vtt_txt_and_jsonl_outputs(tmp_path):
    vtt, txt, jsonl = (tmp_path / n for n in ("a.vtt", "a.txt", "a.jsonl"))
    for path, cls in ((vtt, VttSink), (txt, TxtSink), (jsonl, JsonlSink)):
        sink = make_sink(f"file:{path}", FMT)
        assert isinstance(sink, cls)
        feed(sink, EVENTS)
    v = vtt.read_text()
    assert v.startswith("WEBVTT\n\n") and "00:00:01.000 --> 00:00:01.900\nHello there.\n" in v
    assert txt.read_text().splitlines() == ["Hello there.", EVENTS[4].value["text"]]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [x["final"] for x in lines] == [True, True]
    assert lines[0]["words"][0]["word"] == "Hello"


def test_an_srtoutput_nodes_text_is_written_as_it_is_and_the_events_not_twice(tmp_path):
    path = tmp_path / "b.srt"
    ready = "1\n00:00:00,000 --> 00:00:10,000\nHi\n\n"
    feed(make_sink(f"file:{path}", FMT),
         [TextData(ready, metadata={"format": "srt"}), transcript("Hi", 0.0, 1.0)])
    assert path.read_text() == ready


def test_a_transcript_file_follows_only_a_link_nobody_else_could_have_made(tmp_path):
    """The rule every output keeps (io/safefile.py): this user's own link in a private
    directory is followed, as `--events` and WAV outputs follow it; a link another user
    planted is refused (tests/integration/test_planted_outputs.py)."""
    target = tmp_path / "elsewhere.srt"
    link = tmp_path / "out.srt"
    link.symlink_to(target)
    feed(make_sink(f"file:{link}", FMT), [transcript("Hi", 0.0, 1.0)])
    assert "Hi" in target.read_text() and link.is_symlink()


def test_a_transcript_output_in_a_missing_directory_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        make_sink(f"file:{tmp_path / 'no' / 'x.srt'}", FMT)


def test_audio_reaching_a_transcript_output_is_discarded_and_counted(tmp_path):
    import numpy as np
    from remotemedia.engine.data import NumpyData
    sink = make_sink(f"file:{tmp_path / 'c.txt'}", FMT)
    sink.open()
    sink.write(NumpyData(np.zeros(960, np.float32)))
    sink.close()
    assert sink.audio_frames_discarded == 1 and (tmp_path / "c.txt").read_text() == ""


# -- the SrtOutput node (the upstream's core rules) ------------------------------------------------

def run_srt(items, **params):
    m = one_node("SrtOutput", node_id="srt", **params)
    with rm.Pipeline.from_manifest(m).session() as s:
        outs = []
        for item in items:
            outs += s.push(item)
    return outs


def texts(outs):
    return [o.text for o in outs if o.kind == "text"]


def test_srtoutput_numbers_cues_across_inputs_and_wraps():
    outs = run_srt([JsonData({"segments": [{"start": 0, "end": 2, "text": "Hello world."},
                                           {"start": 2, "end": 4, "text": "  "},
                                           {"start": 2, "end": 4, "text": "How are you?"}],
                              "text": "Hello world. How are you?"}),
                    JsonData({"word": " Hi ", "start": 5.0, "end": 5.5}),
                    TextData("a plain text line that is longer than twenty bytes")],
                   max_line_length=20)
    assert texts(outs) == [
        "1\n00:00:00,000 --> 00:00:02,000\nHello world.\n\n"
        "2\n00:00:02,000 --> 00:00:04,000\nHow are you?\n\n",
        "3\n00:00:05,000 --> 00:00:05,500\nHi\n\n",
        "4\n00:00:00,000 --> 00:00:10,000\na plain text line\nthat is longer than\ntwenty bytes\n\n"]
    assert all(o.metadata["format"] == "srt" for o in outs if o.kind == "text")


def test_srtoutput_on_transcripts_skips_partials_and_the_twin_text_and_passes_events_on():
    final = transcript("Good morning.", 1.0, 2.0)
    outs = run_srt([transcript("Good", 1.0, 1.4, final=False), final,
                    TextData("Good morning.", metadata={"type": "transcript"}),
                    TextData("   ")], include_numbers=False)
    assert texts(outs) == ["00:00:01,000 --> 00:00:02,000\nGood morning.\n\n"]
    events = [o.value for o in outs if o.kind == "json"]
    assert [e["final"] for e in events] == [False, True]
