//! The payload codecs of `MessageMetadata.compression`, in the formats Pulsar clients use:
//! LZ4 raw block (not the frame format), zlib stream with its header, zstd frame, snappy raw.
//!
//! Decompression trusts nothing: the announced `uncompressed_size` is checked against a limit
//! before any allocation, and the output must have exactly that size.

use std::io::{Read, Write};

use crate::error::ProtocolError;
use crate::proto::CompressionType;

/// zstd level Pulsar's clients use.
const ZSTD_LEVEL: i32 = 3;

/// Compresses `data` with `codec` (`None` copies it).
pub fn compress(codec: CompressionType, data: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    let failed = |reason: String| ProtocolError::Compression { codec, reason };
    match codec {
        CompressionType::None => Ok(data.to_vec()),
        CompressionType::Lz4 => Ok(lz4_flex::block::compress(data)),
        CompressionType::Zlib => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(data).map_err(|e| failed(e.to_string()))?;
            encoder.finish().map_err(|e| failed(e.to_string()))
        }
        CompressionType::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL).map_err(|e| failed(e.to_string())),
        CompressionType::Snappy => snap::raw::Encoder::new().compress_vec(data).map_err(|e| failed(e.to_string())),
    }
}

/// The first chunk of snappy's framed format: type 0xff, length 6, `sNaPpY`.
const SNAPPY_STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Reads a decoding stream to its end, but at most one byte more than the `size` announced: enough
/// to tell "too long" without inflating a compression bomb.
fn read_capped(reader: impl Read, size: usize) -> std::io::Result<Vec<u8>> {
    let mut output = Vec::with_capacity(size);
    reader.take(size as u64 + 1).read_to_end(&mut output)?;
    Ok(output)
}

