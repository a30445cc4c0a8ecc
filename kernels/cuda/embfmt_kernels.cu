// embfmt GPU kernels (CuPy RawModule). Same names and meanings as kernels/cpu.py and
// kernels/reference.py; the per-element work is the __host__ __device__ code of
// embfmt_core.cuh, which tests/kernels/test_cuda_host.py checks on the host against the
// oracle. Launch shapes are chosen by the Python backend (embfmt/backend.py).
#include "embfmt_core.cuh"

// A binary tree's levels merged in one thread block, as emb_b3_levels and emb_merkle_tree do
// serially: n >= 1 nodes in src; each level's parents merge(left, right, top, parent) in
// parallel, one per thread (top: the merge that makes the root), an unpaired last node moved
// up unchanged; src and dst ping-pong so that no thread overwrites a node another still
// reads. Thread 0 writes the root's 8 words to out as 32 little-endian bytes. The caller
// synchronises the block after filling src.
template <typename Merge>
__device__ void emb_block_tree(emb_u32 (*src)[8], emb_u32 (*dst)[8], emb_u64 n, Merge merge, emb_u8* out) {
    while (n > 1) {
        emb_u64 pairs = n / 2;
        for (emb_u64 k = threadIdx.x; k < pairs; k += blockDim.x) merge(src[2 * k], src[2 * k + 1], n == 2, dst[k]);
        if (threadIdx.x == 0 && (n & 1))
            for (int i = 0; i < 8; ++i) dst[pairs][i] = src[n - 1][i];
        __syncthreads();
        emb_u32 (*t)[8] = src; src = dst; dst = t;
        n = pairs + (n & 1);
    }
    if (threadIdx.x == 0)
        for (int i = 0; i < 8; ++i)
            for (int k = 0; k < 4; ++k) out[4 * i + k] = (emb_u8)(src[0][i] >> (8 * k));
}

