//! Keeping the log's writes on memory the machine already backs.
//!
//! Every byte a producer sends is written through the page cache into file pages that are new:
//! a segment's, a replica chunk's. A virtual machine whose memory balloon reports free pages to
//! its host (virtio's free page reporting, which some hypervisors turn on; the standard machine
//! has it) hands free memory back, and the first write into each such page then waits for the
//! host to back it. On
//! the standard machine, writing a new file runs at 0.4–1.9 GB/s, into pages freed a moment
//! before at 6 GB/s, over cached pages at 15 GB/s; a 512 KiB group commit's worth took 1.07 ms
//! into a new file against 0.04 ms over cached pages (docs/benchmarks.md). There the page
//! cache's growth, not the disk, bounded produce.
//!
//! So with a window set (`StorageConfig::page_cache_window_bytes`), data the broker will not read
//! soon leaves the page cache once it is on disk, and the pages it held are the next ones written
//! into: a segment being written keeps its last window cached (readers a little behind the
//! in-memory tail find it there), a replica chunk keeps nothing once fsynced (only a takeover
//! reads it). The price is that a reader further behind reads from the disk. Readers are left
//! to the kernel: dropping what a catch-up read had read behind it measured no faster, and a
//! second reader of the same backlog then read it from the disk again. Elsewhere (bare metal, VMs
//! without free page reporting) new pages cost nothing special and the window is off by default.

use std::fs::File;

/// A segment's written-back bytes are dropped from the page cache in steps of at least this.
pub(crate) const DROP_STEP: u64 = 1 << 20;

const PAGE: u64 = 4096;

/// The window `auto` resolves to where free pages go back to the host.
pub const AUTO_WINDOW_BYTES: u64 = 8 << 20;

/// Drops `[from, from + len)` of `file` from the page cache: the whole pages in it that are clean
/// (dirty or locked pages stay; the kernel starts their writeback).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the one syscall std has no wrapper for
pub(crate) fn drop_cached(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return;
    }
    // SAFETY: a plain syscall on a file descriptor we own; no memory is passed.
    let rc = unsafe {
        libc::posix_fadvise(file.as_raw_fd(), from as libc::off_t, len as libc::off_t, libc::POSIX_FADV_DONTNEED)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::from_raw_os_error(rc), "posix_fadvise(DONTNEED) failed");
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn drop_cached(_file: &File, _from: u64, _len: u64) {}

/// The range a writer drops after its writeback reached `written_back`, keeping `window` bytes
/// cached behind it, when that range is at least a step long: `(from, len)`. It ends on a page
/// boundary (the kernel drops whole pages only, so a range ending inside one would leave it).
pub(crate) fn behind(dropped: u64, written_back: u64, window: u64) -> Option<(u64, u64)> {
    let to = written_back.checked_sub(window)? & !(PAGE - 1);
    (to >= dropped + DROP_STEP).then_some((dropped, to - dropped))
}

/// Whether this machine's memory balloon reports free pages to the hypervisor, which then backs
/// them again on first use: the case the window is for (see the module's comment).
pub fn host_reclaims_free_pages() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/drivers/virtio_balloon") else { return false };
    devices.flatten().any(|d| std::fs::read_to_string(d.path().join("features")).is_ok_and(|f| reports_free_pages(&f)))
}

/// Reads a virtio device's `features` file (one `0`/`1` per feature bit, bit 0 first) for
/// VIRTIO_BALLOON_F_REPORTING (bit 5).
fn reports_free_pages(features: &str) -> bool {
    features.trim().as_bytes().get(5) == Some(&b'1')
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`; memory already
/// backed by huge pages keeps them), except for the mappings that ask for them: the buffers of
/// direct writes (`direct::Aligned`), where the kernel supports that exception
/// (`PR_THP_DISABLE_EXCEPT_ADVISED`, Linux 6.18); on an older kernel, for all memory. Buffers
/// of large messages come and go faster than the allocator reuses their memory, and every new
/// huge page is zeroed whole on first touch: with the kernel's `always` a 64 KB produce spent a
/// quarter of the broker's CPU doing that (docs/benchmarks.md). Redis turns them off for itself
/// in the same way. Returns whether the exception is in force, as the kernel reports it back
/// (`PR_GET_THP_DISABLE`).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // the one syscall std has no wrapper for
pub fn disable_transparent_huge_pages() -> std::io::Result<bool> {
    /// Not in this libc's headers yet (linux/prctl.h of 6.18).
    const PR_THP_DISABLE_EXCEPT_ADVISED: libc::c_ulong = 1 << 1;
    let set = |flags: libc::c_ulong| {
        // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and touches no memory of ours.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1 as libc::c_ulong, flags, 0 as libc::c_ulong, 0 as libc::c_ulong)
        }
    };
    // An older kernel refuses the flag (EINVAL): off for everything, as before.
    if set(PR_THP_DISABLE_EXCEPT_ADVISED) != 0 && set(0) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above; PR_GET_THP_DISABLE returns the flags in force (1: disabled, 3: disabled
    // except where advised).
    let state = unsafe {
        libc::prctl(
            libc::PR_GET_THP_DISABLE,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    match state {
        1 => Ok(false),
        s if s > 0 && (s as libc::c_ulong) & PR_THP_DISABLE_EXCEPT_ADVISED != 0 => Ok(true),
        s => Err(std::io::Error::other(format!("PR_GET_THP_DISABLE reports {s} after it was set"))),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn disable_transparent_huge_pages() -> std::io::Result<bool> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// How many pages of `[from, from + len)` of `file` are in the page cache (`mincore`; for tests).
#[cfg(all(any(test, feature = "conformance"), target_os = "linux"))]
#[allow(unsafe_code)]
pub fn resident_pages(file: &File, from: u64, len: u64) -> usize {
    use std::os::fd::AsRawFd;
    assert!(from.is_multiple_of(PAGE) && len > 0);
    let pages = len.div_ceil(PAGE) as usize;
    // SAFETY: a read-only shared mapping of a range of our own file, unmapped below; mincore
    // writes one byte per page into a vector of that many.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            from as libc::off_t,
        );
        assert!(map != libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        let mut vec = vec![0u8; pages];
        let rc = libc::mincore(map, len as usize, vec.as_mut_ptr());
        libc::munmap(map, len as usize);
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().filter(|b| *b & 1 == 1).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_drops_whole_steps_behind_its_window() {
        let w = 8 << 20;
        // Not before the window plus a step is written back.
        assert_eq!(behind(0, w, w), None);
        assert_eq!(behind(0, w + DROP_STEP - 1, w), None);
        assert_eq!(behind(0, w + DROP_STEP, w), Some((0, DROP_STEP)));
        // Whole pages only.
        assert_eq!(behind(0, w + DROP_STEP + 4095, w), Some((0, DROP_STEP)));
        assert_eq!(behind(0, w + DROP_STEP + 4096, w), Some((0, DROP_STEP + 4096)));
        // From where the last drop ended.
        assert_eq!(behind(DROP_STEP, w + 5 * DROP_STEP, w), Some((DROP_STEP, 4 * DROP_STEP)));
        // Nothing kept (a replica chunk once fsynced).
        assert_eq!(behind(0, 3 << 20, 0), Some((0, 3 << 20)));
    }

    #[test]
    fn free_page_reporting_is_bit_5_of_the_balloons_features() {
        // This machine's balloon: stats, deflate on OOM, free page reporting.
        assert!(reports_free_pages("0110010100000000000000000000000010000000\n"));
        assert!(!reports_free_pages("0110000100000000000000000000000010000000\n"));
        assert!(!reports_free_pages("011"));
    }
}
