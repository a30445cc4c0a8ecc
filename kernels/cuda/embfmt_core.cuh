// embfmt hash and delta cores, __host__ __device__: one source for the GPU kernels (CuPy
// RawModule / NVRTC) and for a host build that the tests check against the numpy oracle
// (kernels/reference.py) and the official xxhash / blake3 packages without a GPU.
//
// Bits, not floats: everything here is integer arithmetic on little-endian byte patterns;
// no fast-math, no reductions whose order could depend on scheduling.
//
// No #include: NVRTC (used by CuPy) ships no C standard headers, so the integer types are
// spelled out. unsigned long long is 64 bits and unsigned int 32 bits on every CUDA target.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define EMB_HD __host__ __device__ __forceinline__
#define EMB_CONSTANT __constant__
#else
#define EMB_HD static inline
#define EMB_CONSTANT
#endif

// Device loops over fixed trip counts are unrolled so that small arrays indexed by the loop
// variable (BLAKE3's state and message, XXH3's accumulators) live in registers, not local
// memory. The host compiler unrolls on its own; the pragma is kept out of host code.
#if defined(__CUDA_ARCH__)
#define EMB_UNROLL _Pragma("unroll")
#else
#define EMB_UNROLL
#endif

typedef unsigned char emb_u8;
typedef unsigned int emb_u32;
typedef unsigned long long emb_u64;

// --- XXH3-64, seed 0, default secret (spec §5; xxHash's XXH3_64bits) ----------------------

#define EMB_XXH3_SECRET_BYTES { \
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, \
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, \
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, \
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c, \
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3, \
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, \
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, \
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, \
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, \
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, \
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce, \
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e }

// One copy in constant memory for device code, one in ordinary memory for host code.
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
static EMB_CONSTANT __align__(16) emb_u8 emb_xxh3_secret_dev[192] = EMB_XXH3_SECRET_BYTES;
#endif
#if !defined(__CUDACC_RTC__)
static const emb_u8 emb_xxh3_secret_host[192] = EMB_XXH3_SECRET_BYTES;
#endif

EMB_HD const emb_u8* emb_secret() {
#if defined(__CUDA_ARCH__)
    return emb_xxh3_secret_dev;
#else
    return emb_xxh3_secret_host;
#endif
}

#define EMB_P32_1 0x9E3779B1ULL
#define EMB_P32_2 0x85EBCA77ULL
#define EMB_P32_3 0xC2B2AE3DULL
#define EMB_P64_1 0x9E3779B185EBCA87ULL
#define EMB_P64_2 0xC2B2AE3D27D4EB4FULL
#define EMB_P64_3 0x165667B19E3779F9ULL
#define EMB_P64_4 0x85EBCA77C2B2AE63ULL
#define EMB_P64_5 0x27D4EB2F165667C5ULL
#define EMB_PMX1 0x165667919E3779F9ULL
#define EMB_PMX2 0x9FB21C651E98DF25ULL

// Little-endian loads. Rows start at any offset and an unaligned 8-byte load is illegal on
// the GPU, so the general path goes byte by byte (the host compiler merges it into one load).
// On the device an aligned address (every word of a row whose length is a multiple of 8, in
// a CuPy allocation, 256-byte aligned) takes one native load instead: CUDA devices are
// little-endian, so the value is the same; the host build checks the byte path.
EMB_HD emb_u64 emb_le64(const emb_u8* p) {
#if defined(__CUDA_ARCH__)
    if (((emb_u64)p & 7) == 0) return *(const emb_u64*)p;
#endif
    emb_u64 r = 0;
    for (int i = 7; i >= 0; --i) r = (r << 8) | p[i];
    return r;
}
EMB_HD emb_u32 emb_le32(const emb_u8* p) {
#if defined(__CUDA_ARCH__)
    if (((emb_u64)p & 3) == 0) return *(const emb_u32*)p;
#endif
    return (emb_u32)p[0] | ((emb_u32)p[1] << 8) | ((emb_u32)p[2] << 16) | ((emb_u32)p[3] << 24);
}
EMB_HD emb_u64 emb_rotl64(emb_u64 x, int r) { return (x << r) | (x >> (64 - r)); }
EMB_HD emb_u64 emb_bswap64(emb_u64 x) {
    emb_u64 r = 0;
    for (int i = 0; i < 8; ++i) { r = (r << 8) | (x & 0xFF); x >>= 8; }
    return r;
}

// The 64x64 -> 128-bit product, folded: low ^ high.
EMB_HD emb_u64 emb_mul128_fold64(emb_u64 a, emb_u64 b) {
#if defined(__CUDA_ARCH__)
    return (a * b) ^ __umul64hi(a, b);
#else
    unsigned __int128 p = (unsigned __int128)a * b;
    return (emb_u64)p ^ (emb_u64)(p >> 64);
#endif
}

