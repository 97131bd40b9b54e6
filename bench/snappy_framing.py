"""Micro-benchmark: the snappy framing of useCompression (proto/snappy.py) against cramjam's own.

Writer: our SnappyFrameWriter.compress(write) against cramjam.snappy.Compressor (compress + flush
per write: the same bytes, see tests/unit/test_snappy.py). Reader: our SnappyFrameReader fed the
stream in network-sized pieces against cramjam.snappy.decompress of the whole stream at once (the
only way cramjam reads frames: its streaming Decompressor fails on a chunk cut in two, so it cannot
sit on a socket). Prints MB/s of uncompressed data, best of --repeat runs.

    .venv/bin/python bench/snappy_framing.py [--mib 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import cramjam

from aiofrp.proto.snappy import SnappyFrameReader, SnappyFrameWriter


def payloads(total: int, write: int, kind: str) -> list[bytes]:
    if kind == "random":
        block = os.urandom(write)
    else:  # text-like: compresses about 3:1
        words = [os.urandom(3).hex() for _ in range(200)]
        text = " ".join(words[i % 37 * 5 % 200] for i in range(write)).encode()
        block = text[:write]
    return [block] * max(1, total // write)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    total = args.mib << 20
    print(f"{'data':7} {'write':>7}  {'ours write':>11} {'cramjam write':>14}  {'ours read':>10} {'cramjam read':>13}")
    for kind in ("text", "random"):
        for write in (1024, 16 << 10, 64 << 10, 256 << 10):
            data = payloads(total, write, kind)
            n = sum(len(d) for d in data)

            def ours_write(data: list[bytes] = data) -> list[bytes]:
                w = SnappyFrameWriter()
                return [w.compress(d) for d in data]

            def cramjam_write(data: list[bytes] = data) -> list[bytes]:
                c = cramjam.snappy.Compressor()
                out = []
                for d in data:
                    c.compress(d)
                    out.append(bytes(c.flush()))
                return out

            frames = ours_write()
            assert frames == cramjam_write()
            stream = b"".join(frames)
            pieces = [stream[i : i + 16384] for i in range(0, len(stream), 16384)]  # TLS-record sized

            def ours_read(pieces: list[bytes] = pieces) -> int:
                r = SnappyFrameReader()
                return sum(len(r.decompress(p)) for p in pieces)

            def cramjam_read(stream: bytes = stream) -> int:
                return len(cramjam.snappy.decompress(stream))

            assert ours_read() == cramjam_read() == n
            mbs = [n / best(f, args.repeat) / 1e6 for f in (ours_write, cramjam_write, ours_read, cramjam_read)]
            print(f"{kind:7} {write:>7}  {mbs[0]:>11.0f} {mbs[1]:>14.0f}  {mbs[2]:>10.0f} {mbs[3]:>13.0f}")


if __name__ == "__main__":
    main()
