//! Append, read, segments, deletion and metrics of a running storage.

mod common;

use bytes::Bytes;
use common::*;
use magnetar_storage::{RecordInput, StorageError};
use std::time::Duration;

#[tokio::test]
async fn append_and_read_round_trip_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let (s, aux) = open(config(dir.path()));
    assert!(aux.is_empty());
    let ids = append_range(&s, 1, 0, 500, 5).await;
    assert_eq!(ids.iter().map(|i| i.0).collect::<Vec<_>>(), (0..500).collect::<Vec<_>>());
    let p = s.log(1).unwrap();
    assert_eq!(p.end_offset(), 500);
    assert_eq!(p.start_offset(), 0);
    settle(&p).await;
    let segs = p.segments();
    assert!(segs.len() > 3, "expected several segments, got {}", segs.len());
    assert!(segs[..segs.len() - 1].iter().all(|s| s.sealed));
    assert!(!segs.last().unwrap().sealed);
    for w in segs.windows(2) {
        assert_eq!(w[0].end_offset, w[1].base_offset);
    }
    // A request's records share one segment.
    for chunk in ids.chunks(5) {
        assert!(chunk.iter().all(|c| c.1 == chunk[0].1));
    }
    let all = read_all(&s, 1, 0);
    assert_eq!(all.len(), 500);
    for (i, r) in all.iter().enumerate() {
        check(r, i as u64);
        assert_eq!(r.segment_base, ids[i].1);
    }
    let mid = p.read(123, 3, 1 << 20).unwrap();
    assert_eq!(mid.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![123, 124, 125]);
    assert!(p.read(500, 10, 1 << 20).unwrap().is_empty());
    assert_eq!(p.size_bytes(), segs.iter().map(|s| s.size_bytes).sum::<u64>());
    // Once stopped (the active segment's last partial block is written only then with
    // direct writes, and the last records may be acknowledged before their segment write),
    // the files hold exactly what the log reports.
    s.shutdown().await;
    let size = p.size_bytes();
    let on_disk: u64 =
        files_with_ext(&dir.path().join("logs/1"), ".seg").iter().map(|f| f.metadata().unwrap().len()).sum();
    assert_eq!(size, on_disk);
}

#[tokio::test]
async fn reads_come_from_disk_when_the_tail_cache_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.read_cache_bytes = 0;
    let (s, _) = open(cfg);
    append_range(&s, 9, 0, 300, 4).await;
    let all = read_all(&s, 9, 0);
    assert_eq!(all.len(), 300);
    for (i, r) in all.iter().enumerate() {
        check(r, i as u64);
    }
    // max_bytes bounds the result but never below one record.
    assert_eq!(s.log(9).unwrap().read(10, 100, 1).unwrap().len(), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_max_bytes = 1 << 20;
    let (s, _) = open(cfg);
    let mut tasks = Vec::new();
    for task in 0..256u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let p = s.log(task % 64).unwrap();
            let mut offsets = Vec::new();
            for i in 0..20 {
                let r = p.append(vec![input(i)]).await.unwrap();
                offsets.push(r[0].0);
            }
            offsets
        }));
    }
    let mut total = 0;
    for t in tasks {
        let offs = t.await.unwrap();
        assert!(offs.windows(2).all(|w| w[0] < w[1]));
        total += offs.len() as u64;
    }
    let fsyncs = s.metrics().wal_fsyncs.get();
    assert_eq!(total, 256 * 20);
    assert!(fsyncs * 2 < total, "{fsyncs} fsyncs for {total} appends");
    assert_eq!(s.metrics().wal_batch_records.get_sample_sum() as u64, total);
    for log in 0..64 {
        let p = s.log(log).unwrap();
        assert_eq!(p.end_offset(), 80);
        let recs = p.read(0, 1000, usize::MAX).unwrap();
        assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..80).collect::<Vec<_>>());
    }
    s.shutdown().await;
}

