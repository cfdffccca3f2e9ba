//! Space written ahead of a log file's end, so that its appends become overwrites.
//!
//! An `fdatasync` after appending to a file also has to allocate the new blocks and commit the
//! filesystem's journal (ext4: a jbd2 commit, which every file on the filesystem shares); after
//! overwriting blocks that are already allocated and written, it flushes data only. On the
//! standard machine a `pwrite` + `fdatasync` of 450 KiB took 0.47–1.27 ms appending against
//! 0.17–0.18 ms overwriting, and two writers side by side (an owner's WAL and a replica's chunk
//! on one disk) 0.26–0.28 against 0.13–0.15 ms for 64 KiB (docs/benchmarks.md). PostgreSQL
//! zero-fills its WAL segments and BookKeeper its journal for the same reason.
//!
//! Writing a whole file ahead costs a page-cache write per byte of log, which a saturated broker
//! on two cores pays in throughput (measured: 2–20 % of 1 KB produce). So the writers here keep
//! only [`AHEAD`] bytes written ahead, topped up a [`STEP`] at a time when they are idle and at
//! most once per [`INTERVAL`]: at low load, where each acknowledgement waits for its own
//! `fdatasync`, that keeps ahead of the log (up to 5 MiB/s of it) and only one in [`STEP`] bytes
//! pays the journal commit; under load, where each `fdatasync` covers a large group commit and
//! shares its journal commit among many records anyway, it costs at most 5 MiB/s of page-cache
//! writes however fast the log grows.
//!
//! The space is written with [`FILL`], not zeros, so that recovery can tell space never written
//! over (after a crash, a page write-back had not reached yet) from damaged records: a record
//! payload may well hold a page of zeros, it does not hold a page of this pattern in phase with
//! its file position. A clean stop cuts the space off; recovery treats it as the end of the log.

use crate::direct;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// The pattern of space written ahead: byte `i` of a file is `FILL[i % 16]`. Read as a frame
/// header its length is about 1.8 GB, so no reader takes it for a frame.
pub(crate) const FILL: [u8; 16] = *b"magnetar:ahead:\n";

/// How much is written in one top-up. Small, since the `fdatasync` that next makes records
/// durable waits for the step's write-back: at 2,000 msg/s, steps of 512 KiB (every 100 ms)
/// gave a replica's append a p99 of 0.85–1.17 ms, steps of 128 KiB (every 25 ms, the same
/// rate) 0.50–0.54 ms (docs/benchmarks.md).
pub(crate) const STEP: u64 = 128 << 10;

/// How far ahead of the written end the writers keep the space, at most.
pub(crate) const AHEAD: u64 = 2 << 20;

/// The least time between two top-ups of one file.
pub(crate) const INTERVAL: Duration = Duration::from_millis(25);

/// A step of fill and one pattern more, for any phase.
static FILLED: std::sync::LazyLock<Vec<u8>> =
    std::sync::LazyLock::new(|| FILL.iter().copied().cycle().take(STEP as usize + FILL.len()).collect());

/// A step of fill at a block boundary (phase 0, as [`direct::BLOCK`] is a multiple of the
/// pattern's length), in a block-aligned buffer for direct writes: the vector and where the
/// step starts in it.
static ALIGNED_FILL: std::sync::LazyLock<(Vec<u8>, usize)> = std::sync::LazyLock::new(|| {
    let mut v = vec![0u8; STEP as usize + direct::BLOCK];
    let at = v.as_ptr().align_offset(direct::BLOCK);
    fill(&mut v[at..at + STEP as usize], 0);
    (v, at)
});

/// Writes the pattern into `bytes` in phase with file position `at`.
pub(crate) fn fill(bytes: &mut [u8], at: u64) {
    let phase = (at % FILL.len() as u64) as usize;
    for (b, f) in bytes.iter_mut().zip(FILL.iter().cycle().skip(phase)) {
        *b = *f;
    }
}

/// Size of the pages write-back writes whole (and of the unit [`unwritten`] looks for).
pub(crate) const PAGE: u64 = 4096;

