"""Canonical bytes (spec Part I): element types, canonical rows, chunking, the Merkle tree and fingerprints."""
