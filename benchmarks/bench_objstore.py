"""Object-storage client libraries on one S3 server: obstore (embfmt's choice) vs boto3, and s3fs
where it is installed (``pip install s3fs``; not in the test extra, see pyproject.toml).

All three talk to the same S3-compatible server process on loopback (moto, tests/s3server.py) in
the same run, operations interleaved (obstore, s3fs, boto3, obstore, ...) so that load from a
neighbour hits each alike; each figure is a median. The server is pure Python and shares the
machine's cores with the clients, so absolute MB/s say little: the ratios are what this measures
(client overhead and how well each overlaps parallel requests). A functional check of
conditional writes (create-if-absent, compare-and-swap, and what a lost race raises) precedes
the timings.

    python benchmarks/bench_objstore.py                  # 1 MiB x 32, 4 KiB x 200, parallel x 64
    python benchmarks/bench_objstore.py --repeat 9 --big 64

CI runs test_bench_objstore_smoke (tiny sizes, nothing timed) with --benchmark-disable.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _timing import interleaved_medians, print_table  # noqa: E402

THREADS = 16  # parallel requests for every client (embfmt's ObjectBatch uses 16 too)


class Clients:
    """One obstore, s3fs and boto3 client on bucket ``bucket`` of ``srv``."""

    def __init__(self, srv: Any, bucket: str) -> None:
        import boto3
        import obstore
        from obstore.store import S3Store

        o = srv.client_options()
        self.bucket = bucket
        self.obs = obstore
        self.ob = S3Store(bucket, endpoint=o["endpoint"], access_key_id=o["access_key_id"],
                          secret_access_key=o["secret_access_key"], region=o["region"],
                          client_options={"allow_http": True, "pool_max_idle_per_host": "64"})
        self.fs = None
        if HAVE_S3FS:
            import s3fs

            self.fs = s3fs.S3FileSystem(key=o["access_key_id"], secret=o["secret_access_key"],
                                        endpoint_url=o["endpoint"], client_kwargs={"region_name": o["region"]},
                                        max_concurrency=THREADS, use_listings_cache=False)
        from botocore.config import Config

        self.bo = boto3.client("s3", endpoint_url=o["endpoint"], aws_access_key_id=o["access_key_id"],
                               aws_secret_access_key=o["secret_access_key"], region_name=o["region"],
                               config=Config(max_pool_connections=THREADS * 2))
        self.pool = ThreadPoolExecutor(THREADS)

    # -- one request at a time ---
    def put_seq(self, lib: str, keys: list[str], data: bytes) -> None:
        for k in keys:
            if lib == "obstore":
                self.obs.put(self.ob, k, data, use_multipart=False)
            elif lib == "s3fs":
                self.fs.pipe_file(f"{self.bucket}/{k}", data)
            else:
                self.bo.put_object(Bucket=self.bucket, Key=k, Body=data)

    def get_seq(self, lib: str, keys: list[str]) -> int:
        n = 0
        for k in keys:
            if lib == "obstore":
                n += len(self.obs.get(self.ob, k).bytes())
            elif lib == "s3fs":
                n += len(self.fs.cat_file(f"{self.bucket}/{k}"))
            else:
                n += len(self.bo.get_object(Bucket=self.bucket, Key=k)["Body"].read())
        return n

    # -- THREADS requests in flight ---
    def put_par(self, lib: str, keys: list[str], data: bytes) -> None:
        if lib == "s3fs":  # its own concurrent batch (asyncio, batch_size = max_concurrency)
            self.fs.pipe({f"{self.bucket}/{k}": data for k in keys}, batch_size=THREADS)
        elif lib == "obstore":
            list(self.pool.map(lambda k: self.obs.put(self.ob, k, data, use_multipart=False), keys))
        else:
            list(self.pool.map(lambda k: self.bo.put_object(Bucket=self.bucket, Key=k, Body=data), keys))

    def get_par(self, lib: str, keys: list[str]) -> int:
        if lib == "s3fs":
            return sum(len(v) for v in self.fs.cat([f"{self.bucket}/{k}" for k in keys], batch_size=THREADS).values())
        if lib == "obstore":
            return sum(self.pool.map(lambda k: len(self.obs.get(self.ob, k).bytes()), keys))
        return sum(self.pool.map(lambda k: len(self.bo.get_object(Bucket=self.bucket, Key=k)["Body"].read()), keys))

    def put_create(self, keys: list[str], data: bytes) -> None:
        """obstore with If-None-Match: * (what ObjectStore.put sends), one at a time."""
        for k in keys:
            self.obs.put(self.ob, k, data, mode="create", use_multipart=False)

    def close(self) -> None:
        self.pool.shutdown()


def conditional_support(c: Clients) -> list[list[str]]:
    """What each client can express, and what a lost race looks like (checked, not read)."""
    import obstore.exceptions as oe

    rows = []
    k = f"cond-{uuid.uuid4().hex}"
    r = c.obs.put(c.ob, k, b"1", mode="create")
    try:
        c.obs.put(c.ob, k, b"2", mode="create")
        create = "NOT ENFORCED"
    except oe.AlreadyExistsError:
        create = "yes: AlreadyExistsError"
    e2 = c.obs.put(c.ob, k, b"2", mode={"e_tag": r["e_tag"]})["e_tag"]
    try:
        c.obs.put(c.ob, k, b"3", mode={"e_tag": r["e_tag"]})
        cas = "NOT ENFORCED"
    except oe.PreconditionError:
        cas = "yes: PreconditionError"
    assert e2
    rows.append(["obstore", create, cas, "S3, GCS, Azure, memory (file: create only)"])

    k = f"cond-{uuid.uuid4().hex}"
    if c.fs is None:
        return _boto3_conditional(c, rows)
    c.fs.pipe_file(f"{c.bucket}/{k}", b"1", mode="create")
    try:
        c.fs.pipe_file(f"{c.bucket}/{k}", b"2", mode="create")
        create = "NOT ENFORCED"
    except FileExistsError:
        create = "yes: FileExistsError"
    except OSError as e:
        create = f"yes: {type(e).__name__}"
    rows.append(["s3fs", create, "no (If-Match only through its raw aiobotocore client)", "S3"])
    return _boto3_conditional(c, rows)


def _boto3_conditional(c: Clients, rows: list[list[str]]) -> list[list[str]]:
    import botocore.exceptions

    k = f"cond-{uuid.uuid4().hex}"
    et = c.bo.put_object(Bucket=c.bucket, Key=k, Body=b"1", IfNoneMatch="*")["ETag"]
    try:
        c.bo.put_object(Bucket=c.bucket, Key=k, Body=b"2", IfNoneMatch="*")
        create = "NOT ENFORCED"
    except botocore.exceptions.ClientError as e:
        create = f"yes: ClientError {e.response['Error']['Code']}"
    c.bo.put_object(Bucket=c.bucket, Key=k, Body=b"2", IfMatch=et)
    try:
        c.bo.put_object(Bucket=c.bucket, Key=k, Body=b"3", IfMatch=et)
        cas = "NOT ENFORCED"
    except botocore.exceptions.ClientError as e:
        cas = f"yes: ClientError {e.response['Error']['Code']}"
    rows.append(["boto3", create, cas, "S3"])
    return rows


# s3fs is not in the test extra (its aiobotocore pins botocore, see pyproject.toml): measured
# when installed (pip install s3fs), left out of the table otherwise
HAVE_S3FS = importlib.util.find_spec("s3fs") is not None
LIBS = ("obstore", "s3fs", "boto3") if HAVE_S3FS else ("obstore", "boto3")


def run(big: int = 32, small: int = 200, par: int = 64, repeat: int = 5) -> tuple[list[list[str]], list[list[str]]]:
    """Timings (MB/s per library and the ratios of obstore to the others) and the conditional-
    write table."""
    from tests.s3server import S3Server

    srv = S3Server()
    try:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        srv.create_bucket(bucket)
        c = Clients(srv, bucket)
        cond = conditional_support(c)
        mib, kib4 = os.urandom(1 << 20), os.urandom(4096)
        fresh: dict[str, int] = {}

        def keys(tag: str, n: int) -> list[str]:  # new keys for every put run (no overwrites)
            fresh[tag] = fresh.get(tag, 0) + 1
            return [f"{tag}/{fresh[tag]}/{i}" for i in range(n)]

        # objects the get runs read, written once
        big_keys, small_keys, par_keys = keys("rb", big), keys("rs", small), keys("rp", par)
        c.put_par("obstore", big_keys, mib)
        c.put_par("obstore", small_keys, kib4)
        c.put_par("obstore", par_keys, mib)

        cases: list[tuple[str, int, Callable[[str], Any]]] = [
            ("put 1 MiB, sequential", big << 20, lambda lib: c.put_seq(lib, keys(f"p1{lib}", big), mib)),
            ("get 1 MiB, sequential", big << 20, lambda lib: c.get_seq(lib, big_keys)),
            ("put 4 KiB, sequential", small * 4096, lambda lib: c.put_seq(lib, keys(f"p4{lib}", small), kib4)),
            ("get 4 KiB, sequential", small * 4096, lambda lib: c.get_seq(lib, small_keys)),
            (f"put 1 MiB, {THREADS} in flight", par << 20, lambda lib: c.put_par(lib, keys(f"pp{lib}", par), mib)),
            (f"get 1 MiB, {THREADS} in flight", par << 20, lambda lib: c.get_par(lib, par_keys)),
        ]
        rows = []
        for name, nbytes, fn in cases:
            t = interleaved_medians({lib: (lambda lib=lib: fn(lib)) for lib in LIBS}, repeat=repeat)
            rate = {lib: nbytes / t[lib] / 1e6 for lib in LIBS}
            per = small if "4 KiB" in name else None
            cells = [f"{rate[lib]:.1f}" + (f" ({per / t[lib]:.0f}/s)" if per else "") for lib in LIBS]
            rows.append([name, *cells, *(f"{t[lib] / t['obstore']:.2f}" for lib in LIBS[1:])])
        t = interleaved_medians({"plain": lambda: c.put_seq("obstore", keys("pc", small), kib4),
                                 "create": lambda: c.put_create(keys("pcc", small), kib4)}, repeat=repeat)
        pad = [""] * (len(LIBS) - 1)
        rows.append(["obstore put 4 KiB If-None-Match:* vs plain", f"{small / t['create']:.0f}/s", *pad,
                     f"{t['plain'] / t['create']:.2f} (vs plain)", *pad[1:]])
        # embfmt's own write path (ObjectStore.batch: a copy of each buffer, If-None-Match, 16 in
        # flight) against the library's plain parallel put of the same objects
        from embfmt.store import ObjectStore

        st = ObjectStore(f"s3://{bucket}/batch", srv.client_options())

        def batch_put() -> None:
            fresh["b"] = fresh.get("b", 0) + 1
            b = st.batch()
            for i in range(par):  # distinct ids per run: every put creates
                b.put((b"%08d%08d" % (fresh["b"], i)).ljust(32, b"\0"), mib)
            b.sync()

        t = interleaved_medians({"plain": lambda: c.put_par("obstore", keys("pb", par), mib), "batch": batch_put},
                                repeat=repeat)
        rows.append([f"ObjectStore.batch put 1 MiB x {par} vs obstore parallel put",
                     f"{(par << 20) / t['batch'] / 1e6:.1f}", *pad, f"{t['plain'] / t['batch']:.2f} (vs obstore)",
                     *pad[1:]])
        c.close()
        return rows, cond
    finally:
        srv.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=32, help="1 MiB objects per sequential run")
    ap.add_argument("--small", type=int, default=200, help="4 KiB objects per run")
    ap.add_argument("--par", type=int, default=64, help="1 MiB objects per parallel run")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rows, cond = run(a.big, a.small, a.par, a.repeat)
    print_table("Conditional writes on the loopback S3 server (moto 5.2.5, writes serialized: tests/s3server.py)",
                ["client", "create if absent (If-None-Match: *)", "compare-and-swap (If-Match)", "backends"], cond)
    print()
    print_table(f"Throughput, MB/s (median of {a.repeat}, interleaved), same server, same run",
                ["what", *LIBS, *(f"obstore / {lib} (x faster)" for lib in LIBS[1:])], rows)


def test_bench_objstore_smoke() -> None:
    import pytest

    for mod in ("obstore", "boto3", "moto"):
        pytest.importorskip(mod, reason="bench_objstore needs the test extra: pip install -e '.[test]'")
    rows, cond = run(big=2, small=4, par=4, repeat=1)
    assert len(rows) == 8
    assert all("NOT ENFORCED" not in cell for r in cond for cell in r)


if __name__ == "__main__":
    main()