EMB_HD emb_u64 emb_xxh64_avalanche(emb_u64 h) {
    h ^= h >> 33; h *= EMB_P64_2; h ^= h >> 29; h *= EMB_P64_3; return h ^ (h >> 32);
}
EMB_HD emb_u64 emb_xxh3_avalanche(emb_u64 h) {
    h ^= h >> 37; h *= EMB_PMX1; return h ^ (h >> 32);
}
EMB_HD emb_u64 emb_rrmxmx(emb_u64 h, emb_u64 len) {
    h ^= emb_rotl64(h, 49) ^ emb_rotl64(h, 24); h *= EMB_PMX2;
    h ^= (h >> 35) + len; h *= EMB_PMX2; return h ^ (h >> 28);
}
EMB_HD emb_u64 emb_mix16b(const emb_u8* in, const emb_u8* sec) {
    return emb_mul128_fold64(emb_le64(in) ^ emb_le64(sec), emb_le64(in + 8) ^ emb_le64(sec + 8));
}

EMB_HD void emb_accumulate_512(emb_u64 acc[8], const emb_u8* in, const emb_u8* sec) {
    EMB_UNROLL for (int i = 0; i < 8; ++i) {
        emb_u64 d = emb_le64(in + 8 * i);
        emb_u64 dk = d ^ emb_le64(sec + 8 * i);
        acc[i ^ 1] += d;
        acc[i] += (dk & 0xFFFFFFFFULL) * (dk >> 32);
    }
}
EMB_HD void emb_scramble(emb_u64 acc[8], const emb_u8* sec) {
    EMB_UNROLL for (int i = 0; i < 8; ++i) {
        emb_u64 a = acc[i];
        a ^= a >> 47; a ^= emb_le64(sec + 8 * i); acc[i] = a * EMB_P32_1;
    }
}

// XXH3-64 of in[0, len): the seven length classes of the spec.
EMB_HD emb_u64 emb_xxh3_64(const emb_u8* in, emb_u64 len) {
    const emb_u8* s = emb_secret();
    if (len == 0) return emb_xxh64_avalanche(emb_le64(s + 56) ^ emb_le64(s + 64));
    if (len <= 3) {
        emb_u32 c1 = in[0], c2 = in[len >> 1], c3 = in[len - 1];
        emb_u32 combined = (c1 << 16) | (c2 << 24) | c3 | ((emb_u32)len << 8);
        emb_u64 bitflip = (emb_u64)(emb_le32(s) ^ emb_le32(s + 4));
        return emb_xxh64_avalanche((emb_u64)combined ^ bitflip);
    }
    if (len <= 8) {
        emb_u64 in1 = emb_le32(in), in2 = emb_le32(in + len - 4);
        emb_u64 bitflip = emb_le64(s + 8) ^ emb_le64(s + 16);
        return emb_rrmxmx((in2 + (in1 << 32)) ^ bitflip, len);
    }
    if (len <= 16) {
        emb_u64 lo = emb_le64(in) ^ (emb_le64(s + 24) ^ emb_le64(s + 32));
        emb_u64 hi = emb_le64(in + len - 8) ^ (emb_le64(s + 40) ^ emb_le64(s + 48));
        return emb_xxh3_avalanche(len + emb_bswap64(lo) + hi + emb_mul128_fold64(lo, hi));
    }
    if (len <= 128) {
        emb_u64 acc = len * EMB_P64_1;
        if (len > 32) {
            if (len > 64) {
                if (len > 96) {
                    acc += emb_mix16b(in + 48, s + 96);
                    acc += emb_mix16b(in + len - 64, s + 112);
                }
                acc += emb_mix16b(in + 32, s + 64);
                acc += emb_mix16b(in + len - 48, s + 80);
            }
            acc += emb_mix16b(in + 16, s + 32);
            acc += emb_mix16b(in + len - 32, s + 48);
        }
        acc += emb_mix16b(in, s);
        acc += emb_mix16b(in + len - 16, s + 16);
        return emb_xxh3_avalanche(acc);
    }
    if (len <= 240) {
        emb_u64 acc = len * EMB_P64_1;
        int rounds = (int)(len / 16);
        for (int i = 0; i < 8; ++i) acc += emb_mix16b(in + 16 * i, s + 16 * i);
        acc = emb_xxh3_avalanche(acc);
        for (int i = 8; i < rounds; ++i) acc += emb_mix16b(in + 16 * i, s + 16 * (i - 8) + 3);
        acc += emb_mix16b(in + len - 16, s + 136 - 17);
        return emb_xxh3_avalanche(acc);
    }
    // Long inputs: 1024-byte blocks of 16 stripes, scramble after each full block, then the
    // stripes of the last partial block, then the last 64 bytes (secret offset 121).
    emb_u64 acc[8] = {EMB_P32_3, EMB_P64_1, EMB_P64_2, EMB_P64_3,
                      EMB_P64_4, EMB_P32_2, EMB_P64_5, EMB_P32_1};
    emb_u64 nb_blocks = (len - 1) / 1024;
    for (emb_u64 b = 0; b < nb_blocks; ++b) {
        for (int st = 0; st < 16; ++st) emb_accumulate_512(acc, in + b * 1024 + 64 * st, s + 8 * st);
        emb_scramble(acc, s + 192 - 64);
    }
    emb_u64 nb_stripes = ((len - 1) - 1024 * nb_blocks) / 64;
    for (emb_u64 st = 0; st < nb_stripes; ++st)
        emb_accumulate_512(acc, in + nb_blocks * 1024 + 64 * st, s + 8 * st);
    emb_accumulate_512(acc, in + len - 64, s + 192 - 64 - 7);
    emb_u64 r = len * EMB_P64_1;
    for (int i = 0; i < 4; ++i)
        r += emb_mul128_fold64(acc[2 * i] ^ emb_le64(s + 11 + 16 * i),
                               acc[2 * i + 1] ^ emb_le64(s + 11 + 16 * i + 8));
    return emb_xxh3_avalanche(r);
}

