"""A loopback OpenAI-compatible chat API with heavy-tailed latency, and Anthropic's Message
Batches with a fixed time to end, for the scale benchmark.

Each answer waits a log-normal time (default median 2 s, sigma 1: one answer in 100 takes over
20 s), drawn from the request's hash so a rerun sees the same latencies. A request sent again
(the client retries one that timed out) is served as a new one, with a fresh draw: with one
draw per request, a request drawn beyond the client's time-out would time out on every try. It answers a
well-formed Chain-of-Rubrics trace: with the pass-2 hint it follows the hint, otherwise it picks
A or B from the hash (half right, like a weak judge). It quotes the first words of each answer,
one word dropped from one trace in eight, as a strong judge quotes. It reports the model it was asked for and
usage (prompt characters / 4, and `completion_tokens`). `GET /v1/stats` returns every request's
model, arrival and answer times (Unix seconds), from which the benchmark measures how many
requests were in flight.

    .venv/bin/python bench/slow_api.py --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import math
import multiprocessing
import re
import time
from collections.abc import Callable
from typing import Any

HINT = re.compile(r"better response is\s+Chatbot ([AB])")
Judge = Callable[[str, str], str]


def first_words(side: str, text: str, n: int = 12) -> str:
    """The first `n` words of Chatbot `side`'s answer as the request shows it (its last turn in
    a multi-turn request), or "" when it cannot be found."""
    single = re.search(rf"\[The Start of Chatbot {side}'s Response\]\n(.*?)\n\[The End of "
                       rf"Chatbot {side}'s Response\]", text, re.S)
    turns = re.findall(rf"(?:^|\n)Chatbot {side}: (.*?)(?=\n\n(?:User|Chatbot [AB]): |\n\[The "
                       rf"End of the Conversation|\Z)", text, re.S)
    found = single.group(1) if single else (turns[-1] if turns else "")
    return " ".join(found.replace("<", " ").split()[:n])


def trace(verdict: str, text: str = "", loose: bool = False) -> str:
    """A trace that quotes the start of each answer; `loose` drops one word of Chatbot A's quote,
    as strong judges sometimes do."""
    cites = []
    for side in "AB":
        quote = first_words(side, text)
        if loose and side == "A" and len(quote.split()) > 6:
            words = quote.split()
            quote = " ".join(words[:3] + words[4:])
        cites.append(f"<quote_{side}>{quote}</quote_{side}>" if quote and quote.strip(" .")
                     else f"<summary_{side}>Chatbot {side} answers in its own way.</summary_{side}>")
    return ("<type>Chat</type>\n<rubric>Correctness 60%, completeness 25%, clarity 15%."
            "<justify>The request asks for a correct and complete answer.</justify>\n</rubric>\n"
            f"<eval>Chatbot A opens with {cites[0]} and Chatbot B with {cites[1]}. On balance "
            f"Chatbot {verdict} serves the client better.</eval>\n<answer>[[{verdict}]]</answer>")


def latency_of(digest: bytes, median_s: float, sigma: float) -> float:
    """A log-normal draw from the request's hash: the same request waits the same time."""
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    u2 = int.from_bytes(digest[8:16], "big") / 2**64
    z = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
    return median_s * math.exp(sigma * z)


def answer(body: dict[str, Any], completion_tokens: int, judge: Judge | None = None) -> str:
    """`judge`: who answers an unhinted request (the model asked and the request's text give
    the verdict); by default a coin drawn from the request's hash."""
    text = "\n".join(m["content"] for m in body["messages"])
    hinted = HINT.search(text)
    digest = hashlib.sha256(text.encode()).digest()
    verdict = (hinted.group(1) if hinted else judge(body["model"], text) if judge
               else "AB"[digest[20] % 2])
    return json.dumps({
        "id": "slow", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant",
                                 "content": trace(verdict, text, digest[21] % 8 == 0)}}],
        "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": completion_tokens,
                  "total_tokens": len(text) // 4 + completion_tokens}})


def batch_result(params: dict[str, Any], completion_tokens: int, first: bool) -> dict[str, Any]:
    """One Message Batches result, as Anthropic writes it: the same judge, Claude's usage (the
    system prompt written to the prompt cache by the batch's first request, read by the rest)."""
    system = "".join(b["text"] for b in params.get("system") or [])
    text = "\n".join([system, *(m["content"] for m in params["messages"])])
    hinted = HINT.search(text)
    digest = hashlib.sha256(text.encode()).digest()
    verdict = hinted.group(1) if hinted else "AB"[digest[20] % 2]
    shared = len(system) // 4
    return {"type": "succeeded", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": params["model"],
        "content": [{"type": "text", "text": trace(verdict, text, digest[21] % 8 == 0)}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": len(text) // 4 - shared, "output_tokens": completion_tokens,
                  "cache_read_input_tokens": 0 if first else shared,
                  "cache_creation_input_tokens": shared if first else 0}}}


