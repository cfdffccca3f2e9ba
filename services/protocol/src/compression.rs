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
        CompressionType::Lz4 => lz4_flex::block::decompress(data, uncompressed_size).map_err(|e| failed(e.to_string()))?,
        CompressionType::Zlib => {
            let mut output = Vec::with_capacity(uncompressed_size);
            // One byte more than announced is enough to tell "too long" without inflating a bomb.
            flate2::read::ZlibDecoder::new(data)
                .take(uncompressed_size as u64 + 1)
                .read_to_end(&mut output)
                .map_err(|e| failed(e.to_string()))?;
            output
        }
        // Fails if the frame would expand beyond the capacity it is given.
        CompressionType::Zstd => zstd::bulk::decompress(data, uncompressed_size).map_err(|e| failed(e.to_string()))?,
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
