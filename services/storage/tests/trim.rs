//! WAL trimming: data-only files go once their segments are fsynced; files holding aux records
//! need a successful checkpoint that began after they were complete.

mod common;

use bytes::Bytes;
use common::*;
use magnetar_storage::Checkpointer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct CountingCheckpointer {
    calls: AtomicUsize,
    ok: AtomicBool,
}

#[async_trait::async_trait]
impl Checkpointer for CountingCheckpointer {
    async fn checkpoint(&self) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.ok.load(Ordering::SeqCst) { Ok(()) } else { Err("metadata store down".into()) }
    }
}

fn small_wal(dir: &std::path::Path) -> magnetar_storage::StorageConfig {
    let mut cfg = config(dir);
    cfg.wal_file_bytes = 16 << 10;
    cfg
}

#[tokio::test]
async fn data_only_wal_files_are_trimmed_and_data_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(small_wal(dir.path()));
    let ids = append_range(&s, 1, 0, 600, 3).await;
    // Only the active wal file is left.
    trim_until_wal_files(&s, dir.path(), 1).await;
    assert!(s.disk_usage() >= s.log(1).unwrap().size_bytes());
    s.halt();
    let (s, _) = open(small_wal(dir.path()));
    let all = read_all(&s, 1, 0);
    assert_eq!(all.len(), 600);
    for (r, (off, base)) in all.iter().zip(ids) {
        check(r, off);
        assert_eq!(r.segment_base, base);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn wal_files_with_aux_records_need_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(small_wal(dir.path()));
    for i in 0..300u64 {
        s.append_aux(1, Bytes::from(format!("cursor-{i}-{}", "c".repeat(100)))).await.unwrap();
        append_range(&s, 1, i, i + 1, 1).await;
    }
    let wal_count = || files_with_ext(&dir.path().join("wal"), ".wal").len();
    let before = wal_count();
    assert!(before > 2);
    // No checkpointer: nothing holding aux records goes.
    let st = s.trim_wal().await.unwrap();
    assert_eq!(st.files_deleted, 0);
    assert_eq!(wal_count(), before);
    // A failing checkpoint keeps them too.
    let cp = Arc::new(CountingCheckpointer { calls: AtomicUsize::new(0), ok: AtomicBool::new(false) });
    s.set_checkpointer(cp.clone());
    let st = s.trim_wal().await.unwrap();
    assert_eq!(st.files_deleted, 0);
    assert!(cp.calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(wal_count(), before);
    // A successful one lets every complete file go.
    cp.ok.store(true, Ordering::SeqCst);
    trim_until_wal_files(&s, dir.path(), 1).await;
    s.halt();
    let (s, aux) = open(small_wal(dir.path()));
    assert!(aux.len() < 300, "trimmed aux records are not replayed");
    assert_eq!(read_all(&s, 1, 0).len(), 300);
    s.shutdown().await;
}