def serve(port: int, median_s: float, sigma: float, completion_tokens: int,
          ready: Any = None, batch_s: float = 30.0, judge: Judge | None = None) -> None:
    """Chat completions (OpenAI's API) with the latency above, and Anthropic's Message Batches,
    each batch ending `batch_s` seconds after it was created (its results then computed)."""
    from aiohttp import web

    records: list[tuple[str, float, float]] = []
    batches: dict[str, dict[str, Any]] = {}
    tries: dict[bytes, int] = {}  # how often each request has arrived

    async def complete(request: web.Request) -> web.Response:
        arrived = time.time()
        raw = await request.read()
        body = json.loads(raw)
        digest = hashlib.sha256(raw).digest()
        n = tries[digest] = tries.get(digest, 0) + 1
        if n > 1:  # a retry: a new draw of its own
            digest = hashlib.sha256(digest + n.to_bytes(4, "big")).digest()
        await asyncio.sleep(latency_of(digest, median_s, sigma))
        reply = answer(body, completion_tokens, judge)
        records.append((body["model"], arrived, time.time()))
        return web.Response(text=reply, content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(records)

    def batch_json(batch: dict[str, Any], base: str) -> dict[str, Any]:
        ended = time.time() >= batch["created"] + batch_s
        n = len(batch["requests"])
        return {"id": batch["id"], "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else n,
                                   "succeeded": n if ended else 0, "errored": 0,
                                   "canceled": 0, "expired": 0},
                "created_at": "2026-12-07T00:00:00Z", "expires_at": "2026-12-08T00:00:00Z",
                "ended_at": "2026-12-07T00:01:00Z" if ended else None, "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": f"{base}/v1/messages/batches/{batch['id']}/results"
                if ended else None}

    async def create_batch(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        batch = {"id": f"msgbatch_{len(batches)}", "requests": body["requests"],
                 "created": time.time()}
        batches[batch["id"]] = batch
        return web.json_response(batch_json(batch, f"http://{request.host}"))

    async def get_batch(request: web.Request) -> web.Response:
        return web.json_response(batch_json(batches[request.match_info["id"]],
                                            f"http://{request.host}"))

    async def batch_results(request: web.Request) -> web.Response:
        batch = batches[request.match_info["id"]]
        ended = time.time()
        lines = []
        for i, req in enumerate(batch["requests"]):
            lines.append(json.dumps({"custom_id": req["custom_id"], "result": batch_result(
                req["params"], completion_tokens, i == 0)}))
            records.append((req["params"]["model"], batch["created"], ended))
        return web.Response(text="\n".join(lines) + "\n", content_type="application/binary")

    async def main() -> None:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", complete)
        app.router.add_get("/v1/stats", stats)
        app.router.add_post("/v1/messages/batches", create_batch)
        app.router.add_get("/v1/messages/batches/{id}", get_batch)
        app.router.add_get("/v1/messages/batches/{id}/results", batch_results)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
        await site.start()
        if ready is not None:
            ready.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def start(median_s: float = 2.0, sigma: float = 1.0, completion_tokens: int = 700,
          batch_s: float = 30.0, judge: Judge | None = None) -> tuple[multiprocessing.Process, str]:
    """The server in its own process (it must not take the build's CPU); returns it and its
    base URL (OpenAI's SDK takes it as it is, Anthropic's without the `/v1`)."""
    ready: multiprocessing.Queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=serve, args=(0, median_s, sigma, completion_tokens, ready,
                                                       batch_s, judge), daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{ready.get(timeout=60)}/v1"


def ceiling(latencies: list[float], concurrency: int) -> float:
    """The utilization of a client that never leaves a slot empty, sending requests with these
    latencies in this order: its only loss is the drain at the end, when fewer requests are
    left than slots and the slowest answers finish alone. No client sending each request once
    does better with the same latencies in the same order."""
    if not latencies:
        return 0.0
    free = [0.0] * concurrency  # when each slot is next free
    for latency in latencies:
        heapq.heappush(free, heapq.heappop(free) + latency)
    return sum(latencies) / (concurrency * max(free))


def utilization(records: list[list[Any]], model: str, concurrency: int) -> dict[str, float]:
    """Mean requests in flight at the server, over the span from the model's first arrival to
    its last answer, divided by the concurrency the client was allowed; and the `ceiling` for
    the same requests (their latencies as served, in the order they arrived)."""
    mine = sorted((a, d) for m, a, d in records if m == model)
    if not mine:
        return {"requests": 0, "span_s": 0.0, "mean_in_flight": 0.0, "utilization": 0.0,
                "ceiling": 0.0}
    span = max(d for _, d in mine) - min(a for a, _ in mine)
    in_flight = sum(d - a for a, d in mine) / span
    return {"requests": len(mine), "span_s": round(span, 1), "mean_in_flight": round(in_flight, 1),
            "utilization": round(in_flight / concurrency, 3),
            "ceiling": round(ceiling([d - a for a, d in mine], concurrency), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--median", type=float, default=2.0, help="median latency, seconds")
    ap.add_argument("--sigma", type=float, default=1.0, help="log-normal sigma of the latency")
    ap.add_argument("--completion-tokens", type=int, default=700)
    args = ap.parse_args()
    serve(args.port, args.median, args.sigma, args.completion_tokens)


if __name__ == "__main__":
    main()


def teacher_span(records: list[list[Any]], first_model: str, concurrency: int) -> dict[str, float]:
    """The build's teacher span (first arrival of any model to the last answer of any) against
    pass 1's ideal span: its summed latencies over the concurrency, what pass 1 alone would take
    with every slot always busy. Their ratio is what the passes after pass 1 add."""
    if not records:
        return {"span_s": 0.0, "pass1_ideal_s": 0.0, "ratio": 0.0}
    span = max(d for _, _, d in records) - min(a for _, a, _ in records)
    ideal = sum(d - a for m, a, d in records if m == first_model) / concurrency
    return {"span_s": round(span, 1), "pass1_ideal_s": round(ideal, 1),
            "ratio": round(span / ideal, 3) if ideal else 0.0}
