"""THE table of format constants (spec/embfmt-v1.md).

Every magic number, domain tag, struct format and limit of the format lives here, and only
here: readers, writers, the vector generator and the tests all derive from this module.
Module-level asserts pin the sizes so that an accidental edit fails at import time.
"""

from __future__ import annotations

import struct

# --- Format version (spec §1) ----------------------------------------------------------------
FORMAT_MAJOR = 1
FORMAT_MINOR = 0

# --- Canonical chunking (spec §4) -------------------------------------------------------------
# A chunk targets 1 MiB of canonical bytes: large enough that per-chunk overhead (one BLAKE3
# call, one Merkle leaf, one stored object) is < 0.1% of the work, small enough that a chunk
# fits in a core's L2 cache while its rowprints are computed and that changing one row rewrites
# at most 1 MiB. chunk_rows is the largest power of two with chunk_rows * row_bytes <= 2**20
# (at least 1): powers of two make row -> chunk a shift and keep chunks of power-of-two rows
# aligned to BLAKE3's 1 KiB chunks. It depends on the row's byte size only, never on N, the
# writer or the machine.
CHUNK_TARGET_BYTES = 1 << 20

# --- Limits (spec §9) -------------------------------------------------------------------------
# N < 2**48 rows (2.8e14: far above any embedding table; keeps N * 8 bytes of rowprints and
# row indices inside int64 arithmetic everywhere).
MAX_ROWS = (1 << 48) - 1
# D <= 2**24 columns (16.7M): with 8-byte items a row is then at most 128 MiB.
MAX_DIM = 1 << 24
# N * row_bytes <= 2**62 canonical bytes, so every byte offset fits a signed 64-bit integer.
MAX_TOTAL_BYTES = 1 << 62

# --- Hash algorithm ids (spec §5) -------------------------------------------------------------
# 1: rowprints XXH3-64 (seed 0), chunk digests BLAKE3-256, Merkle nodes BLAKE3-256.
HASH_ALGO_XXH3_BLAKE3 = 1
DIGEST_BYTES = 32  # BLAKE3 default output length

# --- Merkle domain-separation tags (spec §6) --------------------------------------------------
# One leading byte per kind of hashed node, so a leaf preimage (33 bytes) can never equal an
# inner-node preimage (65 bytes) or a root preimage, whatever the digests are.
TAG_LEAF = b"\x00"
TAG_NODE = b"\x01"
TAG_EMPTY = b"\x02"
TAG_ROOT = b"\x03"

# --- Table descriptor, bound into the root (spec §7) -------------------------------------------
DESCRIPTOR_MAGIC = b"EMBFMT"  # 45 4D 42 46 4D 54
# magic[6] major:u8 minor:u8 dtype:u8 algo:u8 reserved:u16 reserved:u32
# n_rows:u64 dim:u64 chunk_rows:u64 n_chunks:u64 tree_hash[32]
DESCRIPTOR_STRUCT = struct.Struct("<6sBBBBHIQQQQ32s")
DESCRIPTOR_BYTES = DESCRIPTOR_STRUCT.size
assert DESCRIPTOR_BYTES == 80, DESCRIPTOR_BYTES  # 6+1+1+1+1+2+4 + 4*8 + 32

# --- Fingerprint text form (spec §8) ----------------------------------------------------------
# "emb1" names the format major version, "b3" the root hash (BLAKE3-256); 64 lowercase hex.
FINGERPRINT_PREFIX = f"emb{FORMAT_MAJOR}:b3:"
FINGERPRINT_TEXT_LEN = len(FINGERPRINT_PREFIX) + 2 * DIGEST_BYTES
assert FINGERPRINT_TEXT_LEN == 72

# --- Inclusion proof bytes (spec §6.3) --------------------------------------------------------
PROOF_MAGIC = b"EMBP"
# magic[4] major:u8 algo:u8 dtype:u8 reserved:u8 n_rows:u64 dim:u64 chunk_rows:u64
# index:u64 n_siblings:u32 reserved:u32, then n_siblings * 32 bytes
PROOF_HEADER_STRUCT = struct.Struct("<4sBBBBQQQQII")
assert PROOF_HEADER_STRUCT.size == 48
# A tree over at most 2**48 leaves has at most 48 levels, hence at most 48 siblings.
MAX_PROOF_SIBLINGS = 48