#[tokio::test]
async fn delete_segments_before_frees_whole_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    append_range(&s, 2, 0, 400, 4).await;
    let p = s.log(2).unwrap();
    settle(&p).await;
    let segs = p.segments();
    let cut = segs[2].end_offset;
    let before_files = files_with_ext(&dir.path().join("logs/2"), ".seg").len();
    let before = p.size_bytes();
    let freed = p.delete_segments_before(cut + 1).unwrap().freed_local;
    assert_eq!(freed, segs[..3].iter().map(|s| s.size_bytes).sum::<u64>());
    assert_eq!(p.size_bytes(), before - freed);
    assert_eq!(files_with_ext(&dir.path().join("logs/2"), ".seg").len(), before_files - 3);
    assert_eq!(p.start_offset(), cut);
    assert!(matches!(p.read(0, 1, 100), Err(StorageError::OffsetTrimmed { earliest, .. }) if earliest == cut));
    check(&p.read(cut, 1, 100).unwrap()[0], cut);
    // Never the active segment.
    p.delete_segments_before(u64::MAX).unwrap();
    let left = p.segments();
    assert_eq!(left.len(), 1);
    assert!(!left[0].sealed);
    assert_eq!(p.start_offset(), left[0].base_offset);
    assert_eq!(p.end_offset(), 400);
    s.shutdown().await;
    // The start survives a restart.
    let (s, _) = open(config(dir.path()));
    let p = s.log(2).unwrap();
    assert_eq!((p.start_offset(), p.end_offset()), (left[0].base_offset, 400));
    s.shutdown().await;
}

#[tokio::test]
async fn seal_active_rolls_and_survives_deleting_everything_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_max_bytes = 1 << 30;
    let (s, _) = open(cfg.clone());
    let p = s.log(3).unwrap();
    append_range(&s, 3, 0, 10, 3).await;
    p.seal_active().unwrap();
    let segs = p.segments();
    assert_eq!(segs.len(), 2);
    assert!(segs[0].sealed && !segs[1].sealed);
    assert_eq!((segs[0].base_offset, segs[0].end_offset), (0, 10));
    assert_eq!(segs[1].base_offset, 10);
    assert_eq!(segs[0].first_publish_time, 1_000);
    assert_eq!(segs[0].last_publish_time, 1_090);
    p.seal_active().unwrap(); // nothing new: no empty sealed segment
    assert_eq!(p.segments().len(), 2);
    assert!(p.delete_segments_before(10).unwrap().freed_local > 0);
    let ids = append_range(&s, 3, 10, 12, 2).await;
    assert_eq!(ids, vec![(10, 10), (11, 10)]);
    s.shutdown().await;
    let (s, _) = open(cfg);
    let p = s.log(3).unwrap();
    assert_eq!((p.start_offset(), p.end_offset()), (10, 12));
    let r = p.read(10, 10, 1 << 20).unwrap();
    assert_eq!(r.iter().map(|r| (r.offset, r.segment_base)).collect::<Vec<_>>(), vec![(10, 10), (11, 10)]);
    s.shutdown().await;
}

#[tokio::test]
async fn offset_for_publish_time_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    append_range(&s, 4, 0, 300, 3).await;
    let p = s.log(4).unwrap();
    assert!(p.segments().len() > 2);
    // publish_time of record i is 1000 + 10 i.
    assert_eq!(p.offset_for_publish_time(0), 0);
    assert_eq!(p.offset_for_publish_time(1_000), 0);
    assert_eq!(p.offset_for_publish_time(1_001), 1);
    assert_eq!(p.offset_for_publish_time(1_000 + 10 * 150), 150);
    assert_eq!(p.offset_for_publish_time(1_000 + 10 * 299), 299);
    assert_eq!(p.offset_for_publish_time(1_000 + 10 * 299 + 1), 300);
    s.shutdown().await;
}

#[tokio::test]
async fn wait_for_data_resolves_when_records_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let p = s.log(5).unwrap();
    let waiter = {
        let p = p.clone();
        tokio::spawn(async move { p.wait_for_data(0).await })
    };
    p.append(vec![input(0)]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(30), p.wait_for_data(0)).await.unwrap();
    s.shutdown().await;
}

#[tokio::test]
async fn oversized_messages_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let p = s.log(6).unwrap();
    let big = RecordInput { payload: Bytes::from(vec![0u8; (1 << 20) + 1]), ..input(0) };
    assert!(matches!(p.append(vec![big]).await, Err(StorageError::MessageTooLarge { .. })));
    assert_eq!(p.end_offset(), 0);
    assert!(p.append(vec![]).await.unwrap().is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn delete_log_is_not_resurrected_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    append_range(&s, 7, 0, 50, 5).await;
    append_range(&s, 8, 0, 5, 5).await;
    s.append_aux(7, Bytes::from_static(b"cursor-7")).await.unwrap();
    s.append_aux(8, Bytes::from_static(b"cursor-8")).await.unwrap();
    let old = s.log(7).unwrap();
    s.delete_log(7).await.unwrap();
    assert!(!dir.path().join("logs/7").exists());
    assert_eq!(s.log_ids(), vec![8]);
    assert!(matches!(old.append(vec![input(0)]).await, Err(StorageError::LogDeleted(7))));
    s.halt();
    let (s, aux) = open(config(dir.path()));
    assert_eq!(s.log_ids(), vec![8]);
    assert_eq!(aux.iter().map(|a| a.log_id).collect::<Vec<_>>(), vec![8]);
    // A new log with that id starts from scratch, and survives the old drop record on replay.
    assert_eq!(s.log(7).unwrap().end_offset(), 0);
    append_range(&s, 7, 0, 3, 3).await;
    s.halt();
    let (s, _) = open(config(dir.path()));
    assert_eq!(s.log_ids(), vec![7, 8]);
    let r = read_all(&s, 7, 0);
    assert_eq!(r.len(), 3);
    check(&r[2], 2);
    s.shutdown().await;
}

