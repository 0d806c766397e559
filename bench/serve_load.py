"""Load on `nnzoo serve`: 1,000 predict requests at concurrency 16 against a real server on loopback.

    PYTHONPATH=src python bench/serve_load.py                          # trains digits-mlp first (about 1-2 min)
    PYTHONPATH=src python bench/serve_load.py --run runs/digits-mlp    # a classifier run you have
    PYTHONPATH=src python bench/serve_load.py --run RUN --upload --requests 2000 --concurrency 32

The server runs in its own process (`python -m nnzoo serve RUN --port 0 --quiet`), as users start it; the client is
httpx's async client in this process. Each request sends one real handwritten digit from scikit-learn's set,
resized to the model's input, as JSON pixels (or, with --upload, as a PNG file upload). After a warm-up, the
requests are timed one by one: errors (any non-200 answer), requests/s, p50 and p99 latency. With --compare, the
same load runs again on a server started with --max-batch 1 (no batching), one after the other on the same
machine. The client shares the CPU with the server, so on a small machine the numbers are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

try:
    import httpx
except ImportError:
    sys.exit('bench/serve_load.py needs httpx: pip install "nnzoo[bench]"')


@contextmanager
def server(run: Path, extra: list[str]) -> Iterator[str]:
    """`nnzoo serve RUN` in a subprocess on a free loopback port; yields its URL."""
    cmd = [sys.executable, "-m", "nnzoo", "serve", str(run), "--port", "0", "--quiet", *extra]
    log = tempfile.TemporaryFile("w+")  # uvicorn's log, read only if the server fails (a pipe could fill up)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            m = re.search(r" at (http://\S+/) ", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            log.seek(0)
            raise SystemExit(f"the server did not start: {' '.join(cmd)}\n{log.read()}")
        with httpx.Client(trust_env=False) as c:  # ready when /health answers (uvicorn starts after the line)
            for _ in range(600):
                try:
                    if c.get(url + "health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def payloads(run: Path, upload: bool, count: int = 256) -> tuple[str, list[dict]]:
    """Model name and request bodies: real digits from scikit-learn, at the model's input size."""
    from sklearn.datasets import load_digits

    from nnzoo.api import load_run

    spec = load_run(run).spec
    c, h, w = spec.input_shape
    x = torch.from_numpy(load_digits().images[:count]).float().unsqueeze(1) / 16  # (N, 1, 8, 8) in 0..1
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
    pixels = (x * 255).round().to(torch.uint8).squeeze(1).numpy()
    out = []
    for a in pixels:
        if upload:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(np.asarray(a)).save(buf, format="PNG")
            out.append({"files": {"file": ("digit.png", buf.getvalue(), "image/png")}})
        else:
            out.append({"json": {"pixels": a.tolist()}})
    return run.resolve().name, out


async def load(url: str, name: str, bodies: list[dict], requests: int, concurrency: int) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_i = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, trust_env=False) as client:

        async def worker(n: int) -> None:
            nonlocal next_i
            while next_i < n:
                i = next_i
                next_i += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"v1/models/{name}/predict", **bodies[i % len(bodies)])
                    key = None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:120]}"
                except httpx.HTTPError as e:
                    key = type(e).__name__
                latencies.append(time.perf_counter() - t0)
                if key:
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*[worker(min(20, requests)) for _ in range(concurrency)])  # warm-up
        latencies.clear()
        errors.clear()
        next_i = 0
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(requests) for _ in range(concurrency)])
        seconds = time.perf_counter() - t0
        health = (await client.get("health")).json()
    ms = sorted(1000 * v for v in latencies)
    return {"requests": len(ms), "errors": sum(errors.values()), "error_kinds": errors, "seconds": seconds,
            "requests_per_s": len(ms) / seconds, "p50_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, int(round(0.99 * len(ms))) - 1)], "mean_ms": statistics.fmean(ms),
            "batching": health.get("batching", {}).get(name)}  # fmt: skip


def train_quick_run(folder: Path) -> Path:
    run = folder / "digits-mlp"
    print(f"training digits-mlp into {run} (no --run given) ...", flush=True)
    subprocess.run([sys.executable, "-m", "nnzoo", "train", "digits-mlp", "--out", str(run), "--quiet"], check=True)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, help="a classifier run folder (default: train digits-mlp first)")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--upload", action="store_true", help="send PNG uploads instead of JSON pixels")
    p.add_argument("--compare", action="store_true", help="also run against a server with --max-batch 1")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="nnzoo-serve-load-") as tmp:
        run = args.run or train_quick_run(Path(tmp))
        name, bodies = payloads(run, args.upload)
        setups = {"batched (default: --max-batch 32, --batch-wait-ms 5)": []}
        if args.compare:
            setups["unbatched (--max-batch 1)"] = ["--max-batch", "1"]
        results = {}
        for label, extra in setups.items():
            with server(run, extra) as url:
                results[label] = asyncio.run(load(url, name, bodies, args.requests, args.concurrency))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    what = "PNG uploads" if args.upload else "JSON pixels"
    print(f"{args.requests} predict requests ({what}) at concurrency {args.concurrency}, model {name}, "
          f"{cores} CPU cores, client and server on one machine")  # fmt: skip
    for label, r in results.items():
        b = r["batching"] or {}
        per_pass = b["requests"] / b["forward_passes"] if b.get("forward_passes") else float("nan")
        print(
            f"  {label}: {r['errors']} errors, {r['requests_per_s']:.0f} requests/s, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms; {per_pass:.1f} requests per forward pass (warm-up included)"
        )
        for kind, n in r["error_kinds"].items():
            print(f"    {n} x {kind}")


if __name__ == "__main__":
    main()
