//! CRC-32C (Castagnoli), the checksum of Pulsar's frames and of every byte format Magnetar
//! stores (WAL, segments, replica files, page checksums), computed in this one place;
//! Murmur3 32-bit hash, as Pulsar's `Murmur3_32Hash` computes it, so a key lands on the same
//! partition index here as with a Pulsar client using the `Murmur3_32Hash` hashing scheme; and
//! the bundle hash of a topic name, as Pulsar's namespace bundles use it.

/// The position of a topic in its namespace's hash range (`0x00000000`..`0xffffffff`), which
/// decides its bundle: CRC-32 (IEEE) of the full name (`persistent://t/ns/x-partition-0`), as
/// Pulsar's `NamespaceBundleFactory` hashes it, so a topic falls into the same bundle range.
pub fn bundle_hash(topic: &str) -> u32 {
    crc32fast::hash(topic.as_bytes())
}

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(data) as u32
}

/// CRC-32C of some bytes followed by `data`, given `crc`, the CRC-32C of those bytes.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    // The digest's state is the running register, before the final inversion that `crc` had.
    let mut digest = crc_fast::Digest::new_with_init_state(crc_fast::CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(data);
    digest.finalize() as u32
}

/// Murmur3 x86 32-bit with seed 0 over the UTF-8 bytes of `key`.
pub fn murmur3_32(key: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let chunks = key.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let mut k: u32 = 0;
    for (i, b) in tail.iter().enumerate() {
        k |= (*b as u32) << (8 * i);
    }
    if !tail.is_empty() {
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= key.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Java's `String.hashCode()` over UTF-16 code units: Pulsar's default `JavaStringHash`.
pub fn java_string_hash(key: &str) -> i32 {
    key.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Partition for a key with the Java client's default scheme (`JavaStringHash`).
pub fn partition_for_key_java(key: &str, partitions: u32) -> u32 {
    ((java_string_hash(key) & 0x7fff_ffff) as u32) % partitions
}

/// Key_Shared hash slot of a key (0..65536), as Pulsar's sticky/auto-split ranges use.
pub fn key_slot(key: &[u8]) -> u16 {
    (murmur3_32(key) % 65_536) as u16
}

/// Partition for a message key: Pulsar masks the hash to a non-negative int before the modulo.
pub fn partition_for_key(key: &str, partitions: u32) -> u32 {
    debug_assert!(partitions > 0);
    (murmur3_32(key.as_bytes()) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_castagnoli_check_value_in_whole_and_appended() {
        // The check value of CRC-32C (iSCSI) over "123456789", and RFC 3720's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b""), 0);
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        for split in [0, 1, 3, 4, 100, 1024, 4096, 5000] {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c_append(crc32c(a), b), crc32c(&data), "split at {split}");
        }
        assert_eq!(crc32c_append(crc32c(b"1234"), b"56789"), 0xe306_9283);
    }

    #[test]
    fn matches_reference_vectors() {
        // Reference values of MurmurHash3_x86_32 with seed 0.
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
        assert_eq!(murmur3_32(b"The quick brown fox jumps over the lazy dog"), 0x2e4f_f723);
    }

    #[test]
    fn java_string_hash_matches_java() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash(""), 0);
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        for n in 1..16 {
            let p = partition_for_key("user-42", n);
            assert!(p < n);
            assert_eq!(p, partition_for_key("user-42", n));
        }
    }
}

#[cfg(test)]
mod bundle_hash_tests {
    #[test]
    fn bundle_hash_is_crc32_ieee() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(super::bundle_hash("123456789"), 0xCBF4_3926);
        assert_eq!(super::bundle_hash(""), 0);
    }
}
