"""A loopback server that plays an OpenAI-compatible API, to inject faults and count requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = tuple  # (status, body) or (status, body, headers)


def completion(content: str, finish_reason: str = "stop", prompt_tokens: int = 11,
               completion_tokens: int = 7) -> Reply:
    return 200, json.dumps({
        "id": "x", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}})


class _Loopback:
    """A threaded HTTP server on a free loopback port, for `with ... as server:`."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class FakeOpenAI(_Loopback):
    """`with FakeOpenAI(behaviour) as server:` behaviour(request_json, n) -> (status, body)."""

    def __init__(self, behaviour: Callable[[dict[str, Any], int], Reply]) -> None:
        self.behaviour = behaviour
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.headers: list[dict[str, str]] = []
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    outer.requests.append(body)
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    n = len(outer.requests)
                with lock:
                    outer.arrivals.append(time.monotonic())
                status, text, *extra = outer.behaviour(body, n)
                data = text.encode()
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)



def request_tokens(body: dict[str, Any]) -> int:
    """What a request counts against a token limit: prompt characters / 4 plus its max tokens."""
    chars = sum(len(m["content"]) for m in body["messages"])
    return chars // 4 + int(body.get("max_completion_tokens") or 0)


class RateLimited:
    """A behaviour wrapper that enforces limits like a provider: at most `limit` requests and
    `token_limit` tokens (None: no limit) in any `window_s` seconds, else 429 with
    Retry-After. Counts what it refused."""

    def __init__(self, inner: Callable[[dict[str, Any], int], Reply], limit: int,
                 window_s: float, token_limit: int | None = None) -> None:
        self.inner, self.limit, self.window_s = inner, limit, window_s
        self.token_limit = token_limit
        self.accepted: list[tuple[float, int]] = []
        self.refused = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any], n: int) -> Reply:
        now = time.monotonic()
        tokens = request_tokens(body)
        with self.lock:
            recent = [(t, k) for t, k in self.accepted if t > now - self.window_s]
            over_tokens = (self.token_limit is not None
                           and sum(k for _, k in recent) + tokens > self.token_limit)
            if len(recent) >= self.limit or over_tokens:
                self.refused += 1
                wait = recent[0][0] + self.window_s - now if recent else self.window_s
                return 429, json.dumps({"error": {"message": "rate limited"}}), {
                    "Retry-After": f"{wait:.3f}"}
            self.accepted.append((now, tokens))
        return self.inner(body, n)


FAULTS = ("rate_limit", "server_error", "hang", "malformed", "empty", "length")


class Faults:
    """A behaviour that injects the faults of a real provider by arrival number: request n gets
    fault f when n % every[f] == 0 (checked in FAULTS order), the inner answer otherwise.
    `hang` sleeps `hang_s` (past the client's time-out) and then fails. It counts the answers
    it gave per conversation, so a test can prove nothing was answered twice. `hold()` makes
    every later request wait (nothing answered is in flight), `release()` fails those with 503;
    `busy` counts the requests past the gate whose reply is not yet decided, so a test can wait
    until every answer the server will count has been counted."""

    def __init__(self, inner: Callable[[dict[str, Any], int], Reply], every: dict[str, int],
                 hang_s: float = 5.0) -> None:
        unknown = set(every) - set(FAULTS)
        assert not unknown, f"unknown faults {unknown}"
        self.inner, self.every, self.hang_s = inner, every, hang_s
        self.answered: dict[str, int] = {}
        self.injected = dict.fromkeys(FAULTS, 0)
        self.gate = threading.Event()
        self.gate.set()
        self.held = 0
        self.busy = 0
        self.lock = threading.Lock()

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __call__(self, body: dict[str, Any], n: int) -> Reply:
        if not self.gate.is_set():
            with self.lock:
                self.held += 1
            self.gate.wait()
            return 503, json.dumps({"error": {"message": "held, then dropped"}})
        with self.lock:
            self.busy += 1
        try:
            return self._reply(body, n)
        finally:
            with self.lock:
                self.busy -= 1

    def _reply(self, body: dict[str, Any], n: int) -> Reply:
        fault = next((f for f in FAULTS if f in self.every and n % self.every[f] == 0), None)
        if fault:
            with self.lock:
                self.injected[fault] += 1
        if fault == "rate_limit":
            return 429, json.dumps({"error": {"message": "slow down"}}), {"Retry-After": "0.2"}
        if fault == "server_error":
            return 500, json.dumps({"error": {"message": "overloaded"}})
        if fault == "hang":
            time.sleep(self.hang_s)
            return 504, json.dumps({"error": {"message": "gateway time-out"}})
        if fault == "malformed":
            return 200, '{"id": "x", "choices": [{"mess'
        status, text, *extra = self.inner(body, n)
        if status == 200 and fault in ("empty", "length"):
            reply = json.loads(text)
            choice = reply["choices"][0]
            choice["message"]["content"] = "" if fault == "empty" else choice["message"]["content"][:20]
            choice["finish_reason"] = "stop" if fault == "empty" else "length"
            text = json.dumps(reply)
        if status == 200:
            key = json.dumps(body["messages"], sort_keys=True)
            with self.lock:
                self.answered[key] = self.answered.get(key, 0) + 1
        return (status, text, *extra)


