"""`Respond`: a reply to what the user said (text in, text out), streamed by the sentence.

Input: RuntimeData.Text (a final transcript, from `Transcribe`); a Json `transcript` event is
taken as heard and dropped (its Text follows, and `Speak` would say a Json `text` aloud);
other Json and Control pass on. Output, per input text, an iterator (lazy: the first sentence
leaves before the reply is complete) of:

- Text pieces of the reply, one per sentence (remotemedia.sentences), metadata
  `{"type": "reply", "node": ID, "turn": N}`;
- at the end a Json event `{"type": "reply", "node", "turn", "heard", "reply", "engine",
  "first_text_ms", "total_ms", "error"}` (the full reply under `reply`, never `text`, so
  `Speak` does not say it twice; times measured by the node in ms, None where not measured);
- on a timeout or an error (http): a Json `{"type": "error", "node", "turn", "error"}` and the
  short spoken `fallback` as the reply. The loop never hangs: every read has `timeout_s`.

Engines:
- `echo`: the reply is what was heard.
- `rules`: `rules: [{match: REGEX, reply: TEXT}]`, the first whose regex is found in the text
  (case-insensitive) wins; `\\1`-style groups expand; else `default`.
- `http`: an OpenAI-compatible `POST {base_url}/chat/completions` with `stream: true`
  (server-sent events, `data: {...choices[0].delta.content}` ... `data: [DONE]`); `model`,
  `system`, `max_tokens`, `temperature`; the API key (Bearer) from the environment variable
  named by `api_key_env`. The conversation so far is sent (the last `history` exchanges).
  Standard library only (http.client), no new dependency.

A Control `interrupt` (barge-in) closes the reply being streamed: the rest is not asked for.
Default executor: thread (an http reply takes hundreds of ms to seconds).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import time
import urllib.parse
from typing import ClassVar, Iterator

from ..engine.data import JsonData, TextData
from ..engine.errors import RemoteMediaError
from ..engine.node import Node, Param, register_node
from ..sentences import sentences

ENGINES = ("echo", "rules", "http")
#: Ollama's OpenAI-compatible endpoint on its default local address
OLLAMA_BASE_URL = "http://127.0.0.1:11434/v1"
FALLBACK = "Sorry, I can't answer right now."


class ReplyError(RemoteMediaError):
    """The http engine could not get a reply (status, connection, timeout, bad stream)."""


@register_node
class Respond(Node):
    """Text in, reply text out, sentence by sentence (module docstring: shapes and events).
    ValueError at load for a bad rule (not a list of {match, reply}, a regex that does not
    compile) or an http engine without base_url/model. Errors of the http engine while running
    are events plus the spoken `fallback`, never exceptions."""

    node_type = "Respond"
    description = "A reply to the user's text: echo, rules, or an OpenAI-compatible LLM (http)."
    accepts = frozenset({"text", "json"})
    default_executor: ClassVar[str] = "thread"
    params = (
        Param("engine", str, "echo", "echo, rules, or http", choices=ENGINES),
        Param("rules", list, [], "rules engine: [{match: REGEX, reply: TEXT}], first match wins"),
        Param("default", str, "Sorry, I didn't catch that.", "rules engine: the reply when no "
              "rule matches"),
        Param("base_url", str, OLLAMA_BASE_URL, "http engine: the API's base URL (.../v1)"),
        Param("model", str, "llama3.2:1b", "http engine: the model name"),
        Param("system", str, "You are a helpful voice assistant. Answer in one or two short "
              "sentences: your reply is spoken aloud.", "http engine: the system prompt"),
        Param("api_key_env", str, None, "http engine: environment variable holding the API "
              "key (sent as a Bearer token); none: no key"),
        Param("max_tokens", int, 150, "http engine: longest reply, in tokens", min=1,
              max=100_000),
        Param("temperature", float, 0.7, "http engine: sampling temperature", min=0.0,
              max=2.0),
        Param("timeout_s", float, 10.0, "http engine: longest wait for the connection or any "
              "read (s)", min=0.05, max=600.0),
        Param("history", int, 4, "http engine: earlier exchanges sent with each request",
              min=0, max=100),
        Param("fallback", str, FALLBACK, "said when the http engine fails or times out"),
    )

    @classmethod
    def check_config(cls, config: dict) -> None:
        """ValueError naming a malformed rule or regex, or an unusable base_url."""
        for i, rule in enumerate(config["rules"]):
            if not (isinstance(rule, dict) and isinstance(rule.get("match"), str)
                    and isinstance(rule.get("reply"), str)):
                raise ValueError(f"rules[{i}] must be {{match: REGEX, reply: TEXT}}, got "
                                 f"{rule!r}")
            try:
                re.compile(rule["match"])
            except re.error as exc:
                raise ValueError(f"rules[{i}].match is not a regex: {exc}") from None
        if config["engine"] == "http":
            url = urllib.parse.urlsplit(config["base_url"])
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError(f"base_url must be an http(s) URL, got "
                                 f"{config['base_url']!r}")

    def setup(self) -> None:
        """Compiles the rules; zeroes the counters."""
        self._rules = [(re.compile(r["match"], re.IGNORECASE), r["reply"]) for r in self.rules]
        self._turn = 0
        self._history: list[dict] = []
        self._stream = None          # the http reply being read, closed by an interrupt
        #: replies given, http errors and timeouts (each also an error event), interrupts
        self.replies = 0
        self.errors = 0
        self.interrupts = 0

    def executor_stats(self) -> dict:
        """{"respond": {"engine", "replies", "errors", "interrupts"}} for the stats report."""
        return {"respond": {"engine": self.engine, "replies": self.replies,
                            "errors": self.errors, "interrupts": self.interrupts}}

    def process(self, data):
        """Text -> iterator of reply Text pieces then a reply Json event (lazy); a transcript
        Json -> None (heard); other Json -> unchanged."""
        if type(data) is TextData:
            heard = data.text.strip()
            if not heard:
                return None
            self._turn += 1
            return self._reply(heard, self._turn, data.pts)
        value = data.value if type(data) is JsonData else None
        if isinstance(value, dict) and value.get("type") == "transcript":
            return None
        return data

    def on_control(self, event):
        """`interrupt` (barge-in): the reply being streamed is closed and counted."""
        if event.event == "interrupt":
            self.interrupts += 1
            self._close_stream()
        return None

    # -- engines ---------------------------------------------------------------------------
    def _reply(self, heard: str, turn: int, pts) -> Iterator:
        t0 = time.perf_counter()
        first_ms = None
        said: list[str] = []
        error = None
        meta = {"type": "reply", "node": self.node_id, "turn": turn}
        try:
            for piece in self._pieces(heard):
                if first_ms is None:
                    first_ms = round((time.perf_counter() - t0) * 1e3, 3)
                said.append(piece)
                yield TextData(piece, pts=pts, metadata=meta)
        except ReplyError as exc:
            error = str(exc)
            self.errors += 1
            yield JsonData({"type": "error", "node": self.node_id, "turn": turn,
                            "error": error}, pts=pts)
            if not said:
                # Something is said, so the user is never left waiting in silence.
                said.append(self.fallback)
                first_ms = round((time.perf_counter() - t0) * 1e3, 3)
                yield TextData(self.fallback, pts=pts, metadata=meta)
        finally:
            self._close_stream()
        reply = " ".join(said)
        self.replies += 1
        if self.history:
            self._history = (self._history + [{"role": "user", "content": heard},
                                              {"role": "assistant", "content": reply}]
                             )[-2 * self.history:]
        yield JsonData({"type": "reply", "node": self.node_id, "turn": turn, "heard": heard,
                        "reply": reply, "engine": self.engine, "first_text_ms": first_ms,
                        "total_ms": round((time.perf_counter() - t0) * 1e3, 3),
                        "error": error}, pts=pts)

    def _pieces(self, heard: str) -> Iterator[str]:
        if self.engine == "echo":
            yield from sentences(heard)
        elif self.engine == "rules":
            yield from sentences(self._rule(heard))
        else:
            yield from self._streamed(heard)

    def _rule(self, heard: str) -> str:
        for regex, reply in self._rules:
            m = regex.search(heard)
            if m:
                try:
                    return m.expand(reply)
                except (re.error, IndexError):
                    return reply
        return self.default

    def _streamed(self, heard: str) -> Iterator[str]:
        """Sentences of the streamed reply as each completes (the last may lack an end)."""
        buf = ""
        for delta in self._deltas(heard):
            buf += delta
            end = max((m.end() for m in _COMPLETE.finditer(buf)), default=0)
            if end:
                yield from sentences(buf[:end])
                buf = buf[end:]
        yield from sentences(buf)

    def _deltas(self, heard: str) -> Iterator[str]:
        url = urllib.parse.urlsplit(self.base_url)
        path = url.path.rstrip("/") + "/chat/completions"
        body = json.dumps({"model": self.model, "stream": True, "max_tokens": self.max_tokens,
                           "temperature": self.temperature,
                           "messages": [{"role": "system", "content": self.system},
                                        *self._history,
                                        {"role": "user", "content": heard}]}).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=self.timeout_s)
        self._stream = conn
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            if resp.status != 200:
                raise ReplyError(f"{self.base_url}: HTTP {resp.status} {resp.reason}")
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    chunk = json.loads(payload)
                    delta = chunk["choices"][0].get("delta", {}).get("content") or ""
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    raise ReplyError(f"{self.base_url}: not an OpenAI stream chunk: "
                                     f"{payload[:80]!r}") from None
                if delta:
                    yield delta
        except TimeoutError:
            raise ReplyError(f"{self.base_url}: no answer within {self.timeout_s:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            if self._stream is None:         # closed by an interrupt: not an error
                return
            raise ReplyError(f"{self.base_url}: {exc}") from None

    def _close_stream(self) -> None:
        conn, self._stream = self._stream, None
        if conn is not None:
            conn.close()


#: a sentence is complete once whitespace follows its end (as remotemedia.sentences cuts)
_COMPLETE = re.compile(r"[.!?;…]+[\"'”’)\]]*\s|\n")


@register_node
class OllamaLLM(Respond):
    """The upstream's OllamaLLM, run by Respond's http engine against Ollama's
    OpenAI-compatible endpoint (default http://127.0.0.1:11434/v1): `system_prompt` is
    `system`, `host`/`base_url` the server (…/v1 added when missing)."""

    node_type = "OllamaLLM"
    description = "Upstream alias of Respond (engine http, Ollama's local address)."
    alias_of = "Respond"
    upstream: ClassVar[bool] = True
    params = tuple(p if p.name != "engine" else Param("engine", str, "http", "echo, rules, or "
                   "http (default http)", choices=ENGINES) for p in Respond.params)

    @classmethod
    def normalize_params(cls, params: dict) -> tuple[dict, list[str]]:
        """system_prompt -> system, host -> base_url (with /v1); unknown params dropped with a
        warning line each."""
        out, notes = {}, []
        known = {p.name for p in cls.params}
        for key, value in params.items():
            name = {"system_prompt": "system", "host": "base_url"}.get(key, key)
            if name == "base_url" and isinstance(value, str) and \
                    not value.rstrip("/").endswith("/v1"):
                value = value.rstrip("/") + "/v1"
            if name not in known:
                notes.append(f"unknown param '{key}' for OllamaLLM ignored")
                continue
            out[name] = value
        return out, notes

    @classmethod
    def check_params(cls, params: dict) -> dict:
        """normalize_params, then Node's checks."""
        params, _ = cls.normalize_params(params)
        return super().check_params(params)


__all__ = ["Respond", "OllamaLLM", "ReplyError", "FALLBACK", "OLLAMA_BASE_URL"]
