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

/// Granularity of the buffer's mapping: one transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// A buffer that hands out block-aligned slices, grown to the largest asked for and reused.
///
/// Its memory is a mapping of its own that asks for transparent huge pages (`MADV_HUGEPAGE`):
/// a direct write pins every page of its buffer for the time of the I/O, and with small pages
/// pinning an 8 MB write's 2,048 pages took a quarter of the WAL thread's time in a 64 KB
/// produce (docs/benchmarks.md). Where the kernel gives no huge page (THP off or unavailable,
/// or the process turned them off altogether) it is small pages, as before. A buffer holds at
/// least one huge page once used: one per writing thread and per replica source, a few MiB in
/// all.
#[derive(Default)]
pub(crate) struct Aligned(Option<Mapping>);

impl Aligned {
    /// A block-aligned slice of `len` bytes (its content is whatever the last user left).
    pub(crate) fn get(&mut self, len: usize) -> &mut [u8] {
        if self.0.as_ref().is_none_or(|m| m.len < len) {
            // The old content need not survive a growth: drop the mapping first, so that the
            // two are never held at once.
            self.0 = None;
            self.0 = Some(Mapping::new(len.max(1).next_multiple_of(HUGE_PAGE)));
        }
        let m = self.0.as_mut().expect("mapped above");
        &mut m.bytes()[..len]
    }
}

/// An anonymous private mapping of `len` bytes, page-aligned (so block-aligned: a page is a
/// multiple of [`BLOCK`]), owned by its holder alone.
struct Mapping {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is reached only through its one owner (no aliasing pointer is kept), so
// moving the owner to another thread moves all access with it.
#[allow(unsafe_code)]
unsafe impl Send for Mapping {}

#[allow(unsafe_code)] // mmap, madvise and munmap, which std does not wrap
impl Mapping {
    fn new(len: usize) -> Self {
        // SAFETY: a fresh anonymous private mapping aliases no memory of ours; the result is
        // checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            // As a failed allocation of a Vec would: out of memory or address space.
            panic!("cannot map {len} bytes for direct writes: {}", std::io::Error::last_os_error());
        }
        // SAFETY: advice on the mapping just made; an error (no THP in this kernel) changes
        // nothing and is ignored.
        unsafe { libc::madvise(ptr, len, libc::MADV_HUGEPAGE) };
        Mapping { ptr: std::ptr::NonNull::new(ptr.cast()).expect("mmap returned a non-null address"), len }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` maps `len` readable and writable bytes for as long as `self` lives, and
        // the `&mut self` borrow makes this slice the only access to them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[allow(unsafe_code)]
impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, which no slice outlives (slices
        // borrow `self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_slices_start_at_a_block_boundary_whatever_their_length() {
        let mut a = Aligned::default();
        for len in [1, BLOCK, 3 * BLOCK + 7, 10, HUGE_PAGE + 1] {
            let s = a.get(len);
            assert_eq!(s.len(), len);
            assert_eq!(s.as_ptr() as usize % BLOCK, 0);
            // Every byte is there to write and read back.
            s.fill(0xa5);
            assert!(s.iter().all(|b| *b == 0xa5));
        }
        assert_eq!((round_up(1), round_up(4096), round_down(8191)), (4096, 4096, 4096));
    }
}
