//! Direct I/O (`O_DIRECT`): whole blocks written straight to the disk, past the page cache,
//! whose new pages cost a first write dearly where the host reclaims free guest memory (see
//! `pagecache`). Segments (`segment`) and replica chunks (`replica`) are written this way when
//! `StorageConfig::direct_segment_writes` is set.
//!
//! A direct write's file offset, length and buffer address are multiples of [`BLOCK`]; the
//! writers keep the bytes past their last whole block in memory and write that block again,
//! with the same bytes in front, when more follow.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// File offsets and lengths of direct writes are multiples of this (the largest logical block
/// size of common disks).
pub(crate) const BLOCK: usize = 4096;

/// Opens `path` (which exists) for direct writes. Fails on a file system without `O_DIRECT`
/// (tmpfs), and the caller then writes through the page cache.
pub(crate) fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path)
}

/// `n` rounded up to a whole number of blocks.
pub(crate) fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// `n` rounded down to a whole number of blocks.
pub(crate) fn round_down(n: u64) -> u64 {
    n / BLOCK as u64 * BLOCK as u64
}

/// A buffer that hands out block-aligned slices, grown to the largest asked for and reused.
#[derive(Default)]
pub(crate) struct Aligned(Vec<u8>);

impl Aligned {
    /// A block-aligned slice of `len` bytes (its content is whatever the last user left).
    pub(crate) fn get(&mut self, len: usize) -> &mut [u8] {
        if self.0.len() < len + BLOCK {
            self.0.resize(len + BLOCK, 0);
        }
        let at = self.0.as_ptr().align_offset(BLOCK);
        &mut self.0[at..at + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_slices_start_at_a_block_boundary_whatever_their_length() {
        let mut a = Aligned::default();
        for len in [1, BLOCK, 3 * BLOCK + 7, 10] {
            let s = a.get(len);
            assert_eq!(s.len(), len);
            assert_eq!(s.as_ptr() as usize % BLOCK, 0);
        }
        assert_eq!((round_up(1), round_up(4096), round_down(8191)), (4096, 4096, 4096));
    }
}