// --- BLAKE3-256 (default hash mode; spec §5) ------------------------------------------------

#define EMB_B3_CHUNK_START 1u
#define EMB_B3_CHUNK_END 2u
#define EMB_B3_PARENT 4u
#define EMB_B3_ROOT 8u

EMB_HD emb_u32 emb_b3_iv(int i) {
    const emb_u32 iv[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                           0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};
    return iv[i];
}
EMB_HD emb_u32 emb_rotr32(emb_u32 x, int r) { return (x >> r) | (x << (32 - r)); }
EMB_HD void emb_b3_g(emb_u32 v[16], int a, int b, int c, int d, emb_u32 x, emb_u32 y) {
    v[a] = v[a] + v[b] + x; v[d] = emb_rotr32(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];     v[b] = emb_rotr32(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + y; v[d] = emb_rotr32(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d];     v[b] = emb_rotr32(v[b] ^ v[c], 7);
}

// The compression function; writes the new chaining value (first 8 output words) to cv.
EMB_HD void emb_b3_compress(emb_u32 cv[8], const emb_u32 m_in[16], emb_u64 counter,
                            emb_u32 block_len, emb_u32 flags) {
    const int perm[16] = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};
    emb_u32 m[16], t[16], v[16];
    EMB_UNROLL for (int i = 0; i < 16; ++i) m[i] = m_in[i];
    EMB_UNROLL for (int i = 0; i < 8; ++i) { v[i] = cv[i]; v[i + 8] = emb_b3_iv(i); }
    v[12] = (emb_u32)counter; v[13] = (emb_u32)(counter >> 32); v[14] = block_len; v[15] = flags;
    EMB_UNROLL for (int r = 0; r < 7; ++r) {
        emb_b3_g(v, 0, 4, 8, 12, m[0], m[1]);
        emb_b3_g(v, 1, 5, 9, 13, m[2], m[3]);
        emb_b3_g(v, 2, 6, 10, 14, m[4], m[5]);
        emb_b3_g(v, 3, 7, 11, 15, m[6], m[7]);
        emb_b3_g(v, 0, 5, 10, 15, m[8], m[9]);
        emb_b3_g(v, 1, 6, 11, 12, m[10], m[11]);
        emb_b3_g(v, 2, 7, 8, 13, m[12], m[13]);
        emb_b3_g(v, 3, 4, 9, 14, m[14], m[15]);
        if (r < 6) {
            EMB_UNROLL for (int i = 0; i < 16; ++i) t[i] = m[perm[i]];
            EMB_UNROLL for (int i = 0; i < 16; ++i) m[i] = t[i];
        }
    }
    EMB_UNROLL for (int i = 0; i < 8; ++i) cv[i] = v[i] ^ v[i + 8];
}

// The 16 little-endian message words of one BLAKE3 block of blen <= 64 bytes, zero padded.
// On the device a full block at a 16-byte-aligned address (every block of a 1 KiB BLAKE3
// chunk of a CuPy allocation, 256-byte aligned) takes four 16-byte loads instead of 64 byte
// loads: CUDA devices are little-endian, so the words are the same.
EMB_HD void emb_b3_block_words(const emb_u8* p, emb_u64 blen, emb_u32 m[16]) {
#if defined(__CUDA_ARCH__)
    if (blen == 64 && ((emb_u64)p & 15) == 0) {
        const uint4* q = (const uint4*)p;
        EMB_UNROLL for (int i = 0; i < 4; ++i) {
            uint4 v = q[i];
            m[4 * i] = v.x; m[4 * i + 1] = v.y; m[4 * i + 2] = v.z; m[4 * i + 3] = v.w;
        }
        return;
    }
#endif
    for (int w = 0; w < 16; ++w) {
        emb_u32 x = 0;
        for (int k = 3; k >= 0; --k) {
            emb_u64 pos = 4 * (emb_u64)w + k;
            x = (x << 8) | (pos < blen ? p[pos] : 0);  // the last block is zero padded
        }
        m[w] = x;
    }
}

