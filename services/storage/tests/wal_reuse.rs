//! Reused WAL files: a trimmed file is kept and overwritten as a later one, and nothing it held
//! before ever comes back, whatever a crash leaves after the new frames; files written before
//! frames were salted are still replayed, and never reused.

mod common;

use bytes::Bytes;
use common::*;
use magnetar_storage::{AuxRecord, Checkpointer, StorageConfig};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct AlwaysCheckpointed;

#[async_trait::async_trait]
impl Checkpointer for AlwaysCheckpointed {
    async fn checkpoint(&self) -> Result<(), String> {
        Ok(())
    }
}

fn small_wal(dir: &Path) -> StorageConfig {
    StorageConfig { wal_file_bytes: 16 << 10, ..config(dir) }
}

fn wal_dir(dir: &Path) -> PathBuf {
    dir.join("wal")
}

/// Records `from..to` with an aux record naming each batch of 10, so that any replayed leftover
/// of a trimmed file shows up among the aux records a later open returns.
async fn append_with_aux(s: &magnetar_storage::Storage, from: u64, to: u64, tag: &str) -> Vec<(u64, u64)> {
    let mut ids = Vec::new();
    for i in (from..to).step_by(10) {
        ids.extend(append_range(s, 1, i, (i + 10).min(to), 10).await);
        s.append_aux(1, Bytes::from(format!("{tag}-{i}"))).await.unwrap();
    }
    ids
}

fn tags(aux: &[AuxRecord]) -> Vec<String> {
    aux.iter().map(|a| String::from_utf8_lossy(&a.data).into_owned()).collect()
}

fn assert_all(s: &magnetar_storage::Storage, ids: &[(u64, u64)]) {
    let all = read_all(s, 1, 0);
    assert_eq!(all.len(), ids.len());
    for (r, &(off, base)) in all.iter().zip(ids) {
        check(r, off);
        assert_eq!(r.segment_base, base);
    }
}

/// Opens a storage, writes and trims several WAL files with aux records in them, and returns it
/// with the records written and the trimmed files kept for reuse (with their bytes).
async fn trimmed(dir: &Path) -> (Arc<magnetar_storage::Storage>, Vec<(u64, u64)>, Vec<(PathBuf, Vec<u8>)>) {
    let (s, _) = open(small_wal(dir));
    let mut ids = append_with_aux(&s, 0, 800, "old").await;
    // Kept until now by their aux records (no checkpointer yet).
    let with_aux = files_with_ext(&wal_dir(dir), ".wal").len();
    assert!(with_aux > 3, "several wal files");
    // Records only, until every file with aux records is complete (trimmable).
    let mut next = 800;
    while files_with_ext(&wal_dir(dir), ".wal").len() < with_aux + 1 {
        ids.extend(append_range(&s, 1, next, next + 50, 10).await);
        next += 50;
    }
    s.set_checkpointer(Arc::new(AlwaysCheckpointed));
    s.trim_wal().await.unwrap();
    let free = files_with_ext(&wal_dir(dir), ".free");
    assert_eq!(free.len(), 2, "wal_recycle_files trimmed files are kept: {free:?}");
    for f in &free {
        assert_page_sums_describe(f);
    }
    let read = s.metrics().wal_trim_read_bytes.get();
    assert!(read < 4096, "{read} bytes of trimmed files read back: only their partial last pages");
    let free = free.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    (s, ids, free)
}

/// The page checksums kept with a trimmed file (taken as the flusher wrote it, not read back)
/// are those of its whole pages on disk.
fn assert_page_sums_describe(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    let on_disk: Vec<u32> = bytes.chunks_exact(4096).map(magnetar_core::hash::crc32c).collect();
    let kept = std::fs::read(file.with_extension("pages")).unwrap();
    assert_eq!(&kept[..4], b"MGPG");
    let count = u32::from_le_bytes(kept[4..8].try_into().unwrap()) as usize;
    let sums: Vec<u32> =
        kept[8..8 + 4 * count].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    assert!(!on_disk.is_empty());
    assert_eq!(sums, on_disk, "page checksums of {}", file.display());
}

