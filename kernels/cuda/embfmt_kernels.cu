// embfmt GPU kernels (CuPy RawModule). Same names and meanings as kernels/cpu.py and
// kernels/reference.py; the per-element work is the __host__ __device__ code of
// embfmt_core.cuh, which tests/kernels/test_cuda_host.py checks on the host against the
// oracle. Launch shapes are chosen by the Python backend (embfmt/backend.py).
#include "embfmt_core.cuh"

extern "C" {

// out[i] = XXH3-64(rows[i]) for n rows of row_len bytes (one thread per row).
__global__ void emb_rowprints(const emb_u8* rows, emb_u64 n, emb_u64 row_len, emb_u64* out) {
    for (emb_u64 i = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; i < n;
         i += (emb_u64)gridDim.x * blockDim.x)
        out[i] = emb_xxh3_64(rows + i * row_len, row_len);
}

// BLAKE3-256 of each embfmt chunk of chunk_bytes bytes (the last one shorter): one thread
// block per chunk. Its threads compute the chaining values of the chunk's 1 KiB BLAKE3
// chunks, then merge them level by level as emb_b3_levels does, one parent per thread per
// level, ping-ponging between two halves of the chunk's scratch so that no thread overwrites
// a value another still reads. scratch: n_chunks * 2 * ceil(chunk_bytes / 1024) * 8 words.
__global__ void emb_chunk_digests(const emb_u8* data, emb_u64 total, emb_u64 chunk_bytes,
                                  emb_u64 n_chunks, emb_u32* scratch, emb_u8* out) {
    emb_u64 c = blockIdx.x;
    if (c >= n_chunks) return;  // uniform per block: no thread of it reaches a barrier
    emb_u64 start = c * chunk_bytes;
    emb_u64 len = total - start < chunk_bytes ? total - start : chunk_bytes;
    emb_u64 n_b3 = len == 0 ? 1 : (len + 1023) / 1024;
    emb_u64 cap = chunk_bytes == 0 ? 1 : (chunk_bytes + 1023) / 1024;
    emb_u32 (*src)[8] = (emb_u32 (*)[8])(scratch + c * cap * 16);
    emb_u32 (*dst)[8] = src + cap;
    for (emb_u64 k = threadIdx.x; k < n_b3; k += blockDim.x) {
        emb_u64 off = k * 1024;
        emb_u64 blen = len - off < 1024 ? len - off : 1024;
        emb_b3_chunk_cv(data + start + off, blen, k, n_b3 == 1, src[k]);
    }
    __syncthreads();
    emb_u64 n = n_b3;
    while (n > 1) {
        emb_u64 pairs = n / 2;
        for (emb_u64 k = threadIdx.x; k < pairs; k += blockDim.x)
            emb_b3_parent(src[2 * k], src[2 * k + 1], n == 2, dst[k]);
        if (threadIdx.x == 0 && (n & 1))
            for (int i = 0; i < 8; ++i) dst[pairs][i] = src[n - 1][i];
        __syncthreads();
        emb_u32 (*t)[8] = src; src = dst; dst = t;
        n = pairs + (n & 1);
    }
    if (threadIdx.x == 0)
        for (int i = 0; i < 8; ++i)
            for (int k = 0; k < 4; ++k) out[c * 32 + 4 * i + k] = (emb_u8)(src[0][i] >> (8 * k));
}

// Shuffled dense delta of n words (mode 2 XOR, 3 sub-zigzag), and its inverse.
__global__ void emb_delta_encode(const emb_u8* nw, const emb_u8* bw, emb_u64 n, int itemsize,
                                 int mode, emb_u8* out) {
    for (emb_u64 i = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; i < n;
         i += (emb_u64)gridDim.x * blockDim.x)
        emb_delta_encode_word(nw, bw, n, i, itemsize, mode, out);
}
__global__ void emb_delta_decode(const emb_u8* sh, const emb_u8* bw, emb_u64 n, int itemsize,
                                 int mode, emb_u8* out) {
    for (emb_u64 i = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; i < n;
         i += (emb_u64)gridDim.x * blockDim.x)
        emb_delta_decode_word(sh, bw, n, i, itemsize, mode, out);
}

// out[i] = rows i of a and b are bit-identical.
__global__ void emb_rows_equal(const emb_u8* a, const emb_u8* b, emb_u64 n, emb_u64 row_len,
                               emb_u8* out) {
    for (emb_u64 i = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; i < n;
         i += (emb_u64)gridDim.x * blockDim.x) {
        emb_u8 eq = 1;
        for (emb_u64 k = 0; k < row_len; ++k) eq &= a[i * row_len + k] == b[i * row_len + k];
        out[i] = eq;
    }
}

// Per-row drift statistics of rows i of a and b (one thread per row).
__global__ void emb_row_stats(const emb_u8* a, const emb_u8* b, emb_u64 n, emb_u64 row_len,
                              int code, double* l2, double* cosine, double* max_abs,
                              emb_u64* max_ulp) {
    emb_u64 dim = row_len / emb_itemsize_of(code);
    for (emb_u64 i = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; i < n;
         i += (emb_u64)gridDim.x * blockDim.x)
        emb_row_stats(a + i * row_len, b + i * row_len, dim, code, l2 + i, cosine + i,
                      max_abs + i, max_ulp + i);
}

}  // extern "C"