// Chaining value of BLAKE3 chunk `index` (1024 bytes, the last one shorter; `len` may be 0
// only for the sole chunk of an empty input). `root` marks the only chunk of the message.
EMB_HD void emb_b3_chunk_cv(const emb_u8* in, emb_u64 len, emb_u64 index, int root, emb_u32 cv[8]) {
    for (int i = 0; i < 8; ++i) cv[i] = emb_b3_iv(i);
    emb_u64 n_blocks = len == 0 ? 1 : (len + 63) / 64;
    // The next block's words are loaded before the current block is compressed, so that the
    // loads are in flight during the compression (9% faster on an H200 than loading each
    // block just before its compression).
    emb_u32 nx[16];
    emb_b3_block_words(in, len < 64 ? len : 64, nx);
    for (emb_u64 b = 0; b < n_blocks; ++b) {
        emb_u32 m[16];
        emb_u64 off = b * 64;
        emb_u64 blen = len - off < 64 ? len - off : 64;
        EMB_UNROLL for (int i = 0; i < 16; ++i) m[i] = nx[i];
        if (b + 1 < n_blocks) emb_b3_block_words(in + off + 64, len - off - 64 < 64 ? len - off - 64 : 64, nx);
        emb_u32 flags = (b == 0 ? EMB_B3_CHUNK_START : 0u) |
                        (b == n_blocks - 1 ? EMB_B3_CHUNK_END | (root ? EMB_B3_ROOT : 0u) : 0u);
        emb_b3_compress(cv, m, index, (emb_u32)blen, flags);
    }
}

// Parent node: key = IV, counter 0, block_len 64, PARENT (| ROOT for the top node).
EMB_HD void emb_b3_parent(const emb_u32 left[8], const emb_u32 right[8], int root, emb_u32 out[8]) {
    emb_u32 m[16];
    for (int i = 0; i < 8; ++i) { m[i] = left[i]; m[i + 8] = right[i]; out[i] = emb_b3_iv(i); }
    emb_b3_compress(out, m, 0, 64, EMB_B3_PARENT | (root ? EMB_B3_ROOT : 0u));
}

// BLAKE3-256 of in[0, len), serially (the host check and small inputs). The tree: chunk
// chaining values merged on a stack by the bits of the chunk count, which yields BLAKE3's
// left-balanced tree (the left subtree holds the largest power of two of chunks < n).
EMB_HD void emb_blake3(const emb_u8* in, emb_u64 len, emb_u8 out[32]) {
    emb_u64 n_chunks = len == 0 ? 1 : (len + 1023) / 1024;
    emb_u32 stack[54][8];  // 2^54 chunks = 2^64 bytes
    int depth = 0;
    emb_u32 cv[8];
    for (emb_u64 c = 0; c + 1 < n_chunks; ++c) {
        emb_b3_chunk_cv(in + c * 1024, 1024, c, 0, cv);
        emb_u64 total = c + 1;
        while ((total & 1) == 0) {
            emb_u32 merged[8];
            emb_b3_parent(stack[--depth], cv, 0, merged);
            for (int i = 0; i < 8; ++i) cv[i] = merged[i];
            total >>= 1;
        }
        for (int i = 0; i < 8; ++i) stack[depth][i] = cv[i];
        ++depth;
    }
    emb_u64 last = n_chunks - 1;
    emb_b3_chunk_cv(in + last * 1024, len - last * 1024, last, n_chunks == 1, cv);
    while (depth > 0) {
        emb_u32 merged[8];
        --depth;
        emb_b3_parent(stack[depth], cv, depth == 0, merged);
        for (int i = 0; i < 8; ++i) cv[i] = merged[i];
    }
    for (int i = 0; i < 8; ++i)
        for (int k = 0; k < 4; ++k) out[4 * i + k] = (emb_u8)(cv[i] >> (8 * k));
}

// --- dense deltas and the byte-plane shuffle (spec §13.3, §13.4) ---------------------------

#define EMB_DELTA_XOR 2
#define EMB_DELTA_SUB_ZIGZAG 3

// Word i (itemsize bytes, little endian) of a byte array.
EMB_HD emb_u64 emb_word(const emb_u8* p, emb_u64 i, int itemsize) {
    emb_u64 r = 0;
    for (int k = itemsize - 1; k >= 0; --k) r = (r << 8) | p[i * itemsize + k];
    return r;
}
EMB_HD emb_u64 emb_mask(int itemsize) { return itemsize == 8 ? ~0ULL : ((1ULL << (8 * itemsize)) - 1); }

// d = new ^ base, or zigzag(new - base) in itemsize-wide two's complement.
EMB_HD emb_u64 emb_delta(emb_u64 nw, emb_u64 bw, int itemsize, int mode) {
    emb_u64 m = emb_mask(itemsize);
    if (mode == EMB_DELTA_XOR) return (nw ^ bw) & m;
    int bits = 8 * itemsize;
    emb_u64 diff = (nw - bw) & m;
    emb_u64 sign = (diff >> (bits - 1)) & 1;  // arithmetic shift of the itemsize-wide value
    return ((diff << 1) ^ (sign ? m : 0)) & m;
}
EMB_HD emb_u64 emb_undelta(emb_u64 d, emb_u64 bw, int itemsize, int mode) {
    emb_u64 m = emb_mask(itemsize);
    if (mode == EMB_DELTA_XOR) return (d ^ bw) & m;
    emb_u64 diff = ((d >> 1) ^ (0 - (d & 1))) & m;  // un-zigzag
    return (bw + diff) & m;
}

