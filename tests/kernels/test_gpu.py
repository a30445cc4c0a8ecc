"""The CuPy kernels on a device, bit for bit against the oracle, xxhash and blake3
(marker ``gpu``: skipped visibly without CuPy and a CUDA device)."""

from __future__ import annotations

import blake3
import numpy as np
import pytest
import xxhash

from embfmt._kernels import reference

pytestmark = pytest.mark.gpu

LENGTHS = [0, 1, 3, 4, 8, 9, 16, 17, 64, 128, 129, 240, 241, 512, 1024, 1025, 4100]


@pytest.fixture(scope="module")
def gpu():  # type: ignore[no-untyped-def]
    from embfmt._kernels import gpu as g

    return g


@pytest.mark.parametrize("length", LENGTHS)
def test_rowprints(gpu, length):
    rows = np.random.default_rng(length).integers(0, 256, (257, length), dtype=np.uint8)
    got = gpu.rowprints(rows)
    assert np.array_equal(got, reference.rowprints(rows))
    assert [int(v) for v in got] == [xxhash.xxh3_64_intdigest(r.tobytes()) for r in rows]


@pytest.mark.parametrize("n, length, chunk_rows", [(0, 8, 4), (1, 8, 4), (1000, 512, 128), (777, 1500, 700),
                                                    (4096, 512, 2048), (5, 3000, 1), (7, 0, 2),
                                                    (2600, 64, 1)])  # > 1024 chunks: several launches
def test_chunk_digests(gpu, n, length, chunk_rows):
    rows = np.random.default_rng(n).integers(0, 256, (n, length), dtype=np.uint8)
    got = gpu.chunk_digests(rows, chunk_rows)
    assert np.array_equal(got, reference.chunk_digests(rows, chunk_rows))
    for c in range(len(got)):
        assert got[c].tobytes() == blake3.blake3(rows[c * chunk_rows:(c + 1) * chunk_rows].tobytes()).digest()


def test_device_input_zero_copy(gpu):
    import cupy as cp

    rows = np.random.default_rng(1).integers(0, 256, (5000, 512), dtype=np.uint8)
    rp, dg = gpu.fingerprint_chunks(cp.asarray(rows), 2048)
    assert np.array_equal(rp, reference.rowprints(rows))
    assert np.array_equal(dg, reference.chunk_digests(rows, 2048))


@pytest.mark.parametrize("itemsize", reference.ITEMSIZES)
@pytest.mark.parametrize("mode", reference.DELTA_MODES)
def test_delta_round_trip(gpu, itemsize, mode):
    rng = np.random.default_rng(itemsize * 10 + mode)
    new = rng.integers(0, 256, 4099 * itemsize, dtype=np.uint8)
    base = rng.integers(0, 256, 4099 * itemsize, dtype=np.uint8)
    enc = gpu.delta_encode(new, base, itemsize, mode)
    assert np.array_equal(enc, reference.delta_encode(new, base, itemsize, mode))
    assert np.array_equal(gpu.delta_decode(enc, base, itemsize, mode), new)
    n = new.size // itemsize  # the same, given as separate byte planes (as decoders hold them)
    planes = [enc[p * n:(p + 1) * n].copy() for p in range(itemsize)]
    assert np.array_equal(gpu.delta_decode(planes, base, itemsize, mode), new)
    with pytest.raises(ValueError, match="planes of equal length"):
        gpu.delta_decode(planes + [planes[0]], base, itemsize, mode)  # one plane too many


@pytest.mark.parametrize("length", [1, 7, 384, 4100])
def test_rows_equal(gpu, length):
    a = np.random.default_rng(length).integers(0, 256, (1000, length), dtype=np.uint8)
    b = a.copy()
    b[::7, length - 1] ^= 1
    assert np.array_equal(gpu.rows_equal(a, b), reference.rows_equal(a, b))


def test_empty_and_non_contiguous_inputs(gpu):
    import cupy as cp

    assert gpu.rowprints(np.zeros((0, 16), np.uint8)).shape == (0,)
    rows = np.random.default_rng(4).integers(0, 256, (300, 200), dtype=np.uint8)
    view = cp.asarray(rows)[::2, 10:150]  # strided on the device
    want = np.ascontiguousarray(rows[::2, 10:150])
    assert np.array_equal(gpu.rowprints(view), reference.rowprints(want))
    assert np.array_equal(gpu.chunk_digests(view, 16), reference.chunk_digests(want, 16))