#[tokio::test]
async fn trimmed_wal_files_are_overwritten_as_later_ones_and_their_leftovers_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (s, mut ids, free) = trimmed(dir.path()).await;
    let inodes: Vec<u64> = free.iter().map(|(p, _)| p.metadata().unwrap().ino()).collect();
    // The active file, once it is a kept one (same inode) with new frames in it.
    let reused_active = || -> Option<PathBuf> {
        let last = files_with_ext(&wal_dir(dir.path()), ".wal").pop()?;
        let m = last.metadata().ok()?;
        (inodes.contains(&m.ino()) && m.len() > 0).then_some(last)
    };
    // New records, no aux records, one group commit each: a kept file becomes the next wal
    // file. The loop stops at the first commit into it, which never rolls it.
    let mut next = ids.len() as u64;
    let active = loop {
        if let Some(active) = reused_active() {
            break active;
        }
        assert!(next < 10_000, "the kept files were never reused");
        ids.extend(append_range(&s, 1, next, next + 10, 10).await);
        next += 10;
    };
    s.halt();
    assert_eq!(files_with_ext(&wal_dir(dir.path()), ".wal").pop(), Some(active.clone()));
    // As a crash leaves the active file when it is a reused one: the new frames, then what the
    // file held before them. (A roll cuts that off durably, so earlier files end with frames.)
    let ino = active.metadata().unwrap().ino();
    let (_, old) = free.iter().zip(&inodes).find(|(_, i)| **i == ino).map(|(f, _)| f).unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    assert!(bytes.len() < old.len(), "leftovers after the new frames");
    bytes.extend_from_slice(&old[bytes.len()..]);
    std::fs::write(&active, &bytes).unwrap();
    let (s, aux) = open(small_wal(dir.path()));
    assert!(!tags(&aux).iter().any(|t| t.starts_with("old-")), "no leftover replayed: {:?}", tags(&aux));
    assert_all(&s, &ids);
    // And the log goes on after them.
    let more = append_range(&s, 1, next, next + 5, 5).await;
    assert_eq!(more[0].0, next);
    s.shutdown().await;
}

#[tokio::test]
async fn a_reused_wal_file_that_a_crash_left_before_its_first_new_frame_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (s, ids, free) = trimmed(dir.path()).await;
    s.halt();
    // The roll renamed a kept file into place, and the machine died before the first group
    // commit reached it: it holds only its earlier frames.
    let last = files_with_ext(&wal_dir(dir.path()), ".wal").pop().unwrap();
    let seq: u64 = last.file_stem().unwrap().to_string_lossy().parse().unwrap();
    let next = wal_dir(dir.path()).join(format!("{:020}.wal", seq + 1));
    std::fs::rename(&free[0].0, &next).unwrap();
    let (s, aux) = open(small_wal(dir.path()));
    assert!(!tags(&aux).iter().any(|t| t.starts_with("old-")), "no leftover replayed: {:?}", tags(&aux));
    assert_all(&s, &ids);
    assert!(next.metadata().map_or(true, |m| m.len() == 0), "its leftovers are cut as a torn tail");
    s.shutdown().await;
}

