"""A local OpenAI-compatible chat server for tests: streams a canned reply as server-sent
events, optionally after a delay, or answers with an error status."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    """`with ChatServer(reply="Hi there. Bye.", delay_s=0.3) as url:` -> base_url (…/v1).
    `requests` keeps each request's JSON body; `status` != 200 answers with that status."""

    def __init__(self, reply: str = "Hello there. How can I help?", delay_s: float = 0.0,
                 status: int = 200, chunk: int = 4):
        self.reply, self.delay_s, self.status, self.chunk = reply, delay_s, status, chunk
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "body": json.loads(body),
                                       "auth": self.headers.get("Authorization")})
                time.sleep(outer.delay_s)
                if outer.status != 200:
                    self.send_response(outer.status)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                text = outer.reply
                try:
                    for i in range(0, len(text), outer.chunk):
                        delta = {"choices": [{"delta": {"content": text[i:i + outer.chunk]}}]}
                        self.wfile.write(f"data: {json.dumps(delta)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass    # the client gave up (timeout, interrupt): what the test wants

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