// out[p * n + i] = byte p of delta word i: the shuffled dense delta of n words.
EMB_HD void emb_delta_encode_word(const emb_u8* nw, const emb_u8* bw, emb_u64 n, emb_u64 i,
                                  int itemsize, int mode, emb_u8* out) {
    emb_u64 d = emb_delta(emb_word(nw, i, itemsize), emb_word(bw, i, itemsize), itemsize, mode);
    for (int p = 0; p < itemsize; ++p) out[(emb_u64)p * n + i] = (emb_u8)(d >> (8 * p));
}
// Inverse: word i of the new data from the shuffled delta and the base.
EMB_HD void emb_delta_decode_word(const emb_u8* sh, const emb_u8* bw, emb_u64 n, emb_u64 i,
                                  int itemsize, int mode, emb_u8* out) {
    emb_u64 d = 0;
    for (int p = itemsize - 1; p >= 0; --p) d = (d << 8) | sh[(emb_u64)p * n + i];
    emb_u64 w = emb_undelta(d, emb_word(bw, i, itemsize), itemsize, mode);
    for (int k = 0; k < itemsize; ++k) out[i * itemsize + k] = (emb_u8)(w >> (8 * k));
}

// BLAKE3 root from the chaining values of all n >= 1 BLAKE3 chunks, merged level by level:
// adjacent pairs (left || right) become parents, an unpaired last node moves up unchanged
// (the same left-balanced tree as the stack in emb_blake3). The GPU kernel runs each level's
// merges in parallel in this order; this serial form lets the host check that order. The
// chunk values of a multi-chunk message must have been computed without ROOT. cvs is
// overwritten.
EMB_HD void emb_b3_levels(emb_u32 (*cvs)[8], emb_u64 n, emb_u8 out[32]) {
    while (n > 1) {
        emb_u64 pairs = n / 2;
        for (emb_u64 k = 0; k < pairs; ++k) emb_b3_parent(cvs[2 * k], cvs[2 * k + 1], n == 2, cvs[k]);
        if (n & 1)
            for (int i = 0; i < 8; ++i) cvs[pairs][i] = cvs[n - 1][i];
        n = pairs + (n & 1);
    }
    for (int i = 0; i < 8; ++i)
        for (int k = 0; k < 4; ++k) out[4 * i + k] = (emb_u8)(cvs[0][i] >> (8 * k));
}

// --- Row drift statistics (spec §20; kernels/reference.py row_stats) ---------------------
//
// Float64 arithmetic with no contraction into FMAs and IEEE round-to-nearest everywhere, in
// the normative order (columns left to right, sums from +0.0), so the host build, the GPU and
// the numpy oracle agree bit for bit: on the device every operation is an explicit _rn
// intrinsic (nvcc would otherwise fuse a*b+c); the host build is compiled with
// -ffp-contract=off.

#define EMB_DT_F64 1
#define EMB_DT_F32 2
#define EMB_DT_F16 3
#define EMB_DT_BF16 4
#define EMB_DT_I8 5
#define EMB_DT_U8 6
#define EMB_CANONICAL_NAN 0x7FF8000000000000ULL

#if defined(__CUDA_ARCH__)
#define EMB_DADD(a, b) __dadd_rn((a), (b))
#define EMB_DSUB(a, b) __dsub_rn((a), (b))
#define EMB_DMUL(a, b) __dmul_rn((a), (b))
#define EMB_DDIV(a, b) __ddiv_rn((a), (b))
#define EMB_DSQRT(a) __dsqrt_rn(a)
#else
#define EMB_DADD(a, b) ((a) + (b))
#define EMB_DSUB(a, b) ((a) - (b))
#define EMB_DMUL(a, b) ((a) * (b))
#define EMB_DDIV(a, b) ((a) / (b))
#define EMB_DSQRT(a) __builtin_sqrt(a)
#endif

EMB_HD double emb_f64_bits(emb_u64 u) {
    union { emb_u64 u; double d; } v;
    v.u = u;
    return v.d;
}
EMB_HD emb_u64 emb_bits_f64(double d) {
    union { emb_u64 u; double d; } v;
    v.d = d;
    return v.u;
}
EMB_HD int emb_isnan(double x) { return x != x; }

