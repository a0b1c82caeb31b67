"""Teacher client throughput: requests/s against a loopback server with a fixed latency, beside
the bare openai SDK on the same workload.

    .venv/bin/python bench/client_bench.py --concurrency 64 --latency 0.2 --runs 3
    .venv/bin/python bench/client_bench.py --concurrency 256 --latency 0.2 --runs 3

The server (aiohttp, in its own process so it does not take the client's CPU) answers every
chat completion after `latency` seconds. The client is the build's own `TeacherClient`, with
its durable cache in a temporary directory, so every answer is also written and fsynced. The
baseline, in the same run, is the openai SDK with its aiohttp transport behind a semaphore of
the same concurrency (`chat.completions.create`, no cache): what any user would write. Runs
alternate baseline and client; each figure is the median of `--runs`. The ideal is concurrency
/ latency requests/s; the achieved fraction and CPU per request of each are printed as Markdown
rows for bench/RESULTS.md, so a rework shows its cost against the SDK before it lands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import statistics
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



def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_baseline(port: int, convs: list, concurrency: int) -> tuple[float, float, int]:
    """The bare SDK: (wall s, CPU s, errors)."""
    import openai

    async def go() -> int:
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="bench",
                                    max_retries=4, timeout=30,
                                    http_client=openai.DefaultAioHttpClient(timeout=30))
        limit = asyncio.Semaphore(concurrency)

        async def one(messages: list) -> bool:
            async with limit:
                try:
                    await client.chat.completions.create(model="bench", messages=messages,
                                                         max_completion_tokens=300)
                    return False
                except openai.OpenAIError:
                    return True

        try:
            return sum(await asyncio.gather(*(one(m) for m in convs)))
        finally:
            await client.close()

    cpu0, t = cpu_s(), time.monotonic()
    errors = asyncio.run(go())
    return time.monotonic() - t, cpu_s() - cpu0, errors


def run_client(port: int, convs: list, args: argparse.Namespace) -> tuple[float, float, int]:
    """rubricforge's TeacherClient, its cache written: (wall s, CPU s, errors)."""
    with tempfile.TemporaryDirectory() as cache:
        cfg = load_config(["teacher=openai", "teacher.model=bench", f"teacher.cache_dir={cache}",
                           f"teacher.concurrency={args.concurrency}", "teacher.max_attempts=5",
                           "teacher.timeout_s=30", "teacher.max_tokens=300",
                           f"teacher.rpm={args.rpm or 'null'}", f"teacher.tpm={args.tpm or 'null'}"])
        client = TeacherClient(cfg.teacher, f"http://127.0.0.1:{port}/v1")
        cpu0, t = cpu_s(), time.monotonic()
        results = client.complete_all(convs)
        return time.monotonic() - t, cpu_s() - cpu0, sum(bool(r.error) for r in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    ap.add_argument("--requests", type=int, default=0,
                    help="default: 2,000, or 1.5 minutes' worth under --rpm")
    ap.add_argument("--runs", type=int, default=3, help="runs of each; medians are printed")
    ap.add_argument("--rpm", type=int, help="the server's (and the client's) requests per minute")
    ap.add_argument("--tpm", type=int, help="the server's (and the client's) tokens per minute")
    args = ap.parse_args()
    n = args.requests or (int(args.rpm * 1.5) if args.rpm else 2000)

    ports: multiprocessing.Queue = multiprocessing.Queue()
    counts = multiprocessing.Array("q", 3)  # accepted, refused with 429, tokens accepted
    server = multiprocessing.Process(target=serve, args=(args.latency, args.rpm, args.tpm, ports,
                                                         counts), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    # the same prompts for both, different for each run (nothing is answered from a cache)
    runs: dict[str, list[tuple[float, float, int]]] = {"openai SDK": [], "rubricforge": []}
    try:
        if args.rpm or args.tpm:
            convs = [[{"role": "user", "content": f"request {i}"}] for i in range(n)]
            wall, _, errors = run_client(port, convs, args)
            return _limits_row(args, n, wall, errors, counts)
        for k in range(args.runs):
            convs = [[{"role": "user", "content": f"run {k} request {i}"}] for i in range(n)]
            runs["openai SDK"].append(run_baseline(port, convs, args.concurrency))
            runs["rubricforge"].append(run_client(port, convs, args))
    finally:
        server.terminate()
    ideal = args.concurrency / args.latency
    print(f"machine: {machine()}; {n} requests a run, {args.runs} runs each, medians")
    print("| client | concurrency | latency (ms) | requests/s | fraction of ideal | "
          "CPU per request (ms) | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in runs.items():
        rate = statistics.median(n / wall for wall, _, _ in rows)
        cpu = statistics.median(1000 * c / n for _, c, _ in rows)
        print(f"| {name} | {args.concurrency} | {args.latency * 1000:.0f} | {rate:,.0f} | "
              f"{rate / ideal:.3f} | {cpu:.2f} | {sum(e for _, _, e in rows)} |")


def _limits_row(args: argparse.Namespace, n: int, wall: float, errors: int, counts: Any) -> None:
    accepted, refused, tokens = counts[0], counts[1], counts[2]
    # the budget spaces requests evenly: n requests take (n - 1) spacings
    rpm, tpm = 60 * (accepted - 1) / wall, 60 * tokens * (accepted - 1) / accepted / wall
    # the binding limit's share: the one the client came closest to
    fraction = max(rpm / args.rpm if args.rpm else 0, tpm / args.tpm if args.tpm else 0)
    print(f"machine: {machine()}; {n} requests, {errors} errors")
    print("| limit (RPM / TPM) | requests | wall (s) | achieved RPM / TPM | fraction of the "
          "binding limit | refused with 429 |")
    print(f"| {args.rpm or '-'} / {args.tpm or '-'} | {n:,} | {wall:.0f} | {rpm:,.0f} / "
          f"{tpm:,.0f} | {fraction:.3f} | {refused} ({refused / (accepted + refused):.2%}) |")


if __name__ == "__main__":
    main()
