"""A loopback server that plays Anthropic's Messages and Message Batches endpoints, driven by the
real `anthropic` SDK through its `base_url`, to inject Anthropic's faults (429 with retry-after,
529 overloaded; batch results errored, expired or canceled) and count what was asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_openai import _Loopback

# behaviour(params, n) -> (status, body) or (status, body, headers); params are the Messages API's
Reply = tuple


def message(text: str, input_tokens: int = 11, output_tokens: int = 7, cache_read: int = 0,
            cache_write: int = 0, stop_reason: str = "end_turn", thinking: str | None = None
            ) -> Reply:
    """A Messages API answer as Anthropic writes it."""
    content = ([{"type": "thinking", "thinking": thinking, "signature": "sig"}] if thinking
               else []) + [{"type": "text", "text": text}]
    return 200, json.dumps({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-fake",
        "content": content, "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_input_tokens": cache_read,
                  "cache_creation_input_tokens": cache_write}})


def error(status: int, kind: str, text: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"type": "error", "error": {"type": kind, "message": text}})
    return (status, body, headers) if headers else (status, body)


def overloaded() -> Reply:
    return error(529, "overloaded_error", "Overloaded")


def rate_limited(retry_after_s: float) -> Reply:
    return error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                 {"retry-after": f"{retry_after_s}"})


class FakeAnthropic(_Loopback):
    """`with FakeAnthropic(behaviour) as api:` answers POST /v1/messages with `behaviour`, and
    runs Message Batches with it: a batch ends after `polls` retrievals (never while `stalled`),
    its results one line per request. `batch_result(params, n)` may turn a batch request's
    result into "errored", "expired" or "canceled" (None: answer it with `behaviour`)."""

    def __init__(self, behaviour: Callable[[dict[str, Any], int], Reply], polls: int = 2,
                 batch_result: Callable[[dict[str, Any], int], str | None] | None = None) -> None:
        self.behaviour, self.polls = behaviour, polls
        self.batch_result = batch_result or (lambda params, n: None)
        self.requests: list[dict[str, Any]] = []  # every Messages request, batched ones too
        self.headers: list[dict[str, str]] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.answered: dict[str, int] = {}  # per conversation: answers given
        self.stalled = False
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, text: str, headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> None:
                data = text.encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                path = self.path.split("?")[0]
                if path == "/v1/messages":
                    with lock:
                        outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                        status, text, *extra = outer._ask(body)
                    self._send(status, text, extra[0] if extra else None)
                elif path == "/v1/messages/batches":
                    with lock:
                        self._send(200, json.dumps(outer._create(body["requests"])))
                elif path.endswith("/cancel"):
                    with lock:
                        batch = outer.batches[path.split("/")[-2]]
                        batch["cancel"] = True
                        self._send(200, json.dumps(outer._public(batch)))
                else:
                    self._send(404, error(404, "not_found_error", path)[1])

            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.split("?")[0].split("/")
                with lock:
                    if parts[-1] == "results":
                        self._send(200, outer.batches[parts[-2]]["results"],
                                   content_type="application/binary")
                    elif "batches" in parts:
                        self._send(200, json.dumps(outer._retrieve(parts[-1])))
                    else:
                        self._send(404, error(404, "not_found_error", self.path)[1])

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)

    @property
    def base_url(self) -> str:
        """What the anthropic SDK takes as `base_url` (it adds /v1/... itself)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _ask(self, params: dict[str, Any]) -> Reply:
        self.requests.append(params)
        status, text, *extra = self.behaviour(params, len(self.requests))
        if status == 200:
            key = json.dumps(params["messages"], sort_keys=True)
            self.answered[key] = self.answered.get(key, 0) + 1
            text = json.dumps(json.loads(text) | {"model": params["model"]})  # as asked
        return (status, text, *extra)

    def _create(self, requests: list[dict[str, Any]]) -> dict[str, Any]:
        batch_id = f"msgbatch_{len(self.batches)}"
        self.batches[batch_id] = {"id": batch_id, "requests": requests, "polls": 0,
                                  "ended": False, "cancel": False, "results": "",
                                  "counts": dict.fromkeys(("processing", "succeeded", "errored",
                                                           "canceled", "expired"), 0)}
        self.batches[batch_id]["counts"]["processing"] = len(requests)
        return self._public(self.batches[batch_id])

    def _retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        batch["polls"] += 1
        if not batch["ended"] and batch["polls"] >= self.polls and not self.stalled:
            self._run(batch)
        return self._public(batch)

    def _run(self, batch: dict[str, Any]) -> None:
        lines, counts = [], batch["counts"]
        for req in batch["requests"]:
            params = req["params"]
            kind = "canceled" if batch["cancel"] else self.batch_result(params,
                                                                        len(self.requests) + 1)
            if kind is None:
                status, text, *_ = self._ask(params)
                result = ({"type": "succeeded", "message": json.loads(text)} if status == 200
                          else {"type": "errored", "error": json.loads(text)})
            elif kind == "errored":
                self.requests.append(params)
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "api_error", "message": "Internal server error"}}}
            elif kind == "invalid":
                self.requests.append(params)
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error", "message": "prompt is too long"}}}
            else:
                result = {"type": kind}
            counts[result["type"]] += 1
            lines.append(json.dumps({"custom_id": req["custom_id"], "result": result}))
        counts["processing"] = 0
        batch["results"] = "\n".join(lines) + "\n"
        batch["ended"] = True

    def _public(self, batch: dict[str, Any]) -> dict[str, Any]:
        ended = batch["ended"]
        return {"id": batch["id"], "type": "message_batch",
                "processing_status": "ended" if ended else (
                    "canceling" if batch["cancel"] else "in_progress"),
                "request_counts": batch["counts"], "created_at": "2026-12-07T00:00:00Z",
                "expires_at": "2026-12-08T00:00:00Z",
                "ended_at": "2026-12-07T01:00:00Z" if ended else None,
                "archived_at": None, "cancel_initiated_at": None,
                "results_url": f"{self.base_url}/v1/messages/batches/{batch['id']}/results"
                if ended else None}