class FakeBatchAPI(_Loopback):
    """Plays the OpenAI Files and Batch endpoints on loopback. A job stays `in_progress` for
    `polls` retrievals, then each of its lines is answered by `behaviour(body, n)` (a 200 goes
    to the output file, anything else to the error file). `stall()` keeps jobs in progress
    until `unstall()`. Counts uploads, jobs and answers per conversation."""

    def __init__(self, behaviour: Callable[[dict[str, Any], int], Reply], polls: int = 2) -> None:
        self.behaviour, self.polls = behaviour, polls
        self.files: dict[str, str] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.answered: dict[str, int] = {}
        self.lines_seen = 0
        self.stalled = False
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, payload: Any, raw: str | None = None) -> None:
                data = (raw if raw is not None else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    if self.path.endswith("/files"):
                        self._send(200, outer._upload(self.headers["Content-Type"], body))
                    elif self.path.endswith("/batches"):
                        self._send(200, outer._create(json.loads(body)))
                    else:
                        self._send(404, {"error": {"message": self.path}})

            def do_GET(self) -> None:  # noqa: N802
                with lock:
                    parts = self.path.split("/")
                    if "batches" in parts:
                        self._send(200, outer._retrieve(parts[-1]))
                    elif parts[-1] == "content":
                        self._send(200, None, raw=outer.files[parts[-2]])
                    else:
                        self._send(404, {"error": {"message": self.path}})

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)

    def _upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
        for part in body.split(b"--" + boundary):
            head, _, data = part.partition(b"\r\n\r\n")
            if b'name="file"' in head:
                file_id = f"file-{len(self.files)}"
                self.files[file_id] = data.removesuffix(b"\r\n").decode()
                return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
                        "filename": "requests.jsonl", "purpose": "batch"}
        raise AssertionError("no file in the upload")

    def _create(self, req: dict[str, Any]) -> dict[str, Any]:
        job_id = f"batch_{len(self.jobs)}"
        self.jobs[job_id] = {"id": job_id, "object": "batch", "endpoint": req["endpoint"],
                             "input_file_id": req["input_file_id"], "status": "in_progress",
                             "completion_window": req["completion_window"], "created_at": 0,
                             "output_file_id": None, "error_file_id": None, "polls": 0}
        return self._public(self.jobs[job_id])

    def _retrieve(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        job["polls"] += 1
        if job["status"] == "in_progress" and job["polls"] >= self.polls and not self.stalled:
            self._run(job)
        return self._public(job)

    def _run(self, job: dict[str, Any]) -> None:
        out, err = [], []
        for line in self.files[job["input_file_id"]].splitlines():
            req = json.loads(line)
            self.lines_seen += 1
            status, text, *_ = self.behaviour(req["body"], self.lines_seen)
            result = {"id": f"r{self.lines_seen}", "custom_id": req["custom_id"], "error": None,
                      "response": {"status_code": status, "body": json.loads(text)}}
            (out if status == 200 else err).append(json.dumps(result))
            if status == 200:
                key = json.dumps(req["body"]["messages"], sort_keys=True)
                self.answered[key] = self.answered.get(key, 0) + 1
        for name, lines in (("output_file_id", out), ("error_file_id", err)):
            if lines:
                file_id = f"file-{len(self.files)}"
                self.files[file_id] = "\n".join(lines) + "\n"
                job[name] = file_id
        job["status"] = "completed"

    @staticmethod
    def _public(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k != "polls"}

