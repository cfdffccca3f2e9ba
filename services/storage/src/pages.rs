//! Page checksums of a WAL file kept for reuse: how recovery tells a page that a crash left
//! unwritten in a reused file from a damaged one.
//!
//! A reused file is overwritten in place, so a crash during a group commit's `fdatasync` can
//! leave later pages of the commit on disk and an earlier one not: that page still holds what
//! the file held before, and intact frames may follow it. Nothing from there on was
//! acknowledged (the `fdatasync` did not return), so it is the end of the log, as for space
//! written ahead (`fill`). Before a trimmed file is kept, the trimmer writes the CRC-32C of each
//! of its whole pages to `{seq}.pages` (fsynced), which follows the file when it is reused; and
//! over the earlier content the flusher ends every group commit at a page boundary (a padding
//! frame), so no page holds two commits and an unwritten page holds its earlier content whole.
//! A page whose checksum is its earlier one is unwritten; a damaged frame without one is
//! corruption. (A page written with exactly the bytes it held before, at the same position,
//! would pass for unwritten: it takes a record payload repeated at the same file offset, and
//! matters only where a frame is also damaged.)

use crate::fill::PAGE;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"MGPG";

/// Where the page checksums of the WAL file (or the kept file) `path` are.
pub(crate) fn pages_path(path: &Path) -> PathBuf {
    path.with_extension("pages")
}

/// The checksums of a file's whole pages, taken from the bytes as they are written to it (from
/// its start, in order): the flusher feeds each group commit's bytes here, so that trimming
/// the file need not read it back (it read a gigabyte per gigabyte of log, about 7 % of a
/// saturated broker's CPU, docs/benchmarks.md).
#[derive(Debug, Default)]
pub(crate) struct PageSums {
    whole: Vec<u32>,
    /// The checksum of the bytes fed into the page being filled, and how many there are.
    crc: u32,
    filled: usize,
}

impl PageSums {
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (PAGE as usize - self.filled).min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            self.crc = if self.filled == 0 {
                magnetar_core::hash::crc32c(now)
            } else {
                magnetar_core::hash::crc32c_append(self.crc, now)
            };
            self.filled += n;
            if self.filled == PAGE as usize {
                self.whole.push(self.crc);
                self.filled = 0;
            }
            bytes = rest;
        }
    }

    /// The checksums of the whole pages fed so far.
    pub(crate) fn into_whole(self) -> Vec<u32> {
        self.whole
    }
}

/// Writes the checksums of every whole page of `path` to [`pages_path`], durably. `known`
/// holds those of its first pages (from [`PageSums`]: the file as its flusher wrote it); the
/// pages after them are read. Returns the bytes read.
pub(crate) fn write(path: &Path, known: &[u32]) -> std::io::Result<u64> {
    let mut file = File::open(path)?;
    let mut out = Vec::with_capacity(12 + 4 * known.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]);
    let mut count = known.len() as u32;
    for sum in known {
        out.extend_from_slice(&sum.to_le_bytes());
    }
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(known.len() as u64 * PAGE))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        read += n as u64;
        for page in buf[..n].chunks_exact(PAGE as usize) {
            out.extend_from_slice(&magnetar_core::hash::crc32c(page).to_le_bytes());
            count += 1;
        }
        if n < buf.len() {
            break;
        }
    }
    out[4..8].copy_from_slice(&count.to_le_bytes());
    let crc = magnetar_core::hash::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let target = pages_path(path);
    let mut f = File::create(&target)?;
    f.write_all(&out)?;
    f.sync_all()?;
    Ok(read)
}

/// Reads as much of `buf` as the file has left.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The page checksums of the reused WAL file `path`: none when it has none (a new file) or
/// they do not check out (then a damaged frame in it is judged without them: corruption).
pub(crate) fn read(path: &Path) -> Vec<u32> {
    let Ok(bytes) = std::fs::read(pages_path(path)) else { return Vec::new() };
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else { return Vec::new() };
    if body.len() < 8 || &body[..4] != MAGIC || magnetar_core::hash::crc32c(body) != u32::from_le_bytes(*crc) {
        tracing::warn!(file = %pages_path(path).display(), "page checksums of a reused wal file do not check out; ignored");
        return Vec::new();
    }
    let count = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes")) as usize;
    let sums = &body[8..];
    if sums.len() != count * 4 {
        return Vec::new();
    }
    sums.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
}

/// Whether a page from the one `pos` is in up to `end` still holds the file's earlier content.
pub(crate) fn unwritten(file: &File, pos: u64, end: u64, pages: &[u32]) -> std::io::Result<bool> {
    let mut page = vec![0u8; PAGE as usize];
    let mut index = pos / PAGE;
    while index * PAGE < end && (index as usize) < pages.len() {
        file.read_exact_at(&mut page, index * PAGE)?;
        if magnetar_core::hash::crc32c(&page) == pages[index as usize] {
            return Ok(true);
        }
        index += 1;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_round_trip_and_find_a_page_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.wal");
        let old: Vec<u8> = (0..PAGE as usize * 3 + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &old).unwrap();
        assert_eq!(write(&path, &[]).unwrap(), old.len() as u64);
        let sums = read(&path);
        assert_eq!(sums.len(), 3, "whole pages only");
        // Pages 0 and 2 rewritten, page 1 left as it was.
        let mut new = old.clone();
        new[..PAGE as usize].fill(7);
        new[2 * PAGE as usize..].fill(9);
        std::fs::write(&path, &new).unwrap();
        let f = File::open(&path).unwrap();
        assert!(!unwritten(&f, 10, PAGE, &sums).unwrap());
        assert!(unwritten(&f, 10, PAGE + 1, &sums).unwrap());
        assert!(!unwritten(&f, 2 * PAGE + 5, 3 * PAGE, &sums).unwrap());
        // A damaged checksum file is no checksums.
        let p = pages_path(&path);
        let mut b = std::fs::read(&p).unwrap();
        b[9] ^= 1;
        std::fs::write(&p, b).unwrap();
        assert!(read(&path).is_empty());
    }

    #[test]
    fn sums_fed_as_written_are_the_ones_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.wal");
        let bytes: Vec<u8> = (0..PAGE as usize * 5 + 1234).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        write(&path, &[]).unwrap();
        let read_back = read(&path);
        assert_eq!(read_back.len(), 5);
        // Fed in pieces that straddle page boundaries, as group commits do.
        let mut sums = PageSums::default();
        for piece in bytes.chunks(1000) {
            sums.feed(piece);
        }
        let fed = sums.into_whole();
        assert_eq!(fed, read_back);
        // With the first pages known, the file is read from there: same checksums file.
        let whole = std::fs::read(pages_path(&path)).unwrap();
        for (known, read) in [(&fed[..2], bytes.len() - 2 * PAGE as usize), (&fed[..], 1234)] {
            assert_eq!(write(&path, known).unwrap(), read as u64);
            assert_eq!(std::fs::read(pages_path(&path)).unwrap(), whole);
        }
    }
}