/// Rewrites every frame's checksum unsalted, as files were written before salting.
fn unsalt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = magnetar_core::hash::crc32c_append(
            magnetar_core::hash::crc32c(&bytes[at..at + 4]),
            &bytes[at + 8..at + 8 + len],
        );
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += 8 + len;
    }
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn wal_files_written_before_salting_are_replayed_and_deleted_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig { wal_recycle_files: 0, ..small_wal(dir.path()) };
    let (s, _) = open(cfg);
    let ids = append_with_aux(&s, 0, 400, "legacy").await;
    s.halt();
    let legacy = files_with_ext(&wal_dir(dir.path()), ".wal");
    assert!(legacy.len() > 1);
    for path in &legacy {
        unsalt(path);
    }
    let (s, aux) = open(small_wal(dir.path()));
    assert_eq!(tags(&aux).len(), 40, "every aux record of the unsalted files is replayed");
    assert_all(&s, &ids);
    s.set_checkpointer(Arc::new(AlwaysCheckpointed));
    append_range(&s, 1, 400, 800, 10).await;
    s.trim_wal().await.unwrap();
    for path in &legacy {
        assert!(!path.exists(), "{path:?} trimmed");
        assert!(!path.with_extension("free").exists(), "{path:?} deleted, not kept for reuse");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_page_a_crash_left_unwritten_in_a_reused_file_ends_the_log_but_a_damaged_page_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (s, mut ids, free) = trimmed(dir.path()).await;
    let free: Vec<(u64, Vec<u8>)> = free.into_iter().map(|(p, b)| (p.metadata().unwrap().ino(), b)).collect();
    s.halt();
    // Reopened with larger files: the first wal file is a kept one (of about four pages), and
    // every group commit of a record on its own fills one page of it. Segments through the
    // page cache, which a crash of the process leaves whole: the records of the pages cut
    // below are still there (with direct writes a segment's last partial block is not).
    let cfg = StorageConfig { wal_file_bytes: 1 << 20, direct_segment_writes: false, ..small_wal(dir.path()) };
    let (s, _) = open(cfg.clone());
    let first = ids.len() as u64;
    for i in first..first + 4 {
        ids.extend(append_range(&s, 1, i, i + 1, 1).await);
    }
    s.halt();
    let wal = files_with_ext(&wal_dir(dir.path()), ".wal").pop().unwrap();
    let ino = wal.metadata().unwrap().ino();
    let (_, old) = free.iter().find(|(i, _)| *i == ino).expect("the active wal file is a kept one");
    let written = std::fs::read(&wal).unwrap();
    let page = 4096;
    assert_eq!(written.len(), 4 * page, "one page per group commit over the earlier content");
    assert!(old.len() >= 4 * page);
    // A page flipped by the disk, intact frames after it: corruption, refused, nothing cut.
    let mut damaged = written.clone();
    damaged[2 * page + 20] ^= 0x40;
    std::fs::write(&wal, &damaged).unwrap();
    assert!(magnetar_storage::Storage::open(cfg.clone()).is_err(), "a damaged page is not an unwritten one");
    assert_eq!(std::fs::read(&wal).unwrap(), damaged);
    // The same page as a crash leaves it: still what the file held before. The log ends there.
    let mut crashed = written.clone();
    crashed[2 * page..3 * page].copy_from_slice(&old[2 * page..3 * page]);
    std::fs::write(&wal, &crashed).unwrap();
    let (s, _) = open(cfg);
    assert!(wal.metadata().map_or(true, |m| m.len() == 2 * page as u64), "cut at the unwritten page");
    assert_all(&s, &ids);
    s.shutdown().await;
}

#[tokio::test]
async fn a_reused_file_trimmed_again_keeps_the_page_checksums_of_what_it_holds_padding_included() {
    let dir = tempfile::tempdir().unwrap();
    let (s, ids, free) = trimmed(dir.path()).await;
    let inodes: Vec<u64> = free.iter().map(|(p, _)| p.metadata().unwrap().ino()).collect();
    // One small record per group commit: over the earlier content each commit is padded to a
    // page boundary (a padding frame), until the kept files are rolled and trimmed again.
    let mut next = ids.len() as u64;
    let read_before = s.metrics().wal_trim_read_bytes.get();
    // A kept file trimmed again: kept under a later name, the same inode.
    let again = loop {
        let renamed: Vec<PathBuf> = files_with_ext(&wal_dir(dir.path()), ".free")
            .into_iter()
            .filter(|p| inodes.contains(&p.metadata().unwrap().ino()) && !free.iter().any(|(f, _)| f == p))
            .collect();
        if !renamed.is_empty() {
            break renamed;
        }
        assert!(next < 20_000, "the reused files were never trimmed again");
        append_range(&s, 1, next, next + 1, 1).await;
        next += 1;
        if next.is_multiple_of(20) {
            s.trim_wal().await.unwrap();
        }
    };
    // Their checksums came from the flusher: at most the partial last pages were read back.
    let read = s.metrics().wal_trim_read_bytes.get() - read_before;
    assert!(read < 4096, "{read} bytes of trimmed files read back");
    for f in &again {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            bytes.len() >= 2 * 4096 && bytes.len().is_multiple_of(4096),
            "whole pages of padded commits: {}",
            bytes.len()
        );
        assert_page_sums_describe(f);
    }
    s.shutdown().await;
}