/// How far a file is written ahead.
#[derive(Debug, Default)]
pub(crate) struct Ahead {
    /// Everything below is either the log or fill (or the file's end).
    filled_to: u64,
    /// When the last top-up was written.
    last: Option<Instant>,
}

impl Ahead {
    /// For a reused file whose earlier content reaches `len`: the log overwrites that without
    /// space written ahead, and a cut removes whatever of it the log has not overwritten.
    pub fn reused(len: u64) -> Self {
        Ahead { filled_to: len, last: None }
    }

    /// Whether a top-up is due with the log written up to `end` in a file of at most `limit`
    /// bytes (the writer rolls to a new file there, so nothing is written ahead past it).
    pub fn wanted(&self, end: u64, limit: u64) -> bool {
        self.filled_to.max(end) < limit && self.filled_to.max(end) - end < AHEAD
    }

    /// How long until a top-up may be written (zero: now).
    pub fn due_in(&self) -> Duration {
        self.last.map_or(Duration::ZERO, |t| INTERVAL.saturating_sub(t.elapsed()))
    }

    /// Writes one [`STEP`] (less near `limit`) of fill after what is already there and starts
    /// its write-back, so that the `fdatasync` that next makes records durable finds the fill's
    /// pages on their way and commits the allocation once for the whole step. With `direct`,
    /// `file` is open for direct writes (see `direct`) and the step is whole blocks from the
    /// first block boundary at or after the end.
    pub fn top_up(&mut self, file: &File, direct: bool, end: u64, limit: u64) -> std::io::Result<()> {
        let mut from = self.filled_to.max(end);
        let mut len = STEP.min(limit.saturating_sub(from));
        if direct {
            from = direct::round_up(from);
            len = direct::round_down(STEP.min(limit.saturating_sub(from)));
        }
        if len == 0 {
            // Nothing fits before the limit: none wanted any more.
            self.filled_to = self.filled_to.max(limit);
            return Ok(());
        }
        self.last = Some(Instant::now());
        if direct {
            let (buf, at) = &*ALIGNED_FILL;
            file.write_all_at(&buf[*at..*at + len as usize], from)?;
        } else {
            let phase = (from % FILL.len() as u64) as usize;
            file.write_all_at(&FILLED[phase..phase + len as usize], from)?;
            crate::segment::start_writeback(file, from, len);
        }
        self.filled_to = from + len;
        Ok(())
    }

    /// A write put log or fill up to `to` (a direct write's last block, filled past the log).
    pub fn covered(&mut self, to: u64) {
        self.filled_to = self.filled_to.max(to);
    }

    /// After a failed top-up (a full disk): no more for this file, and a cut removes whatever
    /// part of the step was written.
    pub fn give_up(&mut self, limit: u64) {
        self.filled_to = self.filled_to.max(limit);
    }

    /// Whether the file holds fill past the log's end `end` (to be cut at a clean stop).
    pub fn past(&self, end: u64) -> bool {
        self.filled_to > end
    }
}

/// Whether `[pos, end)` of `file` holds space written ahead and never written over: the fill
/// from `pos` to the end of its page (when at least a frame header's 8 bytes of it are left),
/// or a whole page of fill further on. Recovery takes that for space a crash left unwritten:
/// a record there was never covered by an `fdatasync` (one would have written that page too).
pub(crate) fn unwritten(file: &File, pos: u64, end: u64) -> std::io::Result<bool> {
    let mut page = [0u8; PAGE as usize];
    let mut at = pos;
    while at < end {
        let page_end = (at / PAGE + 1) * PAGE;
        let stop = page_end.min(end);
        let bytes = &mut page[..(stop - at) as usize];
        file.read_exact_at(bytes, at)?;
        let counts = if at == pos { stop == page_end && stop - at >= 8 } else { stop == page_end };
        if counts && is_fill(bytes, at) {
            return Ok(true);
        }
        at = stop;
    }
    Ok(false)
}