/// Decompresses `data` that must expand to exactly `uncompressed_size` bytes, refusing any size
/// above `limit`. `None` returns the data as it is (its size is not checked: producers leave
/// `uncompressed_size` unset on uncompressed payloads).
pub fn decompress(
    codec: CompressionType,
    data: &[u8],
    uncompressed_size: usize,
    limit: usize,
) -> Result<Vec<u8>, ProtocolError> {
    if codec == CompressionType::None {
        return Ok(data.to_vec());
    }
    if uncompressed_size > limit {
        return Err(ProtocolError::UncompressedTooLarge { size: uncompressed_size, limit });
    }
    let failed = |reason: String| ProtocolError::Decompression { codec, reason };
    let output = match codec {
        CompressionType::None => unreachable!("returned above"),
        // The block decoder never writes past the size it is given.
        CompressionType::Lz4 => {
            lz4_flex::block::decompress(data, uncompressed_size).map_err(|e| failed(e.to_string()))?
        }
        CompressionType::Zlib => {
            read_capped(flate2::read::ZlibDecoder::new(data), uncompressed_size).map_err(|e| failed(e.to_string()))?
        }
        // Fails if the frame would expand beyond the capacity it is given.
        CompressionType::Zstd => zstd::bulk::decompress(data, uncompressed_size).map_err(|e| failed(e.to_string()))?,
        // pulsar-rs writes snappy's framed format where Pulsar's Java and C++ clients write a
        // raw block. A framed stream starts with its stream identifier; a raw block could too in
        // theory, so a payload is read as framed only if, as a raw block, it would not announce
        // the size the metadata gives.
        CompressionType::Snappy
            if data.starts_with(SNAPPY_STREAM_ID)
                && snap::raw::decompress_len(data).ok() != Some(uncompressed_size) =>
        {
            read_capped(snap::read::FrameDecoder::new(data), uncompressed_size).map_err(|e| failed(e.to_string()))?
        }
        CompressionType::Snappy => {
            let announced = snap::raw::decompress_len(data).map_err(|e| failed(e.to_string()))?;
            if announced != uncompressed_size {
                return Err(failed(format!("expands to {announced} bytes, metadata says {uncompressed_size}")));
            }
            snap::raw::Decoder::new().decompress_vec(data).map_err(|e| failed(e.to_string()))?
        }
    };
    if output.len() > uncompressed_size {
        return Err(failed(format!("expands to more than the {uncompressed_size} bytes the metadata says")));
    }
    if output.len() < uncompressed_size {
        return Err(failed(format!("expands to {} bytes, metadata says {uncompressed_size}", output.len())));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODECS: [CompressionType; 5] = [
        CompressionType::None,
        CompressionType::Lz4,
        CompressionType::Zlib,
        CompressionType::Zstd,
        CompressionType::Snappy,
    ];

    fn sample() -> Vec<u8> {
        b"pulsar magnetar ".iter().copied().cycle().take(10_000).collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in CODECS {
            let compressed = compress(codec, &data).unwrap();
            if codec != CompressionType::None {
                assert!(compressed.len() < data.len() / 4, "{codec:?} did not compress");
            }
            assert_eq!(decompress(codec, &compressed, data.len(), 1 << 20).unwrap(), data, "{codec:?}");
        }
    }

    #[test]
    fn snappy_framed_streams_as_pulsar_rs_sends_them_are_read_too() {
        use std::io::Write;
        let data = sample();
        let mut framed = Vec::new();
        let mut w = snap::write::FrameEncoder::new(&mut framed);
        w.write_all(&data).unwrap();
        drop(w);
        assert_eq!(decompress(CompressionType::Snappy, &framed, data.len(), 1 << 20).unwrap(), data);
        // The announced size still binds: shorter or longer output is refused.
        assert!(decompress(CompressionType::Snappy, &framed, data.len() - 1, 1 << 20).is_err());
        assert!(decompress(CompressionType::Snappy, &framed, data.len() + 1, 1 << 20).is_err());
    }

    #[test]
    fn codecs_use_the_formats_pulsar_clients_use() {
        let data = sample();
        // zlib stream: CMF 0x78 (deflate, 32 KB window).
        assert_eq!(compress(CompressionType::Zlib, &data).unwrap()[0], 0x78);
        // zstd frame magic, little-endian 0xFD2FB528.
        assert_eq!(compress(CompressionType::Zstd, &data).unwrap()[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        // LZ4 raw block, not the frame format (whose magic is 04 22 4d 18).
        assert_ne!(compress(CompressionType::Lz4, &data).unwrap()[..4], [0x04, 0x22, 0x4d, 0x18]);
        // Snappy raw: starts with the uncompressed length as a varint (10000 = 0x90 0x4e).
        assert_eq!(compress(CompressionType::Snappy, &data).unwrap()[..2], [0x90, 0x4e]);
    }

    #[test]
    fn a_hostile_uncompressed_size_is_refused_before_allocating() {
        let compressed = compress(CompressionType::Lz4, b"tiny").unwrap();
        for codec in &CODECS[1..] {
            let error = decompress(*codec, &compressed, u32::MAX as usize, 5 << 20).unwrap_err();
            assert!(matches!(error, ProtocolError::UncompressedTooLarge { .. }), "{codec:?}: {error}");
        }
    }

    #[test]
    fn a_wrong_uncompressed_size_is_an_error() {
        let data = sample();
        for codec in &CODECS[1..] {
            let compressed = compress(*codec, &data).unwrap();
            for size in [data.len() - 1, data.len() + 1] {
                let error = decompress(*codec, &compressed, size, 1 << 20).unwrap_err();
                assert!(matches!(error, ProtocolError::Decompression { .. }), "{codec:?} {size}: {error}");
            }
        }
    }

    #[test]
    fn garbage_does_not_decompress() {
        let garbage = [0xffu8; 64];
        for codec in &CODECS[1..] {
            assert!(decompress(*codec, &garbage, 1000, 1 << 20).is_err(), "{codec:?}");
        }
    }
}
