"""Respond: echo, rules, and http (an OpenAI-compatible stream from a local server)."""

from __future__ import annotations

import time

import pytest

from remotemedia.engine.data import ControlData, JsonData, TextData
from remotemedia.nodes.respond import Respond, OllamaLLM
from remotemedia.testing import one_node, run_blocks  # noqa: F401

from .llm_server import ChatServer


def node(**params):
    checked = Respond.check_params(params)
    Respond.check_config(checked)
    n = Respond("llm", **checked)
    n.setup()
    return n


def reply(n, text):
    out = list(n.process(TextData(text, pts=0)))
    texts = [o.text for o in out if type(o) is TextData]
    events = [o.value for o in out if type(o) is JsonData]
    return texts, events


def test_echo_repeats_what_it_heard_sentence_by_sentence():
    n = node(engine="echo")
    texts, events = reply(n, "Hello there. How are you?")
    assert texts == ["Hello there.", "How are you?"]
    assert n.replies == 1 and n.executor_stats()["respond"]["replies"] == 1
    assert events[-1]["type"] == "reply" and events[-1]["reply"] == "Hello there. How are you?"
    assert "text" not in events[-1]     # Speak would say it a second time


def test_rules_first_match_wins_groups_expand_and_default():
    n = node(engine="rules", default="Pardon?",
             rules=[{"match": r"weather", "reply": "It is sunny."},
                    {"match": r"my name is (\w+)", "reply": r"Hello \1."}])
    assert reply(n, "What's the WEATHER like")[0] == ["It is sunny."]
    assert reply(n, "my name is Ada")[0] == ["Hello Ada."]
    assert reply(n, "something else")[0] == ["Pardon?"]


def test_transcript_json_is_heard_not_passed_other_json_passes():
    n = node()
    assert n.process(JsonData({"type": "transcript", "text": "hi"})) is None
    ev = JsonData({"type": "speech_start"})
    assert n.process(ev) is ev


@pytest.mark.parametrize("rule", [{"match": "("}, {"match": "(", "reply": "x"}, "x"])
def test_bad_rules_are_refused_at_load(rule):
    with pytest.raises(ValueError, match=r"rules\[0\]"):
        node(engine="rules", rules=[rule])


def test_http_streams_the_first_sentence_before_the_reply_is_complete(monkeypatch):
    monkeypatch.setenv("RM_TEST_KEY", "sekrit")
    with ChatServer(reply="Hello there. I am a bot. Bye.", chunk=3) as srv:
        n = node(engine="http", base_url=srv.base_url, model="m", api_key_env="RM_TEST_KEY",
                 system="be brief")
        it = n.process(TextData("hi", pts=0))
        first = next(it)
        assert type(first) is TextData and first.text == "Hello there."
        rest = list(it)
    assert [o.text for o in rest if type(o) is TextData] == ["I am a bot.", "Bye."]
    req = srv.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["body"]["stream"] is True
    assert req["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    assert req["auth"] == "Bearer sekrit"


def test_http_error_is_an_event_and_a_spoken_fallback():
    with ChatServer(status=500) as srv:
        n = node(engine="http", base_url=srv.base_url, fallback="Sorry.")
        texts, events = reply(n, "hi")
    assert texts == ["Sorry."]
    assert events[0]["type"] == "error" and "HTTP 500" in events[0]["error"]
    assert n.errors == 1 and events[-1]["error"]


def test_http_timeout_is_bounded_never_a_hung_loop():
    with ChatServer(delay_s=3.0) as srv:
        n = node(engine="http", base_url=srv.base_url, timeout_s=0.2)
        t0 = time.monotonic()
        texts, events = reply(n, "hi")
        spent = time.monotonic() - t0
    assert texts == [n.fallback] and "within 0.2 s" in events[0]["error"]
    assert spent < 2.5          # bounded by timeout_s, not by the server's 3 s


def test_http_connection_refused_is_an_error_event():
    with ChatServer() as srv:
        url = srv.base_url
    n = node(engine="http", base_url=url, timeout_s=1.0)
    texts, events = reply(n, "hi")
    assert texts == [n.fallback] and events[0]["type"] == "error"


def test_slow_server_shows_in_the_nodes_latency():
    with ChatServer(delay_s=0.3) as srv:
        n = node(engine="http", base_url=srv.base_url)
        _, events = reply(n, "hi")
    assert events[-1]["first_text_ms"] >= 300


def test_interrupt_is_counted_and_closes_the_stream():
    n = node()
    assert n.on_control(ControlData("interrupt")) is None
    assert n.interrupts == 1 and n.executor_stats()["respond"]["interrupts"] == 1


def test_ollama_llm_maps_to_http_with_ollamas_address():
    params = OllamaLLM.check_params({"model": "llama3.2:1b", "system_prompt": "be nice",
                                     "max_tokens": 150, "temperature": 0.7})
    assert params["engine"] == "http" and params["system"] == "be nice"
    assert params["base_url"] == "http://127.0.0.1:11434/v1"
    assert OllamaLLM.check_params({"host": "http://h:1"})["base_url"] == "http://h:1/v1"
