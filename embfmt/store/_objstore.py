"""A Store on object storage (``s3://``, ``gs://``, ``az://``, ``memory://``, ``file://``) through
obstore, the Python bindings of Rust's ``object_store`` crate (spec/objstore-v1.md).

Why obstore (measured in benchmarks/bench_objstore.py, same loopback S3 server, same run): it
is the one client whose conditional writes are first-class (``PutMode`` ``"create"`` sends
``If-None-Match: *``, ``{"e_tag": ...}`` sends ``If-Match``, and a lost race is a typed
``AlreadyExistsError``/``PreconditionError``), for S3, GCS, Azure and memory alike; s3fs has
``If-None-Match`` only, boto3 both but S3 only. Its requests run in Rust without the GIL, so
parallel puts overlap on threads. Figures: benchmarks/README.md "Object storage".

Layout under the URL's prefix (the same names as a local repository, spec/objstore-v1.md §2):
objects are ``objects/<2 hex>/<62 hex>``. This module also has the conditional primitives that
refs, HEAD and leases need (:meth:`ObjectStore.read_key`, :meth:`~ObjectStore.create_key`,
:meth:`~ObjectStore.swap_key`, :meth:`~ObjectStore.delete_key`, :meth:`~ObjectStore.list_keys`).

Credentials come from ``storage_options`` or the environment (``AWS_*``, ``GOOGLE_*``,
``AZURE_*``, read by obstore). They are never written anywhere by embfmt; a URL carrying one
(``s3://KEY:SECRET@bucket``, or any query string) is refused, and every error message has
the secrets it could contain replaced by ``***``.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .. import _layout as L
from ..errors import ConflictError, EmbfmtError, ErrorKind, FormatError, InputError, NotFoundError, StorageError
from .abc import Store, WriteBatch

__all__ = ["ObjectStore", "ObjectBatch", "VersionedBytes", "redact", "check_url", "SCHEMES"]

#: URL schemes an :class:`ObjectStore` opens
SCHEMES = frozenset({"s3", "s3a", "gs", "az", "abfs", "abfss", "memory", "file"})

# storage_options keys that are HTTP-client settings in obstore, not store configuration
_CLIENT_KEYS = frozenset({"allow_http", "allow_invalid_certificates", "connect_timeout", "timeout",
                          "proxy_url", "user_agent", "pool_idle_timeout", "http1_only", "http2_only"})
# storage_options keys whose values are secrets (lower case; obstore also takes aws_-prefixed names)
_SECRET_KEYS = re.compile(r"(secret|token|password|key_id|access_key|account_key|sas|credential|signature)",
                          re.IGNORECASE)
# secrets that may show in a library's message whatever the options held: presigned query
# parameters and authorization headers
_SECRET_PATTERNS = [
    re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"((?:Authorization|x-amz-security-token)\s*[:=]\s*)[^\r\n\"'}]+", re.IGNORECASE),
    re.compile(r"(\b(?:Signature|Credential)=)[^&\s\"',]+"),
    re.compile(r"(//)[^/@\s:]+:[^/@\s]+@"),  # user:password@ in a URL
]

#: one store per memory:// URL in this process, so that every open of it sees the same objects
_MEMORY: dict[str, Any] = {}
_MEMORY_LOCK = threading.Lock()

# parallel requests of one batch; requests release the GIL (Rust), so threads overlap them
PUT_CONCURRENCY = 16


class VersionedBytes:
    """The bytes of a key and the version they were read at (its ETag): what a
    compare-and-swap (:meth:`ObjectStore.swap_key`) is conditioned on."""

    __slots__ = ("data", "etag")

    def __init__(self, data: bytes, etag: str) -> None:
        self.data = data
        self.etag = etag

    def __repr__(self) -> str:
        return f"VersionedBytes({len(self.data)} bytes, etag={self.etag!r})"


def check_url(url: str) -> str:
    """``url`` if an :class:`ObjectStore` may open it: a known scheme and no credentials in it.
    A URL with a user, password or query string is refused (``credentials-in-url``) and named
    redacted in the message: secrets belong in ``storage_options`` or the environment, never in
    a URL, which ends up in shell history, logs and the repository's own config."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InputError(f"{redact(url)} is not an object-storage URL (schemes: "
                         f"{', '.join(sorted(SCHEMES))})", ErrorKind.NOT_A_REPOSITORY)
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise InputError(f"{_strip_secret(url)}: a storage URL must not carry credentials "
                         "(user:secret@, a query string); pass them in storage_options or the "
                         "environment (AWS_ACCESS_KEY_ID, ...)", ErrorKind.CREDENTIALS_IN_URL)
    if scheme != "memory" and scheme != "file" and not parts.netloc:
        raise InputError(f"{url} names no bucket or container", ErrorKind.BAD_ARGUMENT)
    return url