// An IEEE binary bit pattern with E exponent and M mantissa bits (binary16: 5, 10; binary32:
// 8, 23; bfloat16: 8, 7) as the exact double it denotes, by integer operations alone: every
// such value is a double, and the GPU's float-to-double conversion flushed binary32
// subnormals to zero under CuPy (seen on an H200 with CuPy 14 / NVRTC 13).
EMB_HD double emb_binary_value(emb_u64 x, int E, int M) {
    const emb_u64 emax = (1ULL << E) - 1, mmask = (1ULL << M) - 1, bias = emax >> 1;
    emb_u64 sign = (x >> (E + M)) & 1, e = (x >> M) & emax, m = x & mmask;
    emb_u64 bits;
    if (e == emax) {
        bits = 0x7FF0000000000000ULL | (m << (52 - M));  // inf, or a NaN (payload kept, irrelevant)
    } else if (e != 0) {
        bits = ((e + 1023 - bias) << 52) | (m << (52 - M));
    } else if (m == 0) {
        bits = 0;
    } else {  // subnormal: m * 2^(1 - bias - M), normalised
        int shift = 0;
        while (!(m & (1ULL << M))) { m <<= 1; ++shift; }
        bits = ((emb_u64)(1 - (int)bias - shift + 1023) << 52) | ((m & mmask) << (52 - M));
    }
    return emb_f64_bits(bits | (sign << 63));
}

// Element j of a row, exactly, as a double (bfloat16: the float32 with these high bits).
EMB_HD double emb_element(const emb_u8* row, emb_u64 j, int code) {
    switch (code) {
        case EMB_DT_F64: return emb_f64_bits(emb_word(row, j, 8));
        case EMB_DT_F32: return emb_binary_value(emb_word(row, j, 4), 8, 23);
        case EMB_DT_F16: return emb_binary_value(emb_word(row, j, 2), 5, 10);
        case EMB_DT_BF16: return emb_binary_value(emb_word(row, j, 2), 8, 7);
        case EMB_DT_I8: return (double)(signed char)row[j];
        default: return (double)row[j];
    }
}

EMB_HD int emb_itemsize_of(int code) {
    return code == EMB_DT_F64 ? 8 : code == EMB_DT_F32 ? 4 : (code == EMB_DT_F16 || code == EMB_DT_BF16) ? 2 : 1;
}

// The monotone key max_ulp subtracts, and whether the element is a NaN (ulp_keys).
EMB_HD emb_u64 emb_ulp_key(emb_u64 bits, int code, int* nan) {
    *nan = 0;
    if (code == EMB_DT_I8) return bits ^ 0x80;
    if (code == EMB_DT_U8) return bits;
    int w = 8 * emb_itemsize_of(code);
    emb_u64 sign = 1ULL << (w - 1);
    emb_u64 inf = code == EMB_DT_F64 ? 0x7FF0000000000000ULL : code == EMB_DT_F32 ? 0x7F800000ULL
                : code == EMB_DT_F16 ? 0x7C00ULL : 0x7F80ULL;
    emb_u64 m = bits & (sign - 1);
    *nan = m > inf;
    return (bits & sign) ? sign - m : sign + m;
}

EMB_HD double emb_canonical(double x) { return emb_isnan(x) ? emb_f64_bits(EMB_CANONICAL_NAN) : x; }

// l2, cosine, max_abs (double) and max_ulp of rows x and y of dim elements of type code.
EMB_HD void emb_row_stats(const emb_u8* x, const emb_u8* y, emb_u64 dim, int code, double* l2,
                          double* cosine, double* max_abs, emb_u64* max_ulp) {
    int k = emb_itemsize_of(code);
    double s2 = 0.0, dot = 0.0, sx = 0.0, sy = 0.0, mx = 0.0;
    emb_u64 mu = 0;
    for (emb_u64 j = 0; j < dim; ++j) {
        double xj = emb_element(x, j, code), yj = emb_element(y, j, code);
        double d = EMB_DSUB(yj, xj);
        s2 = EMB_DADD(s2, EMB_DMUL(d, d));
        dot = EMB_DADD(dot, EMB_DMUL(xj, yj));
        sx = EMB_DADD(sx, EMB_DMUL(xj, xj));
        sy = EMB_DADD(sy, EMB_DMUL(yj, yj));
        double ad = emb_f64_bits(emb_bits_f64(d) & 0x7FFFFFFFFFFFFFFFULL);
        if (emb_isnan(ad) || emb_isnan(mx)) mx = emb_f64_bits(EMB_CANONICAL_NAN);  // NaN sticks
        else if (ad > mx) mx = ad;
        int nx, ny;
        emb_u64 kx = emb_ulp_key(emb_word(x, j, k), code, &nx);
        emb_u64 ky = emb_ulp_key(emb_word(y, j, k), code, &ny);
        emb_u64 u = kx >= ky ? kx - ky : ky - kx;
        if (nx || ny) u = kx == ky ? 0 : ~0ULL;
        if (u > mu) mu = u;
    }
    double nxv = EMB_DSQRT(sx), nyv = EMB_DSQRT(sy);
    double cos;
    if (emb_isnan(dot) || emb_isnan(nxv) || emb_isnan(nyv)) cos = emb_f64_bits(EMB_CANONICAL_NAN);
    else if (nxv == 0.0 && nyv == 0.0) cos = 1.0;
    else if (nxv == 0.0 || nyv == 0.0) cos = 0.0;
    else {
        cos = EMB_DDIV(dot, EMB_DMUL(nxv, nyv));
        if (cos > 1.0) cos = 1.0;
        else if (cos < -1.0) cos = -1.0;
    }
    *l2 = emb_canonical(EMB_DSQRT(s2));
    *cosine = emb_canonical(cos);
    *max_abs = emb_canonical(mx);
    *max_ulp = mu;
}

