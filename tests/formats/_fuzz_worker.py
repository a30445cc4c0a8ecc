"""Fuzz worker for test_hostile_headers.py (run as a script: ``python _fuzz_worker.py DIR N``).

Writes one valid file of every format (12 x 4 float32 rows with string keys), then N seeded
mutations of each: bit flips, truncation, byte overwrites, 8-byte integers planted at random
offsets, insertions and deletions. Each mutated file is read in full (rows and keys); a typed
error is fine. Any other exception is printed as one JSON line; a crash ends the process with
a signal, and the last "case" line on stderr names the case.
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys
import traceback

import numpy as np

EXT = {"npy": ".npy", "safetensors": ".safetensors", "hdf5": ".h5", "parquet": ".parquet",
       "arrow": ".arrow", "vec": ".vec", "bin": ".bin", "glove": ".txt"}


def seeds(work: str) -> dict[str, bytes]:
    import h5py

    from embfmt import formats

    x = np.arange(48, dtype=np.float32).reshape(12, 4) / 7
    keys = [f"w{i}" for i in range(12)]
    out = {}
    for fmt, ext in EXT.items():
        p = os.path.join(work, f"seed_{fmt}{ext}")
        if fmt == "hdf5":
            with h5py.File(p, "w") as f:
                f.create_dataset("embeddings", data=x, chunks=(4, 4), compression="gzip")
        elif fmt == "glove":
            formats.write(p, x, keys=keys, fmt="glove")
        else:
            formats.write(p, x, keys=keys)
        with open(p, "rb") as f:
            out[fmt] = f.read()
    return out


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.randrange(6)
    if op == 0:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        b = b[:rng.randrange(len(b))]
    elif op == 2:
        b[rng.randrange(len(b))] = rng.choice([0, 0xFF, 0x7F, 0x80, ord("9"), ord("-")])
    elif op == 3 and len(b) > 8:
        i = rng.randrange(len(b) - 8)
        b[i:i + 8] = struct.pack("<q", rng.choice([-1, 2**62, 2**31, 2**63 - 1, -2**31, 2**40]))
    elif op == 4:
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        i = rng.randrange(len(b))
        del b[i:min(len(b), i + rng.randint(1, 32))]
    return bytes(b)


def main() -> int:
    from embfmt.errors import EmbfmtError
    from embfmt.formats import read

    work, n = sys.argv[1], int(sys.argv[2])
    sd = seeds(work)
    done = 0
    for fmt, ext in EXT.items():
        for i in range(n):
            rng = random.Random(f"{fmt}-{i}")
            data = sd[fmt]
            for _ in range(rng.randint(1, 3)):
                data = mutate(rng, data) if data else data
            p = os.path.join(work, f"case{ext}")
            with open(p, "wb") as f:
                f.write(data)
            sys.stderr.write(f"case {fmt} {i}\n")
            sys.stderr.flush()
            try:
                with read(p, fmt="glove" if fmt == "glove" else None) as src:
                    for _ in src.matrix.blocks():
                        pass
                    _ = src.keys
            except EmbfmtError:
                pass
            except Exception as e:  # noqa: BLE001 - reporting exactly these is the point
                where = [f"{t.filename}:{t.lineno}" for t in traceback.extract_tb(e.__traceback__)]
                print(json.dumps({"fmt": fmt, "case": i, "exception": type(e).__name__,
                                  "message": str(e)[:200], "where": where[-3:]}), flush=True)
            done += 1
    print(f"cases {done}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
