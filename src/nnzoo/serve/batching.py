"""Dynamic batching: predict requests that arrive together share one forward pass.

A model's forward pass on 32 images costs little more than on one (the weights are read once, the matmuls get
wider), so the server queues requests per model: the first one waits up to ``wait_ms`` for others to join, up to
``max_batch``, then a worker stacks them, runs the model once in the model's own thread (the event loop keeps
accepting requests meanwhile) and hands every caller its row. The same idea as TorchServe's batch_size /
max_batch_delay and Triton's dynamic batcher, in a few lines of asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor

import torch

from .limits import BATCH_WAIT_MS, MAX_BATCH, MAX_PENDING, Busy


class Batcher:
    """``await batcher.submit(x)`` -> ``fn(stack([x, ...]))[i]``, with concurrent submissions stacked together.

    ``fn`` takes a (B, ...) tensor and returns (B, ...) results; it runs in ``executor`` (one thread per model, so
    a model is never run by two threads at once). ``forwards`` counts the calls to ``fn``.
    """

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], executor: Executor, *, max_batch: int = MAX_BATCH,
                 wait_ms: float = BATCH_WAIT_MS, max_pending: int = MAX_PENDING, name: str = "model"):  # fmt: skip
        if max_batch < 1 or wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and wait_ms >= 0, not {max_batch} and {wait_ms}")
        self.fn, self.executor = fn, executor
        self.max_batch, self.wait, self.max_pending, self.name = max_batch, wait_ms / 1000, max_pending, name
        self.forwards = 0  # calls of fn, i.e. forward passes
        self.served = 0  # requests answered
        self._queue: asyncio.Queue[tuple[torch.Tensor, asyncio.Future[torch.Tensor]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, x: torch.Tensor) -> torch.Tensor:
        queue = self._ensure_worker()
        if queue.qsize() >= self.max_pending:
            raise Busy(f"{self.name} has {queue.qsize()} requests waiting; try again in a moment.")
        future: asyncio.Future[torch.Tensor] = asyncio.get_running_loop().create_future()
        queue.put_nowait((x, future))
        return await future

    def _ensure_worker(self) -> asyncio.Queue:
        # Started by the first request, in the loop that serves it (a test client may bring a loop of its own).
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue), name=f"batcher-{self.name}")
        assert self._queue is not None
        return self._queue

    async def _run(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.wait
            while len(batch) < self.max_batch:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except (asyncio.TimeoutError, TimeoutError):
                    break
            batch = [(x, f) for x, f in batch if not f.done()]  # a caller that went away needs no answer
            if batch:
                await self._forward(batch)

    async def _forward(self, batch: list[tuple[torch.Tensor, asyncio.Future[torch.Tensor]]]) -> None:
        loop = asyncio.get_running_loop()
        x = torch.stack([x for x, _ in batch])  # (B, C, H, W)
        self.forwards += 1
        try:
            out = await loop.run_in_executor(self.executor, self.fn, x)
        except Exception as e:  # noqa: BLE001  (every waiting caller hears of it; the worker keeps serving)
            for _, f in batch:
                if not f.done():
                    f.set_exception(e)
            return
        self.served += len(batch)
        for i, (_, f) in enumerate(batch):
            if not f.done():
                f.set_result(out[i])

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, RuntimeError):
                pass
        self._worker = None
