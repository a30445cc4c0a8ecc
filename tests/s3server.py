"""A real S3-compatible HTTP server on loopback for the tests and benchmarks: moto's S3 service,
run as its own process (never an in-process mock of the S3 API).

    python tests/s3server.py [PORT [SWITCH_INTERVAL [SERIALIZE]]]
        # prints "PORT <n>" once it listens (PORT 0: a free one), serves until killed

Why not moto's own ``moto_server``: moto 5.2.5 checks ``If-None-Match: *`` and ``If-Match`` on
PutObject, DeleteObject and CompleteMultipartUpload (412 Precondition Failed when they do not
hold), but the check and the write are two steps of a threaded request handler with nothing
between them: two racing conditional PUTs can both pass the check and both return 200. Measured
with ``sys.setswitchinterval(1e-6)`` (8 threads per round): 3 of 150 create rounds and 2 of 150
compare-and-swap rounds had two winners; with the default interval it is rarer, never
impossible. Real S3 (and the spec, spec/objstore-v1.md) require the two to be atomic. So this
launcher serves moto's application behind one lock taken by every mutating request (PUT, POST,
DELETE) once its body has been received: each write's check and write happen as one step, reads
stay concurrent, and uploads still travel in parallel.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

MUTATING = frozenset({"PUT", "POST", "DELETE"})


class SerializedWrites:
    """WSGI middleware: a mutating request's body is read first, then the application handles
    it under one lock, so its precondition check and its write are atomic."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in MUTATING:
            return self.app(environ, start_response)
        from werkzeug.wsgi import get_input_stream

        body = get_input_stream(environ).read()  # received outside the lock: uploads overlap
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input_terminated"] = False
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        with self.lock:
            # the response is produced inside the lock too (moto builds it eagerly)
            return list(self.app(environ, start_response))


def serve(host: str = "127.0.0.1", port: int = 0, serialize: bool = True) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    srv = make_server(host, port, SerializedWrites(app) if serialize else app, threaded=True, request_handler=MotoRequestHandler)
    print(f"PORT {srv.server_port}", flush=True)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


class S3Server:
    """The server as a child process on a free loopback port: ``endpoint`` is its URL."""

    def __init__(self, *, switch_interval: float | None = None, serialize: bool = True,
                 check_credentials: bool = False) -> None:
        """``switch_interval``: the server's ``sys.setswitchinterval`` (tiny values make a
        racy server lose races often, see the module docstring); ``serialize=False`` serves
        moto without the write lock (to show that it needs one); ``check_credentials``: moto
        verifies every request's access key against its IAM users (there are none: every
        request is refused with 403 InvalidAccessKeyId)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # never real ones
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        if check_credentials:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        args = [sys.executable, __file__, "0", str(switch_interval or 0), "1" if serialize else "0"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"the S3 test server did not start (said {line!r})")
        self.port = int(m.group(1))
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client_options(self) -> dict[str, str]:
        """``storage_options`` for embfmt's object store and obstore's S3Store."""
        return {"endpoint": self.endpoint, "access_key_id": "testing", "secret_access_key": "testing",
                "region": "us-east-1", "allow_http": "true"}

    def create_bucket(self, name: str) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(req, timeout=30) as r:  # moto accepts unsigned requests
            r.read()

    def remove_bucket(self, name: str) -> None:
        """Delete every object of bucket ``name``, then the bucket (moto keeps them in memory)."""
        import obstore
        from obstore.store import S3Store

        o = self.client_options()
        st = S3Store(name, endpoint=o["endpoint"], access_key_id=o["access_key_id"],
                     secret_access_key=o["secret_access_key"], region=o["region"],
                     client_options={"allow_http": True})
        for chunk in obstore.list(st, chunk_size=1000):
            obstore.delete(st, [m["path"] for m in chunk])
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/{name}", method="DELETE")
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


if __name__ == "__main__":
    argv = sys.argv[1:] + ["0", "0", "1"][len(sys.argv) - 1:]
    if float(argv[1]):
        sys.setswitchinterval(float(argv[1]))
    serve(port=int(argv[0]), serialize=argv[2] == "1")