// --- the fingerprint's Merkle tree (spec §6) -----------------------------------------------
//
// leaf = BLAKE3(0x00 || digest), node = BLAKE3(0x01 || left || right): 33 and 65 bytes, so
// each is one BLAKE3 chunk and its hash is that chunk's ROOT-flagged chaining value. Nodes
// are kept as 8 words (the hash's little-endian words).

EMB_HD void emb_merkle_leaf(const emb_u8* digest, emb_u32 out[8]) {
    emb_u8 buf[33];
    buf[0] = 0x00;
    for (int i = 0; i < 32; ++i) buf[1 + i] = digest[i];
    emb_b3_chunk_cv(buf, 33, 0, 1, out);
}

EMB_HD void emb_merkle_node(const emb_u32 left[8], const emb_u32 right[8], emb_u32 out[8]) {
    emb_u8 buf[65];
    buf[0] = 0x01;
    for (int i = 0; i < 8; ++i)
        for (int k = 0; k < 4; ++k) {
            buf[1 + 4 * i + k] = (emb_u8)(left[i] >> (8 * k));
            buf[33 + 4 * i + k] = (emb_u8)(right[i] >> (8 * k));
        }
    emb_b3_chunk_cv(buf, 65, 0, 1, out);
}

// Tree hash of n >= 1 chunk digests (32 bytes each), serially, level by level in the order
// the GPU kernel uses: pairs left to right, an unpaired last node promoted unchanged. nodes:
// n * 8 words of scratch.
EMB_HD void emb_merkle_tree(const emb_u8* digests, emb_u64 n, emb_u32 (*nodes)[8], emb_u8 out[32]) {
    for (emb_u64 k = 0; k < n; ++k) emb_merkle_leaf(digests + 32 * k, nodes[k]);
    while (n > 1) {
        emb_u64 pairs = n / 2;
        for (emb_u64 k = 0; k < pairs; ++k) {
            emb_u32 t[8];
            emb_merkle_node(nodes[2 * k], nodes[2 * k + 1], t);  // k <= 2k: in place is safe
            for (int i = 0; i < 8; ++i) nodes[k][i] = t[i];
        }
        if (n & 1)
            for (int i = 0; i < 8; ++i) nodes[pairs][i] = nodes[n - 1][i];
        n = pairs + (n & 1);
    }
    for (int i = 0; i < 8; ++i)
        for (int k = 0; k < 4; ++k) out[4 * i + k] = (emb_u8)(nodes[0][i] >> (8 * k));
}

// --- dense deltas, 16 bytes per step ------------------------------------------------------
//
// Group t covers bytes [16t, 16t + 16) of the inputs: W = 16 / K words of K bytes. Its delta
// goes to K planes, W bytes each, at out + p * n + t * W, so consecutive threads read and
// write consecutive 16- and W-byte pieces (one wide load or store each on the device, where
// aligned). Same bytes as K words of emb_delta_encode_word; the host build checks that.

EMB_HD void emb_load16(const emb_u8* p, emb_u64 w[2]) { w[0] = emb_le64(p); w[1] = emb_le64(p + 8); }

EMB_HD void emb_store_le(emb_u8* p, emb_u64 v, int nbytes) {
#if defined(__CUDA_ARCH__)
    if (nbytes == 8 && ((emb_u64)p & 7) == 0) { *(emb_u64*)p = v; return; }
    if (nbytes == 4 && ((emb_u64)p & 3) == 0) { *(emb_u32*)p = (emb_u32)v; return; }
    if (nbytes == 2 && ((emb_u64)p & 1) == 0) { *(unsigned short*)p = (unsigned short)v; return; }
#endif
    for (int k = 0; k < nbytes; ++k) p[k] = (emb_u8)(v >> (8 * k));
}
EMB_HD emb_u64 emb_load_le(const emb_u8* p, int nbytes) {
    if (nbytes == 8) return emb_le64(p);
    if (nbytes == 4) return emb_le32(p);
    emb_u64 r = 0;
    for (int k = nbytes - 1; k >= 0; --k) r = (r << 8) | p[k];
    return r;
}

// Byte b (0..15) of a 16-byte value held as two little-endian words.
EMB_HD emb_u64 emb_byte16(const emb_u64 w[2], int b) { return (w[b >> 3] >> (8 * (b & 7))) & 0xFF; }