# ==============================================================================================
# Repository format (spec §11-§17)
# ==============================================================================================
REPO_FORMAT_NAME = "embfmt-repository"
REPO_FORMAT_VERSION = 1
REPO_MARKER = "embfmt.json"  # the file that makes a directory a repository
# A project directory keeps its repository in this subdirectory (spec §11.2), like git's .git.
HIDDEN_REPO_DIR = ".embfmt"

# --- Chunk objects (spec §13) -----------------------------------------------------------------
CHUNK_MAGIC = b"EMBC"
# magic[4] major:u8 codec:u8 itemsize:u8 depth:u8 n_rows:u32 row_bytes:u32 base[32]
# base_rows:u32 n_patch:u32 rowprint_bytes:u64 payload_bytes:u64 checksum:u64
CHUNK_HEADER_STRUCT = struct.Struct("<4sBBBBII32sIIQQQ")
CHUNK_HEADER_BYTES = CHUNK_HEADER_STRUCT.size
assert CHUNK_HEADER_BYTES == 80, CHUNK_HEADER_BYTES  # 4+4 (magic..depth) + 8 + 32 + 8 + 16 + 8
# The checksum field is the last 8 header bytes; it covers every header byte before it and the
# whole rowprint section, so a flipped bit there is caught without decoding the payload.
CHUNK_CHECKSUM_OFFSET = CHUNK_HEADER_BYTES - 8

CODEC_RAW = 0        # payload = canonical bytes
CODEC_SHUFFLE_PLANES = 1  # payload = planes(byte-plane shuffle(canonical bytes))
CODEC_XOR = 2        # payload = planes(shuffle(new XOR base)); same shape as base
CODEC_SUBZZ = 3      # payload = planes(shuffle(zigzag(new - base))) on itemsize-wide integers
CODEC_SPARSE = 4     # payload = planes(shuffle(patched rows)); rows not patched come from base

# Byte-plane container ("planes", spec §13.3): itemsize entries of (method u8, 3 reserved
# bytes, stored length u32le), then the planes. Each plane is stored raw or as one zstd frame,
# because in float data the low mantissa bytes are random (zstd cannot shrink them and costs
# ~4 ms per MiB trying) while sign/exponent bytes compress 2.5x.
PLANE_ENTRY_STRUCT = struct.Struct("<B3sI")
assert PLANE_ENTRY_STRUCT.size == 8
PLANE_RAW = 0
PLANE_ZSTD = 1
# Writer heuristic: compress a plane only if a 16 KiB sample shrinks below 97% (a 3% gain on a
# plane is worth zstd's time; random bytes "compress" to 100.006%).
PLANE_SAMPLE_BYTES = 16 << 10
PLANE_RAW_RATIO = 0.97
CODEC_NAMES = {CODEC_RAW: "raw", CODEC_SHUFFLE_PLANES: "shuffle-planes", CODEC_XOR: "xor-delta",
               CODEC_SUBZZ: "sub-zigzag-delta", CODEC_SPARSE: "sparse-patch"}
DELTA_CODECS = (CODEC_XOR, CODEC_SUBZZ, CODEC_SPARSE)

# A delta chain (object -> its base -> ...) is at most this long, so a read touches at most
# MAX_CHAIN_DEPTH + 1 objects per chunk. 8 keeps worst-case read amplification at 9 small or
# sparse objects while a table that gets a sparse update every run still stores ~1/8 of its
# chunks in full per 8 runs rather than every time.
MAX_CHAIN_DEPTH = 8
# zstd level 1 (fast strategy) with two overrides for byte planes: min_match 7 and hash_log 6.
# A plane of sign/exponent bytes is a stream of ~20 distinct symbols (order-0 entropy 2.6 bits
# for N(0,1) float32) with no long repeats: the short matches that level 1's defaults find
# (min_match 5, 2**14-entry hash) cost time and break the literal stream's Huffman coding.
# Measured on such a 256 KiB plane (this VM, one core): level 1 0.388 of raw, 168 MB/s
# compress, 687 MB/s decompress; these overrides 0.335, 525 MB/s and 1528 MB/s. Delta planes
# (zero runs, kept as matches of >= 7 bytes) come out the same size within 1%. Any zstd
# decoder reads the frames: the format does not depend on these writer settings.
ZSTD_LEVEL = 1
ZSTD_MIN_MATCH = 7
ZSTD_HASH_LOG = 6
# The most a zstd frame can expand: a block holds at most 128 KiB of content, and the smallest
# block that yields it (an RLE block) is a 3-byte header and 1 byte, so content <= 32768 x the
# frame's length (plus its own header). A reader bounds what it allocates for an object's frame
# by the frame's length: a header claiming more content than that is damaged or hostile.
ZSTD_MAX_RATIO = 32768
# A zstd frame may claim any decompressed size; we never allocate more than the chunk needs.
MAX_CHUNK_BYTES = 1 << 27  # one row of 2**24 float64 = 128 MiB is the largest possible chunk