def test_delta_refuses_bad_sizes(gpu):
    with pytest.raises(ValueError):
        gpu.delta_encode(np.zeros(8, np.uint8), np.zeros(4, np.uint8), 4, 2)
    with pytest.raises(ValueError):
        gpu.delta_encode(np.zeros(2, np.float32), np.zeros(2, np.float32), 4, 2)


def test_backend_passes_its_self_check_and_fingerprints_like_the_cpu():
    import embfmt

    x = np.random.default_rng(3).standard_normal((10_000, 96)).astype(np.float32)
    assert embfmt.fingerprint(x, backend="gpu").root == embfmt.fingerprint(x, backend="cpu").root


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("dim", [0, 1, 17, 384])
def test_row_stats_match_oracle(gpu, code, dim):
    from .test_cuda_host import _adversarial_rows, _same_bits

    a, b = _adversarial_rows(code, 3000, dim, seed=code + dim)
    assert _same_bits(gpu.row_stats(a, b, code), reference.row_stats(a, b, code))


def test_diff_statistics_on_the_gpu_equal_the_cpus():
    import embfmt

    rng = np.random.default_rng(9)
    a = rng.standard_normal((20_000, 64)).astype(np.float32)
    b = a.copy()
    b[rng.choice(20_000, 500, replace=False)] *= np.float32(1.01)
    dg, dc = embfmt.diff(a, b, backend="gpu"), embfmt.diff(a, b, backend="cpu")
    assert np.array_equal(dg.changed_b, dc.changed_b)
    for m in ("l2", "cosine", "max_abs", "ulp"):
        assert np.array_equal(dg.stats[m].view(np.uint64), dc.stats[m].view(np.uint64)), m


@pytest.mark.parametrize("length", [241, 256, 512, 1000, 1008, 1024, 1025, 1040, 2048, 2049, 4100, 16 * 1024 + 16])
@pytest.mark.parametrize("n", [1, 3, 5, 127, 129, 1001])
@pytest.mark.parametrize("kernel", ["staged", "thread"])
def test_every_rowprint_kernel_on_long_rows(gpu, length, n, kernel):
    """Each kernel for rows over 240 bytes (staged: partial last tiles of rows, odd numbers of
    steps), at every block/tail shape of XXH3's long path."""
    if kernel == "staged" and length % 16:
        pytest.skip("staged: rows of a multiple of 16 bytes only (checked by test_staged_kernel_refuses)")
    rows = np.random.default_rng(n * 7 + length).integers(0, 256, (n, length), dtype=np.uint8)
    got = gpu.rowprints_device(rows, kernel=kernel).get()
    assert [int(v) for v in got] == [xxhash.xxh3_64_intdigest(r.tobytes()) for r in rows]


def test_staged_kernel_refuses_rows_it_cannot_stage(gpu):
    import cupy as cp

    with pytest.raises(ValueError):
        gpu.rowprints_device(np.zeros((4, 1000), np.uint8), kernel="staged")  # 1000 % 16 != 0
    with pytest.raises(ValueError):
        gpu.rowprints_device(cp.zeros(4 * 512 + 8, cp.uint8)[8:].reshape(4, 512), kernel="staged")
    assert gpu._rowprint_kernel(cp.zeros((4, 512), cp.uint8)) == "staged"
    assert gpu._rowprint_kernel(cp.zeros((4, 240), cp.uint8)) == "thread"