template <int K>
EMB_HD void emb_delta_encode_group(const emb_u8* nw, const emb_u8* bw, emb_u64 n, emb_u64 t,
                                   int mode, emb_u8* out) {
    const int W = 16 / K;
    emb_u64 x[2], y[2], d[2];
    emb_load16(nw + 16 * t, x);
    emb_load16(bw + 16 * t, y);
    if (mode == EMB_DELTA_XOR) {
        d[0] = x[0] ^ y[0]; d[1] = x[1] ^ y[1];
    } else {
        d[0] = d[1] = 0;
        EMB_UNROLL for (int j = 0; j < W; ++j) {
            int h = (j * K) >> 3, sh = 8 * ((j * K) & 7);
            emb_u64 m = emb_mask(K);
            d[h] |= emb_delta((x[h] >> sh) & m, (y[h] >> sh) & m, K, mode) << sh;
        }
    }
    EMB_UNROLL for (int p = 0; p < K; ++p) {
        emb_u64 lo = 0, hi = 0;  // W bytes: byte p of each word
        EMB_UNROLL for (int j = 0; j < W; ++j) {
            emb_u64 byte = emb_byte16(d, j * K + p);
            if (j < 8) lo |= byte << (8 * j); else hi |= byte << (8 * (j - 8));
        }
        emb_u8* dst = out + (emb_u64)p * n + t * W;
        if (W == 16) { emb_store_le(dst, lo, 8); emb_store_le(dst + 8, hi, 8); }
        else emb_store_le(dst, lo, W);
    }
}

template <int K>
EMB_HD void emb_delta_decode_group(const emb_u8* sh, const emb_u8* bw, emb_u64 n, emb_u64 t,
                                   int mode, emb_u8* out) {
    const int W = 16 / K;
    emb_u64 d[2] = {0, 0}, y[2], w[2];
    EMB_UNROLL for (int p = 0; p < K; ++p) {
        const emb_u8* src = sh + (emb_u64)p * n + t * W;
        emb_u64 lo = W == 16 ? emb_le64(src) : emb_load_le(src, W);
        emb_u64 hi = W == 16 ? emb_le64(src + 8) : 0;
        EMB_UNROLL for (int j = 0; j < W; ++j) {
            emb_u64 byte = ((j < 8 ? lo >> (8 * j) : hi >> (8 * (j - 8)))) & 0xFF;
            int b = j * K + p;
            d[b >> 3] |= byte << (8 * (b & 7));
        }
    }
    emb_load16(bw + 16 * t, y);
    if (mode == EMB_DELTA_XOR) {
        w[0] = d[0] ^ y[0]; w[1] = d[1] ^ y[1];
    } else {
        w[0] = w[1] = 0;
        EMB_UNROLL for (int j = 0; j < W; ++j) {
            int h = (j * K) >> 3, s = 8 * ((j * K) & 7);
            emb_u64 m = emb_mask(K);
            w[h] |= emb_undelta((d[h] >> s) & m, (y[h] >> s) & m, K, mode) << s;
        }
    }
    emb_store_le(out + 16 * t, w[0], 8);
    emb_store_le(out + 16 * t + 8, w[1], 8);
}

// Words [0, n) of a shuffled dense delta: whole 16-byte groups through the group functions,
// the last n % W words (if any) one by one. first/step: the caller's share of the groups
// (a grid-stride loop on the device, 0/1 on the host); the tail is done by first == 0.
EMB_HD void emb_delta_encode_range(const emb_u8* nw, const emb_u8* bw, emb_u64 n, int itemsize,
                                   int mode, emb_u8* out, emb_u64 first, emb_u64 step) {
    emb_u64 groups = n * itemsize / 16;
    for (emb_u64 t = first; t < groups; t += step) {
        switch (itemsize) {
            case 1: emb_delta_encode_group<1>(nw, bw, n, t, mode, out); break;
            case 2: emb_delta_encode_group<2>(nw, bw, n, t, mode, out); break;
            case 4: emb_delta_encode_group<4>(nw, bw, n, t, mode, out); break;
            default: emb_delta_encode_group<8>(nw, bw, n, t, mode, out); break;
        }
    }
    if (first == 0)
        for (emb_u64 i = groups * (16 / itemsize); i < n; ++i)
            emb_delta_encode_word(nw, bw, n, i, itemsize, mode, out);
}

EMB_HD void emb_delta_decode_range(const emb_u8* sh, const emb_u8* bw, emb_u64 n, int itemsize,
                                   int mode, emb_u8* out, emb_u64 first, emb_u64 step) {
    emb_u64 groups = n * itemsize / 16;
    for (emb_u64 t = first; t < groups; t += step) {
        switch (itemsize) {
            case 1: emb_delta_decode_group<1>(sh, bw, n, t, mode, out); break;
            case 2: emb_delta_decode_group<2>(sh, bw, n, t, mode, out); break;
            case 4: emb_delta_decode_group<4>(sh, bw, n, t, mode, out); break;
            default: emb_delta_decode_group<8>(sh, bw, n, t, mode, out); break;
        }
    }
    if (first == 0)
        for (emb_u64 i = groups * (16 / itemsize); i < n; ++i)
            emb_delta_decode_word(sh, bw, n, i, itemsize, mode, out);
}
