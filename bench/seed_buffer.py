#!/usr/bin/env python3
"""seed_buffer.py - the Python asyncio original of sluice's buffer, as a bench baseline.

The StreamBuffer of the seed (/work/shared/seeds/000_*.txt, "Streaming Response Buffer"):
one asyncio.Condition over a deque, two signal channels (not_full, not_empty) sharing its
lock, close wakes everyone, read returns StreamChunk("", is_final=True) once closed and
drained, stream() yields text until then. One writer coroutine writes COUNT chunks of 64
characters (one write each) and closes; one reader iterates stream(). The seed's sleeps are
left out: this measures the buffer, not the simulated LLM.

    seed_buffer.py CAPACITY COUNT TMAX_SECONDS

Prints "ITEMS ELAPSED_S CPU_S": items read, time from the start to the last read, and the
process's CPU time over the same span. bench.c runs it (the Python row of `make bench`).
"""
import asyncio
import collections
import sys
import time
from dataclasses import dataclass

CHUNK = 64


@dataclass
class StreamChunk:
    text: str
    is_final: bool = False


class StreamBuffer:
    def __init__(self, capacity):
        self._capacity = capacity
        self._queue = collections.deque()
        self._closed = False
        lock = asyncio.Lock()
        # Two channels over one lock: writers wait for room, readers for data
        self._not_full = asyncio.Condition(lock)
        self._not_empty = asyncio.Condition(lock)

    async def write(self, chunk):
        async with self._not_full:
            while len(self._queue) >= self._capacity and not self._closed:
                await self._not_full.wait()
            if self._closed:
                raise RuntimeError("buffer is closed")
            self._queue.append(chunk)
            self._not_empty.notify()

    async def read(self):
        async with self._not_empty:
            while not self._queue and not self._closed:
                await self._not_empty.wait()
            if not self._queue:
                return StreamChunk("", is_final=True)
            chunk = self._queue.popleft()
            self._not_full.notify()
            return chunk

    async def close(self):
        async with self._not_full:
            self._closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()

    async def stream(self):
        while True:
            chunk = await self.read()
            if chunk.is_final:
                return
            yield chunk.text


async def main(capacity, count, tmax):
    buffer = StreamBuffer(capacity)
    text = "x" * CHUNK
    result = {"read": 0, "last": 0.0}

    async def writer(deadline):
        for index in range(count):
            # Time bound checked every 64 writes, as bench.c's writers do
            if index & 63 == 0 and time.monotonic() > deadline:
                break
            await buffer.write(StreamChunk(text=text))
        await buffer.close()

    async def reader():
        async for _ in buffer.stream():
            result["read"] += 1
            result["last"] = time.monotonic()

    cpu = time.process_time()
    start = time.monotonic()
    await asyncio.gather(writer(start + tmax), reader())
    cpu = time.process_time() - cpu
    last = result["last"] or time.monotonic()
    print(f"{result['read']} {last - start:.6f} {cpu:.6f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: seed_buffer.py CAPACITY COUNT TMAX_SECONDS")
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