# --- Table-version objects (spec §14) ---------------------------------------------------------
TABLE_MAGIC = b"EMBT"
# magic[4] major:u8 dtype:u8 reserved:u16 n_rows:u64 dim:u64 chunk_rows:u64 n_chunks:u64
# root[32] meta_bytes:u32 reserved:u32, then n_chunks * 32 digest bytes, then meta JSON
TABLE_HEADER_STRUCT = struct.Struct("<4sBBHQQQQ32sII")
assert TABLE_HEADER_STRUCT.size == 80
MAX_META_BYTES = 1 << 24  # 16 MiB of JSON metadata per table version

# --- Key objects (spec §15) -------------------------------------------------------------------
KEYS_MAGIC = b"EMBK"
# magic[4] major:u8 kind:u8 reserved:u16 n_keys:u64 raw_bytes:u64 payload_bytes:u64
KEYS_HEADER_STRUCT = struct.Struct("<4sBBHQQQ")
assert KEYS_HEADER_STRUCT.size == 32
KEYS_INT64 = 1
KEYS_UTF8 = 2
MAX_KEY_BYTES = 1 << 16  # one string key is at most 64 KiB of UTF-8

# --- Commit objects (spec §16) ----------------------------------------------------------------
COMMIT_MAGIC = b"EMBCOMMIT1\n"
MAX_COMMIT_BYTES = 1 << 24
# No object file may exceed this (spec §19): the largest chunk object is its 80-byte header,
# 8 bytes of rowprint for each of at most 2^27 rows and a payload of at most 2^27 bytes plus
# its plane table and zstd framing (< 2^27 more); a reader refuses a larger file before
# allocating for it. Kinds with tighter limits (commits) are read with those.
MAX_OBJECT_BYTES = 80 + 8 * (1 << 27) + 2 * (1 << 27)
# Ref names: git-like, checked by a whitelist regex (spec §17).
MAX_REF_NAME = 200

# --- Change objects (spec §16.1) --------------------------------------------------------------
CHANGE_MAGIC = b"EMBD"
# magic[4] major:u8 dtype:u8 reserved:u16 n_changed:u64 parent_rows:u64 rows:u64
# parent_table[32] table[32] payload_bytes:u64
CHANGE_HEADER_STRUCT = struct.Struct("<4sBBHQQQ32s32sQ")
assert CHANGE_HEADER_STRUCT.size == 104

# --- Derived data beside the objects: cache/ entries (spec §11.1) ------------------------------
# Version 2: entries are filled only from rowprints bound to their chunk ids (spec §13.7);
# version-1 entries may hold a swapped object's rowprints and are ignored.
ROWPRINT_CACHE_MAGIC = b"EMBRPC2\0"
SEAL_CACHE_MAGIC = b"EMBSEAL1"
# magic[8] n_items:u64le check[32], then the items (rowprints: u64le; seals: SEAL_STRUCT)
CACHE_HEADER_STRUCT = struct.Struct("<8sQ32s")
assert CACHE_HEADER_STRUCT.size == 48
# The key of a table's content: BLAKE3 of this domain, then dtype code:u8 N:u64le D:u64le
# (CACHE_KEY_STRUCT), then the chunk digests.
CACHE_KEY_DOMAIN = b"embfmt rowprint cache v1\0"
CACHE_KEY_STRUCT = struct.Struct("<BQQ")
# One seal: chunk id, header checksum:u64le, delta base (zero for full codecs)
SEAL_STRUCT = struct.Struct("<32sQ32s")
assert SEAL_STRUCT.size == 72
