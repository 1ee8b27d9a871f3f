"""`${NAME:-default}` in manifest strings: the upstream's grammar (its pipeline-embed tool, run
there), applied to string values after parsing, in every command."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

import remotemedia as rm
from remotemedia.engine.envexpand import expand_document, expand_string
from remotemedia.engine.manifest import load_manifest, read_manifest_document

from .speech_audio import UPSTREAM, needs_model

ENV = {"A": "alpha", "EMPTY": "", " X ": "spaced", "X-d": "dash", "T": "4"}


@pytest.mark.parametrize("text, expected", [
    ("${A}", "alpha"),
    ("${A:-d}", "alpha"),
    ("${NOPE:-d}", "d"),
    ("${NOPE:=d}", "d"),                      # := assigns nothing
    ("${EMPTY:-d}", "d"),                     # set but empty: the default
    ("${NOPE}", ""),
    ("x${A}y${A}", "xalphayalpha"),
    ("${A:-${B:-c}}", "alpha"),
    ("${NOPE:-${B:-c}}", "${B:-c}"),          # a default is not expanded again
    ("${ X }", "spaced"),                     # the name is not trimmed
    ("${X-d}", "dash"),                       # no colon: looks up 'X-d'
    ("${Y-d}", ""),
    ("$${A}", "$alpha"),                      # no escape
    ("\\${A}", "\\alpha"),
    ("$A and $", "$A and $"),                 # no braces: left as is
    ("${NOPE:-a:-b}", "a:-b"),                # split at the first :-
    ("${NOPE:-{x}}", "{x}"),                  # braces inside are counted and kept
    ("a ${NOPE:-rest", "a rest"),             # never closed: takes the rest
])
def test_the_upstream_grammar(text, expected):
    assert expand_string(text, ENV) == expected


@given(st.text())
def test_text_without_a_reference_is_unchanged(text):
    if "${" not in text:
        assert expand_string(text, ENV) == text


@given(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
       st.text(st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)),
               min_size=1), st.text(st.characters(blacklist_characters="{}$",
                                                  blacklist_categories=("Cs",))))
def test_a_set_variable_wins_over_its_default(name, value, default):
    assert expand_string(f"<${{{name}:-{default}}}>", {name: value}) == f"<{value}>"
    assert expand_string(f"<${{{name}:-{default}}}>", {}) == f"<{default}>"


def test_a_whole_reference_takes_the_type_yaml_gives_its_value_and_nothing_else_does():
    doc = {"a": "${T}", "b": "${T:-x} threads", "c": "${NOPE}", "d": "${NOPE:-true}",
           "e": "${NOPE:-yes}", "f": "${NOPE:-a: b}", "g": ["${T}", {"h": "${A}"}],
           "${A}": "keys stay"}
    out = expand_document(doc, ENV)
    assert out == {"a": 4, "b": "4 threads", "c": None, "d": True, "e": "yes",
                   "f": "a: b", "g": [4, {"h": "alpha"}], "${A}": "keys stay"}


def test_every_manifest_read_expands_from_the_environment(monkeypatch):
    text = ("version: v1\nnodes:\n  - {id: g, node_type: Gain, params: {db: '${GAIN_DB:--6}'}}\n"
            "connections:\n  - {from: input, to: g}\n  - {from: g, to: output}\n")
    monkeypatch.delenv("GAIN_DB", raising=False)
    assert load_manifest(text).node("g").params["db"] == -6.0
    monkeypatch.setenv("GAIN_DB", "3")
    assert load_manifest(text).node("g").params["db"] == 3.0
    monkeypatch.setenv("GAIN_DB", "3\nnodes: []")            # one value, never structure
    with pytest.raises(rm.ManifestError, match="param 'db' must be float"):
        load_manifest(text)


@needs_model
def test_the_upstream_transcribe_manifests_take_model_and_threads_from_the_environment(
        monkeypatch):
    doc, _ = read_manifest_document(UPSTREAM / "transcribe-srt.yaml")
    assert doc["nodes"][1]["params"]["n_threads"] == 4
    monkeypatch.setenv("MODEL", "tiny.en")
    monkeypatch.setenv("THREADS", "1")
    m = load_manifest(UPSTREAM / "transcribe-srt.yaml")
    assert m.node("whisper").params["threads"] == 1
    assert not any("not installed" in w for w in m.warnings)
    monkeypatch.delenv("MODEL")
    m = load_manifest(UPSTREAM / "transcribe-srt.yaml")
    assert [w for w in m.warnings if "large-v3-turbo" in w]