def _strip_secret(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://***@{host}{parts.path}" if "@" in parts.netloc else f"{parts.scheme}://{host}{parts.path}"


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with each of ``secrets`` and anything shaped like a credential (a presigned URL's
    signature, an authorization header, ``user:password@`` in a URL) replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "***" + ("@" if m.group(0).endswith("@") else ""), text)
    return text


def _secrets_of(opts: Mapping[str, Any]) -> tuple[str, ...]:
    """The secret values a message could show: those of ``opts`` and of the environment
    variables the cloud SDKs and obstore read credentials from."""
    found = [str(v) for k, v in opts.items() if _SECRET_KEYS.search(k) and v]
    found += [v for k, v in os.environ.items()
              if k.startswith(("AWS_", "GOOGLE_", "AZURE_")) and _SECRET_KEYS.search(k) and v]
    return tuple(sorted(set(found), key=len, reverse=True))  # longest first: no partial leftovers


def _one_line(text: str) -> str:
    """The first line of a library message (obstore appends a multi-line debug dump)."""
    return text.strip().splitlines()[0] if text.strip() else text


class ObjectStore(Store):
    """Immutable blobs by content id on object storage; see the module docstring.

    Parameters
    ----------
    url
        ``s3://bucket/prefix`` (any S3-compatible endpoint through ``storage_options``
        ``endpoint`` or ``AWS_ENDPOINT_URL``), ``gs://bucket/prefix``, ``az://container/prefix``,
        ``memory://name`` (one store per name in this process) or ``file:///path``.
    storage_options
        obstore configuration (``endpoint``, ``region``, ``access_key_id``,
        ``secret_access_key``, ...) and HTTP-client options (``allow_http``, ``timeout``, ...).
        Never stored by embfmt; secrets in them are redacted from every message.
    """

    #: a put is atomic on every object store (a single PUT: whole or absent)
    atomic_put = True
    #: an object's age cannot be refreshed without rewriting it (spec/objstore-v1.md §6)
    touch_refreshes = False

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None, *,
                 retries: int | None = None) -> None:
        self.url = check_url(url)
        opts = dict(storage_options or {})
        self._secrets = _secrets_of(opts)
        self._store = _open(self.url, opts, retries)
        self.scheme = urlsplit(url).scheme.lower()
        #: whether :meth:`swap_key` works here (If-Match); obstore's local file system has
        #: create-if-absent only, so refs cannot move by compare-and-swap there (spec §5)
        self.supports_cas = self.scheme != "file"
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        #: the write leases this store's writers hold in this process (ObjectLease adds and
        #: removes itself): a batch names the objects it reuses in them (spec §6)
        self.live_leases: weakref.WeakSet[Any] = weakref.WeakSet()
        self._reused: set[bytes] = set()  # touched since the last flush_reuses
        self._collection: tuple[Any, set[bytes]] | None = None  # begin_collection
        self._reused_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # -- errors -------------------------------------------------------------------------------
    def _fail(self, e: BaseException, what: str) -> NoReturn:
        """Raise the embfmt error for obstore error ``e`` raised while doing ``what``; its
        message is one line, redacted."""
        import obstore.exceptions as oe

        if isinstance(e, EmbfmtError):
            raise e
        msg = redact(_one_line(str(e)), self._secrets)
        where = redact(self.url)
        if "NoSuchBucket" in str(e):
            raise NotFoundError(f"{what}: the bucket of {where} does not exist", ErrorKind.NOT_FOUND) from None
        if isinstance(e, FileNotFoundError):
            raise NotFoundError(f"{what}: not found in {where}", ErrorKind.NOT_FOUND) from None
        if isinstance(e, (oe.PermissionDeniedError, oe.UnauthenticatedError)) or re.search(
                r"\b(401|403)\b|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch", str(e)):
            raise StorageError(f"{what}: access to {where} denied (check the credentials): {msg}",
                               ErrorKind.ACCESS_DENIED) from None
        if isinstance(e, NotImplementedError) or isinstance(e, oe.NotSupportedError):
            raise StorageError(f"{what}: not supported by {where}: {msg}", ErrorKind.UNSUPPORTED_BY_STORE) from None
        raise StorageError(f"{what}: {where} could not be reached or failed: {msg}",
                           ErrorKind.STORAGE_UNAVAILABLE) from None

    # -- keys ---------------------------------------------------------------------------------
    @staticmethod
    def key(oid: bytes) -> str:
        """The key of object ``oid`` under the store's prefix."""
        h = oid.hex()
        return f"objects/{h[:2]}/{h[2:]}"

    def _head(self, key: str) -> dict[str, Any] | None:
        import obstore

        try:
            return dict(obstore.head(self._store, key))
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                self._fail(e, f"key {key}")
            return None
        except Exception as e:  # noqa: BLE001 - mapped to a typed error
            self._fail(e, f"key {key}")

    def _get(self, key: str, limit: int, what: str) -> tuple[bytes, str]:
        """The bytes (at most ``limit``, refused from the response's headers before the body is
        read) and ETag of ``key``."""
        import obstore

        try:
            r = obstore.get(self._store, key)
            size = int(r.meta["size"])
            if size > limit:  # the body is not read: nothing of its size is allocated
                raise FormatError(f"{what} is {size} bytes, more than its limit of {limit}", ErrorKind.BAD_OBJECT)
            parts, n = [], 0
            for buf in r.stream(min_chunk_size=1 << 20):
                n += len(buf)
                if n > limit:  # a server that sends more than it announced
                    raise FormatError(f"{what} is more than its limit of {limit} bytes", ErrorKind.BAD_OBJECT)
                parts.append(bytes(buf))
            return (parts[0] if len(parts) == 1 else b"".join(parts)), str(r.meta.get("e_tag") or "")
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                self._fail(e, what)
            raise NotFoundError(f"{what} is missing from {redact(self.url)}", ErrorKind.NOT_FOUND) from None
        except Exception as e:  # noqa: BLE001
            self._fail(e, what)

    # -- Store --------------------------------------------------------------------------------
    def get(self, oid: bytes, max_size: int | None = None) -> bytes:
        return self._get(self.key(oid), L.MAX_OBJECT_BYTES if max_size is None else max_size,
                         f"object {oid.hex()}")[0]

    def get_range(self, oid: bytes, offset: int, length: int) -> bytes:
        import obstore

        if length <= 0:
            return b""
        try:
            return bytes(obstore.get_range(self._store, self.key(oid), start=offset, length=length))
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                self._fail(e, f"object {oid.hex()}")
            raise NotFoundError(f"object {oid.hex()} is missing from {redact(self.url)}") from None
        except Exception as e:  # noqa: BLE001
            # a range that starts at or past the end: object_store refuses it; the contract
            # (as a pread) is "fewer bytes"
            if offset >= self.size(oid):
                return b""
            self._fail(e, f"object {oid.hex()}")

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        """Create the object if absent (``If-None-Match: *``): an existing object is never
        rewritten, whoever won a race; returns whether this call created it."""
        return self._create(self.key(oid), data, f"object {oid.hex()}")

    def _create(self, key: str, data: bytes | memoryview | list[bytes | memoryview], what: str) -> bool:
        import obstore
        import obstore.exceptions as oe

        body = b"".join(memoryview(x).cast("B") for x in data) if isinstance(data, (list, tuple)) else data
        try:
            obstore.put(self._store, key, body, mode="create", use_multipart=False)
            return True
        except oe.AlreadyExistsError:
            return False
        except Exception as e:  # noqa: BLE001
            self._fail(e, what)

    def has(self, oid: bytes) -> bool:
        return self._head(self.key(oid)) is not None

    def size(self, oid: bytes) -> int:
        meta = self._head(self.key(oid))
        if meta is None:
            raise NotFoundError(f"object {oid.hex()} is missing from {redact(self.url)}")
        return int(meta["size"])

    def mtime(self, oid: bytes) -> float:
        """The object's Last-Modified (the server's clock; S3 gives whole seconds)."""
        meta = self._head(self.key(oid))
        return 0.0 if meta is None else float(meta["last_modified"].timestamp())

    def touch(self, oid: bytes) -> bool:
        """Whether ``oid`` is stored. Object storage has no way to refresh an object's age short
        of rewriting it, so this refreshes nothing: the id is recorded, and
        :meth:`flush_reuses` (run by a batch's ``sync`` and before every ref move) names it in the
        live write leases, which gc honours (spec/objstore-v1.md §6)."""
        ok = self.has(oid)
        if ok and len(self.live_leases):
            with self._reused_lock:
                self._reused.add(oid)
        return ok

    def flush_reuses(self) -> None:
        """Protect every object touched since the last call, before anything references it:
        name them in each write lease of this store live in this process, wait while a
        collector runs, then check each is still stored; :class:`ConflictError` when one was
        collected meanwhile (the caller moves no ref). spec/objstore-v1.md §6, steps 1-3."""
        with self._reused_lock:
            reused, self._reused = self._reused, set()
        leases = list(self.live_leases)
        if not reused or not leases:
            return
        for lease in leases:
            lease.protect(reused)
        gone = sorted(o.hex() for o in reused if not self.has(o))
        if gone:
            raise ConflictError(f"{len(gone)} object(s) reused by this change were removed by a garbage "
                                f"collection meanwhile (first {gone[0]}); nothing was committed, retry",
                                ErrorKind.CONFLICT)

    def delete(self, oid: bytes) -> int:
        meta = self._head(self.key(oid))
        if meta is None:
            return 0
        self.delete_key(self.key(oid))
        return int(meta["size"])

    def begin_collection(self, marker: Any, protected: set[bytes]) -> None:
        """A collector's marker (``GcMarker``) and the ids live leases protect, held until
        :meth:`sync_deletions` ends the collection: :meth:`delete_if_older` keeps those ids and
        checks the marker is still fresh before each deletion (spec/objstore-v1.md §6)."""
        self.end_collection()
        self._collection = (marker, set(protected))

    def end_collection(self) -> None:
        got, self._collection = self._collection, None
        if got is not None:
            got[0].release()

    def sync_deletions(self, oids: list[bytes]) -> None:
        """Deletions are durable when acknowledged; the collection they belong to ends here."""
        self.end_collection()

    def delete_if_older(self, oid: bytes, cutoff: float) -> int:
        """Remove ``oid`` if its Last-Modified is at most ``cutoff`` and no live lease protects
        it. Not atomic with a writer's reuse of the object (there is no touch to interleave
        with): on object storage gc keeps what live leases name instead (spec/objstore-v1.md §6)."""
        if self._collection is not None:
            marker, protected = self._collection
            marker.check()  # stop before deleting once writers may take the marker for stale
            if oid in protected:
                return 0
        meta = self._head(self.key(oid))
        if meta is None or meta["last_modified"].timestamp() > cutoff:
            return 0
        self.delete_key(self.key(oid))
        return int(meta["size"])

    def iter(self) -> Iterator[bytes]:
        for key in self.list_keys("objects/"):
            rest = key[len("objects/"):]
            if len(rest) == 65 and rest[2] == "/":
                try:
                    yield bytes.fromhex(rest[:2] + rest[3:])
                except ValueError:
                    continue

    def batch(self) -> ObjectBatch:
        return ObjectBatch(self)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(PUT_CONCURRENCY, thread_name_prefix="embfmt-objstore")
            return self._pool

    # -- conditional primitives (refs, HEAD, leases) --------------------------------------------
    def read_key(self, key: str, max_size: int) -> VersionedBytes | None:
        """The bytes and ETag of ``key`` (at most ``max_size`` bytes, else ``bad-object``), or
        None when it does not exist."""
        try:
            data, etag = self._get(key, max_size, f"key {key}")
        except NotFoundError as e:
            if "bucket" in e.message:
                raise
            return None
        return VersionedBytes(data, etag)

    def create_key(self, key: str, data: bytes) -> str:
        """Create ``key`` only if it does not exist (``If-None-Match: *``); returns its ETag.
        Raises :class:`ConflictError` (``ref-exists``) when it does, whoever created it."""
        import obstore
        import obstore.exceptions as oe

        try:
            return str(obstore.put(self._store, key, data, mode="create", use_multipart=False)["e_tag"] or "")
        except oe.AlreadyExistsError:
            raise ConflictError(f"{key} already exists in {redact(self.url)}", ErrorKind.REF_EXISTS) from None
        except Exception as e:  # noqa: BLE001
            self._fail(e, f"create {key}")

    def swap_key(self, key: str, data: bytes, etag: str) -> str:
        """Replace ``key`` only if it still has ETag ``etag`` (``If-Match``); returns the new
        ETag. Raises :class:`ConflictError` (``conflict``) when another writer moved it (or
        removed it) since it was read: the caller re-reads and decides again."""
        import obstore
        import obstore.exceptions as oe

        if not self.supports_cas:
            raise StorageError(f"{redact(self.url)} has no compare-and-swap (If-Match); refs "
                               "cannot move safely there", ErrorKind.UNSUPPORTED_BY_STORE)
        try:
            return str(obstore.put(self._store, key, data, mode={"e_tag": etag}, use_multipart=False)["e_tag"] or "")
        except (oe.PreconditionError, oe.AlreadyExistsError):
            raise ConflictError(f"{key} in {redact(self.url)} changed since it was read (lost a race "
                                "with another writer)", ErrorKind.CONFLICT) from None
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                self._fail(e, f"update {key}")
            raise ConflictError(f"{key} in {redact(self.url)} was removed since it was read",
                                ErrorKind.CONFLICT) from None
        except Exception as e:  # noqa: BLE001
            self._fail(e, f"update {key}")

    def put_key(self, key: str, data: bytes) -> str:
        """Write ``key`` unconditionally (last writer wins); for keys only one writer owns (its
        own lease). Returns the ETag."""
        import obstore

        try:
            return str(obstore.put(self._store, key, data, use_multipart=False)["e_tag"] or "")
        except Exception as e:  # noqa: BLE001
            self._fail(e, f"write {key}")

    def delete_key(self, key: str) -> None:
        """Remove ``key`` (absent: nothing to do)."""
        import obstore

        try:
            obstore.delete(self._store, key)
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                self._fail(e, f"delete {key}")
        except Exception as e:  # noqa: BLE001
            self._fail(e, f"delete {key}")

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key starting with ``prefix`` (relative to the store's prefix), in no order."""
        import obstore

        # object_store lists by whole path segments: list the folder, keep the string prefix
        folder = prefix.rpartition("/")[0]
        try:
            for chunk in obstore.list(self._store, prefix=folder or None, chunk_size=1000):
                for meta in chunk:
                    if str(meta["path"]).startswith(prefix):
                        yield str(meta["path"])
        except Exception as e:  # noqa: BLE001
            if isinstance(e, FileNotFoundError) and "NoSuchBucket" not in str(e):
                return  # a local directory that does not exist yet: no keys
            self._fail(e, f"list {prefix}")

    def key_mtime(self, key: str) -> float | None:
        """``key``'s Last-Modified (server clock), or None when absent."""
        meta = self._head(key)
        return None if meta is None else float(meta["last_modified"].timestamp())


class ObjectBatch(WriteBatch):
    """The objects of one commit, put in parallel (up to ``PUT_CONCURRENCY`` requests in
    flight). A put is durable when the server acknowledges it.

    Objects the commit reuses (``touch``) cannot be refreshed on object storage; :meth:`sync`,
    which runs before the commit's ref move, protects them through the write leases
    (:meth:`ObjectStore.flush_reuses`) and fails with :class:`ConflictError`, no ref moved, when
    one was collected meanwhile."""

    def __init__(self, store: ObjectStore) -> None:
        super().__init__(store)
        self.store: ObjectStore = store
        self._futures: list[Future[bool]] = []
        self._lock = threading.Lock()
        self._sem = threading.BoundedSemaphore(PUT_CONCURRENCY * 2)  # bounds the bytes held

    def put(self, oid: bytes, data: bytes | memoryview | list[bytes | memoryview]) -> bool:
        # The caller may reuse its buffers after put returns: keep a copy of them in flight.
        body = b"".join(memoryview(x).cast("B") for x in data) if isinstance(data, (list, tuple)) else bytes(data)
        self._sem.acquire()

        def run() -> bool:
            try:
                wrote = self.store.put(oid, body)
                if wrote:
                    with self._lock:
                        self.published.append(oid)
                return wrote
            finally:
                self._sem.release()

        try:
            fut = self.store._executor().submit(run)
        except BaseException:
            self._sem.release()
            raise
        with self._lock:
            self._futures.append(fut)
        return True  # written or not is known after wait(); a commit only needs it stored

    def wait(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        error: BaseException | None = None
        for f in futures:  # wait for all, then raise the first failure
            try:
                f.result()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                error = error or e
        if error is not None:
            raise error

    def sync(self) -> None:
        self.wait()
        self.store.flush_reuses()

    def abandon(self) -> None:
        with self._lock:
            futures, self._futures = self._futures, []
        for f in futures:
            try:
                f.result()
            except BaseException:  # noqa: BLE001 - the commit already failed
                pass


def _open(url: str, opts: dict[str, Any], retries: int | None) -> Any:
    try:
        import obstore.store as os_
    except ImportError:
        raise InputError("object-storage URLs need obstore: pip install 'embfmt[s3]'",
                         ErrorKind.MISSING_EXTRA) from None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        name = parts.netloc + parts.path
        with _MEMORY_LOCK:
            if name not in _MEMORY:
                _MEMORY[name] = os_.MemoryStore()
            return _MEMORY[name]
    if scheme == "file":
        return os_.LocalStore(parts.path, mkdir=True)
    client = {k: str(v).lower() if isinstance(v, bool) else v for k, v in opts.items() if k in _CLIENT_KEYS}
    config = {k: v for k, v in opts.items() if k not in _CLIENT_KEYS}
    retry: dict[str, Any] | None = None
    if retries is not None:
        retry = {"max_retries": retries, "retry_timeout": timedelta(seconds=max(1, 3 * retries))}
    try:
        # The options are the caller's mapping, typed by scheme in obstore's stubs (S3Config,
        # GCSConfig, ...) and validated by obstore itself here, so the call is checked at run time.
        open_url: Callable[..., Any] = os_.from_url
        return open_url(url, config=config or None, client_options=client or None, retry_config=retry)
    except Exception as e:  # noqa: BLE001 - a bad option or URL; never shows a secret
        secrets = _secrets_of(opts)
        raise InputError(f"cannot open {redact(url)}: {redact(_one_line(str(e)), secrets)}",
                         ErrorKind.BAD_ARGUMENT) from None