#[tokio::test]
async fn aux_records_come_back_in_wal_order() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    for i in 0..10u64 {
        s.append_aux(i % 3, Bytes::from(format!("aux-{i}"))).await.unwrap();
        append_range(&s, 1, i, i + 1, 1).await;
    }
    s.shutdown().await;
    let (s, aux) = open(config(dir.path()));
    let got: Vec<(u64, Bytes)> = aux.into_iter().map(|a| (a.log_id, a.data)).collect();
    let want: Vec<(u64, Bytes)> = (0..10u64).map(|i| (i % 3, Bytes::from(format!("aux-{i}")))).collect();
    assert_eq!(got, want);
    s.shutdown().await;
}

#[tokio::test]
async fn appends_after_shutdown_fail_and_the_directory_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    assert!(matches!(magnetar_storage::Storage::open(config(dir.path())), Err(StorageError::Unavailable(_))));
    let p = s.log(1).unwrap();
    s.shutdown().await;
    assert!(matches!(p.append(vec![input(0)]).await, Err(StorageError::ShuttingDown)));
    assert!(matches!(s.append_aux(1, Bytes::new()).await, Err(StorageError::ShuttingDown)));
    let (s2, _) = open(config(dir.path()));
    s2.shutdown().await;
}

#[test]
fn metrics_register_with_a_registry() {
    let m = magnetar_storage::StorageMetrics::new();
    let r = prometheus::Registry::new();
    m.register(&r).unwrap();
    let names: Vec<String> = r.gather().iter().map(|f| f.name().to_string()).collect();
    for n in [
        "magnetar_wal_fsync_seconds",
        "magnetar_wal_space_ahead_seconds",
        "magnetar_wal_batch_records",
        "magnetar_wal_batch_bytes",
        "magnetar_wal_bytes_written_total",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
}

#[tokio::test]
async fn batches_enqueued_before_waiting_keep_their_order_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    let p = s.log(4).unwrap();
    // Twenty batches queued back to back, as a WebSocket producer with a full window does,
    // and only then awaited: offsets follow enqueue order, across segment rolls.
    let mut pending = Vec::new();
    for b in 0..20u64 {
        pending.push(p.enqueue((b * 10..b * 10 + 10).map(input).collect()).await.unwrap());
    }
    let mut offsets = Vec::new();
    for pa in pending {
        offsets.extend(pa.durable().await.unwrap().into_iter().map(|(o, _)| o));
    }
    assert_eq!(offsets, (0..200).collect::<Vec<_>>());
    let all = read_all(&s, 4, 0);
    assert_eq!(all.len(), 200);
    for (i, r) in all.iter().enumerate() {
        check(r, i as u64);
    }
    s.shutdown().await;
    // Every one of them is on disk after a restart.
    let (s, _) = open(config(dir.path()));
    assert_eq!(read_all(&s, 4, 0).len(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn a_terminated_log_refuses_appends_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(config(dir.path()));
    append_range(&s, 3, 0, 10, 5).await;
    let p = s.log(3).unwrap();
    assert_eq!(p.terminated_at(), None);
    assert_eq!(p.terminate(), 10);
    assert_eq!(p.terminate(), 10, "terminating again changes nothing");
    assert_eq!(p.terminated_at(), Some(10));
    assert!(matches!(p.append(vec![input(10)]).await, Err(StorageError::Terminated(3))));
    assert_eq!(p.end_offset(), 10);
    assert_eq!(read_all(&s, 3, 0).len(), 10, "what was accepted before stays readable");
    p.resume();
    assert_eq!(p.append(vec![input(10)]).await.unwrap()[0].0, 10);
    s.shutdown().await;
}
