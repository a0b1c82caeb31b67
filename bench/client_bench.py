"""Teacher client throughput: requests/s against a loopback server with a fixed latency.

    .venv/bin/python bench/client_bench.py --concurrency 64 --latency 0.2
    .venv/bin/python bench/client_bench.py --concurrency 256 --latency 0.2

The server (aiohttp, in its own process so it does not take the client's CPU) answers every
chat completion after `latency` seconds. The client is the build's own `TeacherClient`, with
its durable cache in a temporary directory, so every answer is also written and fsynced. The
ideal is concurrency / latency requests/s; the achieved fraction of it and the client's CPU per
request are printed as a Markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import machine  # noqa: E402
from pipeline.settings import load_config  # noqa: E402
from pipeline.teachers.client import TeacherClient  # noqa: E402

BODY = json.dumps({
    "id": "bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "<answer>[[A]]</answer>"}}],
    "usage": {"prompt_tokens": 200, "completion_tokens": 10, "total_tokens": 210}})


def serve(latency: float, rpm: int | None, tpm: int | None, port_out: multiprocessing.Queue,
          counts: Any) -> None:
    """Answer after `latency`; like a provider, refuse with 429 + Retry-After what would exceed
    `rpm` requests or `tpm` tokens (prompt characters / 4 + max tokens) in any 60 s."""
    from collections import deque

    from aiohttp import web

    accepted: deque[tuple[float, int]] = deque()
    window_tokens = [0]

    async def complete(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        tokens = sum(len(m["content"]) for m in body["messages"]) // 4 + body.get(
            "max_completion_tokens", 0)
        now = time.monotonic()
        while accepted and accepted[0][0] <= now - 60:
            window_tokens[0] -= accepted.popleft()[1]
        if (rpm and len(accepted) >= rpm) or (tpm and window_tokens[0] + tokens > tpm):
            counts[1] += 1
            wait = accepted[0][0] + 60 - now if accepted else 1.0
            return web.Response(status=429, text='{"error": {"message": "rate limited"}}',
                                content_type="application/json",
                                headers={"Retry-After": f"{wait:.3f}"})
        accepted.append((now, tokens))
        window_tokens[0] += tokens
        counts[0] += 1
        counts[2] += tokens
        await asyncio.sleep(latency)
        return web.Response(text=BODY, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", complete)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_out.put(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    ap.add_argument("--requests", type=int, default=0,
                    help="default: 20 x concurrency, or 1.5 minutes' worth under --rpm")
    ap.add_argument("--rpm", type=int, help="the server's (and the client's) requests per minute")
    ap.add_argument("--tpm", type=int, help="the server's (and the client's) tokens per minute")
    args = ap.parse_args()
    n = args.requests or (int(args.rpm * 1.5) if args.rpm else 20 * args.concurrency)

    ports: multiprocessing.Queue = multiprocessing.Queue()
    counts = multiprocessing.Array("q", 3)  # accepted, refused with 429, tokens accepted
    server = multiprocessing.Process(target=serve, args=(args.latency, args.rpm, args.tpm, ports,
                                                         counts), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    try:
        with tempfile.TemporaryDirectory() as cache:
            cfg = load_config(["teacher=openai", "teacher.model=bench", f"teacher.cache_dir={cache}",
                               f"teacher.concurrency={args.concurrency}", "teacher.max_attempts=5",
                               "teacher.timeout_s=30", "teacher.max_tokens=300",
                               f"teacher.rpm={args.rpm or 'null'}", f"teacher.tpm={args.tpm or 'null'}"])
            client = TeacherClient(cfg.teacher, f"http://127.0.0.1:{port}/v1")
            convs = [[{"role": "user", "content": f"request {i}"}] for i in range(n)]
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t = time.monotonic()
            results = client.complete_all(convs)
            wall = time.monotonic() - t
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        server.terminate()
    errors = sum(bool(r.error) for r in results)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"machine: {machine()}; {n} requests, {errors} errors")
    if args.rpm or args.tpm:
        accepted, refused, tokens = counts[0], counts[1], counts[2]
        # the budget spaces requests evenly: n requests take (n - 1) spacings
        rpm, tpm = 60 * (accepted - 1) / wall, 60 * tokens * (accepted - 1) / accepted / wall
        # the binding limit's share: the one the client came closest to
        fraction = max(rpm / args.rpm if args.rpm else 0, tpm / args.tpm if args.tpm else 0)
        print("| limit (RPM / TPM) | requests | wall (s) | achieved RPM / TPM | fraction of the "
              "binding limit | refused with 429 |")
        print(f"| {args.rpm or '-'} / {args.tpm or '-'} | {n:,} | {wall:.0f} | {rpm:,.0f} / "
              f"{tpm:,.0f} | {fraction:.3f} | {refused} ({refused / (accepted + refused):.2%}) |")
        return
    ideal = args.concurrency / args.latency
    print("| concurrency | latency (ms) | requests | wall (s) | requests/s | ideal | fraction "
          "| client CPU per request (ms) |")
    print(f"| {args.concurrency} | {args.latency * 1000:.0f} | {n:,} | {wall:.1f} | {n / wall:,.0f} "
          f"| {ideal:,.0f} | {n / wall / ideal:.3f} | {1000 * cpu / n:.2f} |")


if __name__ == "__main__":
    main()
