// A host build of embfmt_core.cuh for the tests (no GPU needed): nvcc compiles it into a
// shared library that tests/kernels/test_cuda_host.py loads with ctypes and checks against
// the numpy oracle and the official xxhash / blake3 packages.
#include "embfmt_core.cuh"

extern "C" {

void emb_host_rowprints(const emb_u8* rows, emb_u64 n, emb_u64 row_len, emb_u64* out) {
    for (emb_u64 i = 0; i < n; ++i) out[i] = emb_xxh3_64(rows + i * row_len, row_len);
}

// Merkle tree hash of n >= 1 digests (nodes: n * 8 words of scratch).
void emb_host_tree_hash(const emb_u8* digests, emb_u64 n, emb_u32* nodes, emb_u8* out) {
    emb_merkle_tree(digests, n, (emb_u32 (*)[8])nodes, out);
}

void emb_host_blake3(const emb_u8* in, emb_u64 len, emb_u8* out) { emb_blake3(in, len, out); }

// The GPU kernel's order: all chunk values, then pairwise levels. cvs: ceil(len/1024) * 8 words.
void emb_host_blake3_levels(const emb_u8* in, emb_u64 len, emb_u32* cvs, emb_u8* out) {
    emb_u64 n = len == 0 ? 1 : (len + 1023) / 1024;
    emb_u32 (*v)[8] = (emb_u32 (*)[8])cvs;
    for (emb_u64 k = 0; k < n; ++k) {
        emb_u64 blen = len - k * 1024 < 1024 ? len - k * 1024 : 1024;
        emb_b3_chunk_cv(in + k * 1024, blen, k, n == 1, v[k]);
    }
    emb_b3_levels(v, n, out);
}

void emb_host_delta_encode(const emb_u8* nw, const emb_u8* bw, emb_u64 n, int itemsize, int mode,
                           emb_u8* out) {
    for (emb_u64 i = 0; i < n; ++i) emb_delta_encode_word(nw, bw, n, i, itemsize, mode, out);
}

void emb_host_delta_decode(const emb_u8* sh, const emb_u8* bw, emb_u64 n, int itemsize, int mode,
                           emb_u8* out) {
    for (emb_u64 i = 0; i < n; ++i) emb_delta_decode_word(sh, bw, n, i, itemsize, mode, out);
}

// The 16-byte group path of the delta kernels, run serially (first 0, step 1).
void emb_host_delta_encode_groups(const emb_u8* nw, const emb_u8* bw, emb_u64 n, int itemsize,
                                  int mode, emb_u8* out) {
    emb_delta_encode_range(nw, bw, n, itemsize, mode, out, 0, 1);
}

void emb_host_delta_decode_groups(const emb_u8* sh, const emb_u8* bw, emb_u64 n, int itemsize,
                                  int mode, emb_u8* out) {
    emb_delta_decode_range(sh, bw, n, itemsize, mode, out, 0, 1);
}

void emb_host_row_stats(const emb_u8* a, const emb_u8* b, emb_u64 n, emb_u64 row_len, int code,
                        double* l2, double* cosine, double* max_abs, emb_u64* max_ulp) {
    emb_u64 dim = row_len / emb_itemsize_of(code);
    for (emb_u64 i = 0; i < n; ++i)
        emb_row_stats(a + i * row_len, b + i * row_len, dim, code, l2 + i, cosine + i,
                      max_abs + i, max_ulp + i);
}

}  // extern "C"