/// Whether `[from, to)` of `file` holds nothing but zeros and fill: space no record was
/// written to.
pub(crate) fn unused(file: &File, from: u64, to: u64) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 1 << 16];
    let mut at = from;
    while at < to {
        let n = buf.len().min((to - at) as usize);
        file.read_exact_at(&mut buf[..n], at)?;
        let zeros = |b: &[u8]| b.iter().all(|&x| x == 0);
        // Page by page (in file positions): a page is all zeros or all fill.
        let mut i = 0;
        while i < n {
            let stop = n.min(i + (PAGE - (at + i as u64) % PAGE) as usize);
            let piece = &buf[i..stop];
            if !zeros(piece) && !is_fill(piece, at + i as u64) {
                return Ok(false);
            }
            i = stop;
        }
        at += n as u64;
    }
    Ok(true)
}

/// Whether `bytes`, read at file position `at`, are fill in phase with that position.
fn is_fill(bytes: &[u8], at: u64) -> bool {
    let phase = (at % FILL.len() as u64) as usize;
    bytes.iter().zip(FILL.iter().cycle().skip(phase)).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().write_all_at(bytes, 0).unwrap();
        let file = f.reopen().unwrap();
        (f, file)
    }

    #[test]
    fn top_ups_write_fill_in_phase_up_to_ahead_and_never_past_the_limit() {
        let (_t, file) = file_with(&[7u8; 1000]);
        let mut a = Ahead::default();
        assert!(a.wanted(1000, 64 << 20));
        while a.wanted(1000, 64 << 20) {
            a.top_up(&file, false, 1000, 64 << 20).unwrap();
            assert!(a.due_in() > INTERVAL / 2, "the next step waits");
        }
        assert_eq!(file.metadata().unwrap().len(), 1000 + AHEAD);
        assert!(a.past(1000));
        assert!(unused(&file, 1000, 1000 + AHEAD).unwrap());
        assert!(!unused(&file, 999, 1000 + AHEAD).unwrap(), "a log byte is not unused");
        // Near the limit only what fits is written, then nothing.
        let mut b = Ahead::default();
        b.top_up(&file, false, 1000, 1000 + 100).unwrap();
        assert!(!b.wanted(1000, 1100));
        // Once the log passes the fill, top-ups start from the log's end.
        assert!(a.wanted(1000 + AHEAD, 64 << 20));
        assert!(!a.past(1000 + AHEAD));
    }

    #[test]
    fn unwritten_needs_a_page_of_fill_or_the_fill_to_the_end_of_the_first_page() {
        let page = PAGE as usize;
        let mut bytes = vec![1u8; 4 * page];
        let fill = |b: &mut [u8], at: usize| {
            for (i, x) in b.iter_mut().enumerate() {
                *x = FILL[(at + i) % 16];
            }
        };
        fill(&mut bytes[2 * page..3 * page], 2 * page);
        let (_t, file) = file_with(&bytes);
        assert!(unwritten(&file, 100, 4 * page as u64).unwrap(), "a whole page of fill after pos");
        assert!(!unwritten(&file, 100, 2 * page as u64 + 10).unwrap(), "part of a page is not enough");
        // The fill's rest of the page from pos.
        let mut b2 = vec![1u8; 2 * page];
        fill(&mut b2[page - 100..page], page - 100);
        let (_t2, f2) = file_with(&b2);
        assert!(unwritten(&f2, (page - 100) as u64, 2 * page as u64).unwrap());
        assert!(!unwritten(&f2, (page - 101) as u64, 2 * page as u64).unwrap(), "a log byte at pos");
        // Zeros, and fill out of phase, are not fill.
        let mut b3 = vec![0u8; 3 * page];
        fill(&mut b3[page..2 * page], page + 1);
        let (_t3, f3) = file_with(&b3);
        assert!(!unwritten(&f3, 0, 3 * page as u64).unwrap());
        assert!(!unused(&f3, 0, 3 * page as u64).unwrap());
        assert!(unused(&f3, 2 * page as u64, 3 * page as u64).unwrap(), "zeros are unused");
    }
}
