//! Section checksums: XXH3-64, chosen for speed (tens of GB/s with SIMD on
//! x86-64 and aarch64) so that verifying every weight at load stays cheap.
//! It detects corruption, not tampering: signatures do that.

pub(crate) fn checksum(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}