@pytest.mark.parametrize("offset", [0, 1, 4, 8])
def test_kernels_on_misaligned_device_views(gpu, offset):
    """Views starting off a 16-byte boundary take the kernels' narrow-load paths."""
    import cupy as cp

    rng = np.random.default_rng(offset)
    length, n = 520, 301
    flat = rng.integers(0, 256, n * length + offset, dtype=np.uint8)
    rows = flat[offset:].reshape(n, length)
    dev = cp.asarray(flat)[offset:].reshape(n, length)
    assert dev.data.ptr % 16 == offset % 16
    assert np.array_equal(gpu.rowprints(dev), reference.rowprints(rows))
    assert np.array_equal(gpu.chunk_digests(dev, 7), reference.chunk_digests(rows, 7))
    other = rows.copy()
    other[::5, rng.integers(0, length)] ^= 0x80
    dev_other = cp.asarray(np.concatenate([np.zeros(3, np.uint8), other.reshape(-1)]))[3:].reshape(n, length)
    assert np.array_equal(gpu.rows_equal(dev, dev_other), reference.rows_equal(rows, other))
    enc = gpu.delta_encode(dev.reshape(-1), dev_other.reshape(-1), 4, 2)
    assert np.array_equal(enc, reference.delta_encode(rows.reshape(-1), other.reshape(-1), 4, 2))


@pytest.mark.parametrize("itemsize", reference.ITEMSIZES)
@pytest.mark.parametrize("mode", reference.DELTA_MODES)
@pytest.mark.parametrize("n", [0, 1, 5, 8, 17, 1023])
def test_delta_lengths_off_the_16_byte_grid(gpu, itemsize, mode, n):
    """Word counts that leave a partial 16-byte group (the kernels' one-by-one tail)."""
    rng = np.random.default_rng(n * 31 + itemsize * 3 + mode)
    new = rng.integers(0, 256, n * itemsize, dtype=np.uint8)
    base = new.copy()
    base[rng.random(n * itemsize) < 0.3] ^= 0xFF
    enc = gpu.delta_encode(new, base, itemsize, mode)
    assert np.array_equal(enc, reference.delta_encode(new, base, itemsize, mode))
    assert np.array_equal(gpu.delta_decode(enc, base, itemsize, mode), new)


@pytest.mark.parametrize("length", [1, 15, 16, 17, 512, 1000])
def test_rows_equal_single_byte_differences(gpu, length):
    """One flipped byte anywhere in a row clears exactly that row, also where a 16-byte word
    spans two rows."""
    rng = np.random.default_rng(length)
    a = rng.integers(0, 256, (257, length), dtype=np.uint8)
    b = a.copy()
    hit = rng.choice(257, 40, replace=False)
    b[hit, rng.integers(0, length, 40)] ^= 1
    want = np.ones(257, bool)
    want[hit] = False
    assert np.array_equal(gpu.rows_equal(a, b), want)
    assert gpu.rows_equal(np.zeros((4, 0), np.uint8), np.zeros((4, 0), np.uint8)).all()


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 1000, 1025, 4096, 5000])
def test_tree_hash_device_matches_merkle(gpu, n):
    from embfmt.canonical import merkle

    dg = np.random.default_rng(n).integers(0, 256, (n, 32), dtype=np.uint8)
    assert gpu.tree_hash_device(dg) == merkle.tree_hash([bytes(d) for d in dg])


def test_fingerprint_device_on_a_stream_and_lazy_rowprints(gpu):
    """fingerprint_device on a non-default stream gives the CPU's rowprints and tree hash;
    embfmt.fingerprint keeps rowprints on the device until asked for, then returns the CPU's."""
    import cupy as cp

    import embfmt

    x = np.random.default_rng(12).standard_normal((70_000, 128)).astype(np.float32)
    dev = cp.asarray(x)
    # The copy ran on the default stream, which a non-blocking stream does not wait for: as
    # with any CuPy kernel, ordering the input before the call is the caller's part.
    cp.cuda.Device().synchronize()
    with cp.cuda.Stream(non_blocking=True):
        rp, dg, th = gpu.fingerprint_device(dev.view(cp.uint8).reshape(70_000, 512), 2048)
        got_rp = rp.get()
    cpu = embfmt.fingerprint(x, backend="cpu")
    assert np.array_equal(got_rp, cpu.rowprints)
    assert th == cpu.tree_hash
    fp = embfmt.fingerprint(dev)
    assert fp.backend == "gpu" and fp.root == cpu.root
    assert not isinstance(fp._rowprints, np.ndarray)  # still on the device
    assert np.array_equal(fp.rowprints, cpu.rowprints) and not fp.rowprints.flags.writeable