extern "C" {

// out[i] = XXH3-64(rows[i]) for n rows of row_len bytes (one thread per row).
__global__ void emb_rowprints(const emb_u8* rows, emb_u64 n, emb_u64 row_len, emb_u64* out) {
    for (emb_u64 i = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; i < n;
         i += (emb_u64)gridDim.x * blockDim.x)
        out[i] = emb_xxh3_64(rows + i * row_len, row_len);
}

#define EMB_STAGE_ROWS 128
#define EMB_STAGE_STRIPES 2
// Staged row pitch in 16-byte units: the EMB_STAGE_STRIPES stripes of a row plus one unit of
// padding, odd, so that the 8 threads of a quarter warp reading their rows hit 8 distinct
// bank groups (an odd pitch p makes p t mod 8 a permutation of t).
#define EMB_STAGE_PITCH (4 * EMB_STAGE_STRIPES + 1)

// The same for rows longer than 240 bytes whose length is a multiple of 16, at a 16-byte-
// aligned address: each block hashes a tile of EMB_STAGE_ROWS consecutive rows, one thread per
// row, and stages their stripes through shared memory, EMB_STAGE_STRIPES stripes (128 bytes of
// each row) per step. Loading a step takes 1024 16-byte pieces, read by consecutive threads as
// 128-byte runs (coalesced), and the next step's pieces are loaded into registers while the
// current one is hashed. Measured on an H200, 4 GiB of 512-byte rows, against a read-only
// reduction: 0.93x (one thread walking its own row, 8 bytes at a time at a stride of row_len
// from its neighbours: 0.39x; one stripe per step: 0.70x; 4-stage cp.async staging of one
// stripe per step: 0.70x; 8 threads per row: 0.22x).
__global__ void __launch_bounds__(EMB_STAGE_ROWS) emb_rowprints_staged(const emb_u8* rows, emb_u64 n,
                                                                       emb_u64 row_len, emb_u64* out) {
    const int S = EMB_STAGE_STRIPES;
    __shared__ uint4 stage[EMB_STAGE_ROWS * EMB_STAGE_PITCH];
    // Secret words, aligned copies: [0, 128) stripe st word i at 8 st + 8 i; [128, 136) the
    // scramble secret; [136, 144) the last stripe's (offset 121); [144, 152) the merge's
    // (offset 11 + 8 m).
    __shared__ emb_u64 sk[152];
    const emb_u8* s = emb_secret();
    for (int t = threadIdx.x; t < 152; t += blockDim.x) {
        int off = t < 128 ? 8 * (t >> 3) + 8 * (t & 7) : t < 136 ? 128 + 8 * (t - 128)
                : t < 144 ? 121 + 8 * (t - 136) : 11 + 8 * (t - 144);
        sk[t] = emb_le64(s + off);
    }
    __syncthreads();
    const int tid = threadIdx.x;
    const emb_u64 nb_blocks = (row_len - 1) / 1024;
    const emb_u64 nb_tail = ((row_len - 1) - 1024 * nb_blocks) / 64;
    const emb_u64 n_steps = 16 * nb_blocks + nb_tail + 1;  // every stripe in order, then the last 64 bytes
    for (emb_u64 r0 = blockIdx.x * (emb_u64)EMB_STAGE_ROWS; r0 < n; r0 += (emb_u64)gridDim.x * EMB_STAGE_ROWS) {
        const emb_u64 tile = n - r0 < EMB_STAGE_ROWS ? n - r0 : EMB_STAGE_ROWS;
        uint4 v[4 * S];
        // Piece p = tid + 128 k of the step starting at stripe q: row p / (4 S) of the tile,
        // 16-byte part p % 4 of its stripe q + (p / 4) % S.
        auto load = [&](emb_u64 q) {
            EMB_UNROLL for (int k = 0; k < 4 * S; ++k) {
                int p = tid + EMB_STAGE_ROWS * k;
                emb_u64 row = p / (4 * S), st = q + (p >> 2) % S;
                if (row < tile && st < n_steps) {
                    emb_u64 off = st + 1 == n_steps ? row_len - 64 : (st >> 4) * 1024 + 64 * (st & 15);
                    v[k] = *(const uint4*)(rows + (r0 + row) * row_len + off + 16 * (p & 3));
                }
            }
        };
        auto store = [&]() {
            EMB_UNROLL for (int k = 0; k < 4 * S; ++k) {
                int p = tid + EMB_STAGE_ROWS * k;
                stage[(p / (4 * S)) * EMB_STAGE_PITCH + p % (4 * S)] = v[k];
            }
        };
        emb_u64 acc[8] = {EMB_P32_3, EMB_P64_1, EMB_P64_2, EMB_P64_3,
                          EMB_P64_4, EMB_P32_2, EMB_P64_5, EMB_P32_1};
        load(0);
        store();
        __syncthreads();
        for (emb_u64 q = 0; q < n_steps; q += S) {
            if (q + S < n_steps) load(q + S);
            EMB_UNROLL for (int j = 0; j < S; ++j) {
                const emb_u64 st = q + j;
                if (st < n_steps) {
                    const emb_u64* key = st + 1 == n_steps ? sk + 136 : sk + 8 * (st & 15);
                    const uint4* mine = stage + tid * EMB_STAGE_PITCH + 4 * j;
                    // emb_accumulate_512's arithmetic, written out on the staged words: calling
                    // a shared per-word helper here made ptxas allocate 130 registers instead
                    // of 128, one block fewer per SM (checked with -Xptxas -v).
                    EMB_UNROLL for (int k = 0; k < 4; ++k) {
                        uint4 w = mine[k];
                        emb_u64 d0 = (emb_u64)w.x | ((emb_u64)w.y << 32), d1 = (emb_u64)w.z | ((emb_u64)w.w << 32);
                        emb_u64 k0 = d0 ^ key[2 * k], k1 = d1 ^ key[2 * k + 1];
                        acc[2 * k + 1] += d0;
                        acc[2 * k] += (k0 & 0xFFFFFFFFULL) * (k0 >> 32);
                        acc[2 * k] += d1;
                        acc[2 * k + 1] += (k1 & 0xFFFFFFFFULL) * (k1 >> 32);
                    }
                    if ((st & 15) == 15 && st < 16 * nb_blocks)  // after each full 1024-byte block
                        EMB_UNROLL for (int i = 0; i < 8; ++i) {
                            emb_u64 a = acc[i];
                            a ^= a >> 47; a ^= sk[128 + i]; acc[i] = a * EMB_P32_1;
                        }
                }
            }
            __syncthreads();
            if (q + S < n_steps) {
                store();
                __syncthreads();
            }
        }
        if ((emb_u64)tid < tile) {
            emb_u64 r = row_len * EMB_P64_1;
            EMB_UNROLL for (int i = 0; i < 4; ++i)
                r += emb_mul128_fold64(acc[2 * i] ^ sk[144 + 2 * i], acc[2 * i + 1] ^ sk[145 + 2 * i]);
            out[r0 + tid] = emb_xxh3_avalanche(r);
        }
    }
}

// BLAKE3-256 of each embfmt chunk of chunk_bytes bytes (the last one shorter): one thread
// block per chunk. Its threads compute the chaining values of the chunk's 1 KiB BLAKE3
// chunks, then merge them level by level as emb_b3_levels does, one parent per thread per
// level, ping-ponging between two halves of the chunk's scratch so that no thread overwrites
// a value another still reads. scratch: n_chunks * 2 * ceil(chunk_bytes / 1024) * 8 words.
__global__ void __launch_bounds__(256) emb_chunk_digests(const emb_u8* data, emb_u64 total, emb_u64 chunk_bytes,
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
    emb_block_tree(src, dst, n_b3,
                   [](const emb_u32* l, const emb_u32* r, bool top, emb_u32* p) { emb_b3_parent(l, r, top, p); },
                   out + c * 32);
}

// Shuffled dense delta of n words (mode 2 XOR, 3 sub-zigzag), and its inverse: 16 bytes of
// each input per thread and step (emb_delta_encode_range).
__global__ void emb_delta_encode(const emb_u8* nw, const emb_u8* bw, emb_u64 n, int itemsize,
                                 int mode, emb_u8* out) {
    emb_delta_encode_range(nw, bw, n, itemsize, mode, out, blockIdx.x * (emb_u64)blockDim.x + threadIdx.x,
                           (emb_u64)gridDim.x * blockDim.x);
}
__global__ void emb_delta_decode(const emb_u8* sh, const emb_u8* bw, emb_u64 n, int itemsize,
                                 int mode, emb_u8* out) {
    emb_delta_decode_range(sh, bw, n, itemsize, mode, out, blockIdx.x * (emb_u64)blockDim.x + threadIdx.x,
                           (emb_u64)gridDim.x * blockDim.x);
}

// Which rows of a and b are bit-identical, compared over the flat arrays: consecutive threads
// read consecutive words (16 bytes where both inputs are 16-byte aligned, else 8, 4 or 1), so
// the reads are coalesced whatever the row length. out must start as all 1s; a thread that
// finds a differing byte writes 0 to that byte's row. Only 0 is ever written, so threads
// racing on a row's flag agree.
__global__ void emb_rows_equal(const emb_u8* a, const emb_u8* b, emb_u64 n, emb_u64 row_len,
                               emb_u8* out) {
    const emb_u64 total = n * row_len;
    const emb_u64 mis = ((emb_u64)a | (emb_u64)b) & 15;
    const int w = mis == 0 ? 16 : (mis & 7) == 0 ? 8 : (mis & 3) == 0 ? 4 : 1;
    const emb_u64 n_words = (total + w - 1) / w;
    for (emb_u64 k = blockIdx.x * (emb_u64)blockDim.x + threadIdx.x; k < n_words;
         k += (emb_u64)gridDim.x * blockDim.x) {
        const emb_u64 off = k * w;
        if (off + w <= total) {
            bool same;
            if (w == 16) {
                uint4 x = ((const uint4*)a)[k], y = ((const uint4*)b)[k];
                same = x.x == y.x && x.y == y.y && x.z == y.z && x.w == y.w;
            } else if (w == 8) {
                same = ((const emb_u64*)a)[k] == ((const emb_u64*)b)[k];
            } else if (w == 4) {
                same = ((const emb_u32*)a)[k] == ((const emb_u32*)b)[k];
            } else {
                same = a[k] == b[k];
            }
            if (same) continue;
        }
        const emb_u64 end = off + w < total ? off + w : total;
        for (emb_u64 q = off; q < end; ++q)
            if (a[q] != b[q]) out[q / row_len] = 0;
    }
}

// Tree hash of n >= 1 chunk digests (spec §6) in one block: the leaves, then each level's
// nodes in parallel, ping-ponging between two halves of scratch (2 * n * 8 words) so no
// thread overwrites a node another still reads. A few thousand chunks take tens of
// microseconds; the Python loop over them took milliseconds.
__global__ void __launch_bounds__(1024) emb_tree_hash(const emb_u8* digests, emb_u64 n,
                                                      emb_u32* scratch, emb_u8* out) {
    emb_u32 (*src)[8] = (emb_u32 (*)[8])scratch;
    emb_u32 (*dst)[8] = src + n;
    for (emb_u64 k = threadIdx.x; k < n; k += blockDim.x) emb_merkle_leaf(digests + 32 * k, src[k]);
    __syncthreads();
    emb_block_tree(src, dst, n,
                   [](const emb_u32* l, const emb_u32* r, bool, emb_u32* p) { emb_merkle_node(l, r, p); },
                   out);
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
