use super::*;
use crate::record::RecordInput;

fn write(seg: &mut ActiveSegment, from: u64, n: u64) {
    for i in from..from + n {
        let r = RecordInput {
            publish_time: i as i64 * 2,
            event_time: None,
            key: None,
            key_base64: false,
            ordering_key: None,
            properties: vec![],
            payload: Bytes::from(vec![1u8; 3000]),
            producer: None,
            batch: None,
            chunk: None,
            encrypted: None,
        };
        let mut buf = Vec::new();
        codec::encode_record(&mut buf, i, &r);
        seg.append(&buf, &[RecordPos { offset: i, publish_time: r.publish_time, len: buf.len() as u32 }], 0).unwrap();
    }
}

/// Appends one record of `size` payload bytes at `offset` to `seg` with `window`.
fn append_one(seg: &mut ActiveSegment, offset: u64, size: usize, window: u64) {
    let r = RecordInput { payload: Bytes::from(vec![7u8; size]), ..RecordInput::default() };
    let mut buf = Vec::new();
    codec::encode_record(&mut buf, offset, &r);
    seg.append(&buf, &[RecordPos { offset, publish_time: 0, len: buf.len() as u32 }], window).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_segment_keeps_only_its_window_in_the_page_cache() {
    let (window, mib) = (2 << 20, 1 << 20);
    for (w, kept_from) in [(window, true), (0, false)] {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = ActiveSegment::create(dir.path(), 0, 1).unwrap();
        // Each record a little over a writeback step; written back (clean) before the next,
        // as the kernel has it a step later under load.
        for i in 0..8 {
            append_one(&mut seg, i, mib as usize + 100, w);
            seg.file.sync_data().unwrap();
        }
        let size = seg.meta.size;
        let old = pagecache::resident_pages(&seg.file, 0, 4 << 20);
        let recent = pagecache::resident_pages(&seg.file, (size - window) & !4095, window);
        if kept_from {
            assert_eq!(old, 0, "the first 4 MiB of a 8 MiB segment are out of the page cache");
            assert!(seg.dropped >= 4 << 20 && seg.dropped <= size - window, "dropped up to {}", seg.dropped);
        } else {
            assert_eq!(old, 1024, "without a window every page stays cached");
            assert_eq!(seg.dropped, 0);
        }
        assert!(recent >= 500, "the last {window} bytes stay cached: {recent} pages");
    }
}

#[test]
fn sealed_segment_reopens_with_the_same_index_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = ActiveSegment::create(dir.path(), 100, 42).unwrap();
    write(&mut seg, 100, 80);
    assert!(seg.index.len() > 2, "sparse index has several blocks");
    let index = seg.index.clone();
    let sealed = seg.seal(43).unwrap();
    let path = segment_path(dir.path(), 100);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), sealed.meta.size);
    let Opened::Sealed(again) = open_segment(&path, 100).unwrap() else { panic!("not sealed") };
    assert_eq!(again.meta, sealed.meta);
    assert_eq!((again.meta.end, again.meta.count, again.meta.created_ms), (180, 80, 42));
    let file = File::open(&path).unwrap();
    assert_eq!(again.load_index(&file, &path).unwrap(), index);
    // Time lookup: the block that holds publish time 2 * 150.
    let e = index_lookup_time(&index, 300).unwrap();
    assert_eq!(find_time(&file, &path, e.position, again.records_end, 300).unwrap(), Some(150));
    assert_eq!(find_time(&file, &path, e.position, again.records_end, 301).unwrap(), Some(151));
}

#[test]
fn a_torn_footer_reopens_as_active_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = ActiveSegment::create(dir.path(), 0, 1).unwrap();
    write(&mut seg, 0, 10);
    let records_end = seg.meta.size;
    let sealed = seg.seal(2).unwrap();
    let path = segment_path(dir.path(), 0);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(sealed.meta.size - 5).unwrap();
    let Opened::Active { seg, truncated } = open_segment(&path, 0).unwrap() else { panic!("not active") };
    assert_eq!(seg.meta.count, 10);
    assert_eq!(seg.meta.size, records_end);
    assert_eq!(truncated, sealed.meta.size - 5 - records_end);
}

/// Every record of a segment, read as a reader does.
fn read_all(seg: &ActiveSegment) -> Vec<Record> {
    let mut out = Vec::new();
    let mut budget =
        ReadBudget { from: seg.meta.base, end: seg.meta.end, max_records: usize::MAX, max_bytes: usize::MAX, bytes: 0 };
    read_records(&seg.view(), &seg.path, HEADER_LEN, seg.meta.size, seg.meta.base, &mut budget, &mut out).unwrap();
    out
}

/// A new segment based at 0 in a directory of its own (dropped with the first value).
fn new_segment() -> (tempfile::TempDir, PathBuf, ActiveSegment) {
    let dir = tempfile::tempdir().unwrap();
    let seg = ActiveSegment::create(dir.path(), 0, 1).unwrap();
    let path = segment_path(dir.path(), 0);
    (dir, path, seg)
}

/// Direct writes: records read back whole while the last block waits in memory; after a
/// crash (nothing persisted) the file holds every record of its whole blocks, the torn one
/// cut; once persisted, all of them.
#[cfg(target_os = "linux")]
#[test]
fn a_directly_written_segment_reads_back_and_reopens_whole_once_persisted() {
    let (_dir, path, mut seg) = new_segment();
    seg.write_direct().expect("O_DIRECT on the test's temporary directory");
    // Sizes around the block: records end inside blocks, on their edges and span several.
    let sizes = [100, 4000, 4096 - 57, 10_000, 1, 70_000, 333];
    // The small ones gather in memory until a flush; the large one goes out as it comes.
    for (i, size) in sizes[..5].iter().enumerate() {
        append_one(&mut seg, i as u64, *size, 0);
    }
    assert_eq!(read_all(&seg).len(), 5, "read back before the flush, from memory");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER_LEN, "nothing written yet but the header");
    seg.flush_direct().unwrap();
    append_one(&mut seg, 5, sizes[5], 0);
    assert!(std::fs::metadata(&path).unwrap().len() > 70_000, "a large append is written at once");
    append_one(&mut seg, 6, sizes[6], 0);
    let got = read_all(&seg);
    assert_eq!(got.iter().map(|r| r.payload.len()).collect::<Vec<_>>(), sizes);
    let d = seg.direct.as_ref().unwrap();
    assert!(d.flushed.is_multiple_of(direct::BLOCK as u64) && d.flushed + d.pending.len() as u64 == seg.meta.size);
    assert!(!d.pending.is_empty(), "the last records wait for their block");
    let on_disk = std::fs::metadata(&path).unwrap().len();
    assert_eq!(on_disk, d.flushed, "only whole blocks are on disk");
    // A crash now (seen on a copy: opening truncates the torn tail): reopening keeps the
    // records of the whole blocks.
    let copy = tempfile::tempdir().unwrap();
    let copied = segment_path(copy.path(), 0);
    std::fs::copy(&path, &copied).unwrap();
    let Opened::Active { seg: crashed, .. } = open_segment(&copied, 0).unwrap() else { panic!("not active") };
    assert!(crashed.meta.count < sizes.len() as u64 && crashed.meta.count >= 5, "{}", crashed.meta.count);
    // Persisted: every record, also after more appends and a second persist.
    let mut seg = seg;
    seg.persist_pending().unwrap();
    std::fs::copy(&path, &copied).unwrap();
    let Opened::Active { seg: again, truncated } = open_segment(&copied, 0).unwrap() else { panic!("not active") };
    assert_eq!((again.meta.count, again.meta.size, truncated), (sizes.len() as u64, seg.meta.size, 0));
    append_one(&mut seg, 7, 9000, 0);
    seg.persist_pending().unwrap();
    let sealed = seg.seal(2).unwrap();
    let Opened::Sealed(s) = open_segment(&path, 0).unwrap() else { panic!("not sealed") };
    assert_eq!((s.meta.count, s.meta.size), (8, sealed.meta.size));
}

/// A segment reopened after a crash takes direct writes up where its records end.
#[cfg(target_os = "linux")]
#[test]
fn a_reopened_segment_goes_on_with_direct_writes_after_its_last_record() {
    let (_dir, path, mut seg) = new_segment();
    for i in 0..3 {
        append_one(&mut seg, i, 5000, 0);
    }
    drop(seg);
    let Opened::Active { seg: mut again, .. } = open_segment(&path, 0).unwrap() else { panic!("not active") };
    again.write_direct().unwrap();
    for i in 3..6 {
        append_one(&mut again, i, 5000, 0);
        again.flush_direct().unwrap();
    }
    assert_eq!(read_all(&again).iter().map(|r| r.offset).collect::<Vec<_>>(), (0..6).collect::<Vec<_>>());
    again.persist_pending().unwrap();
    let Opened::Active { seg: last, .. } = open_segment(&path, 0).unwrap() else { panic!("not active") };
    assert_eq!(last.meta.count, 6);
}

#[test]
fn wrong_base_in_the_header_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    ActiveSegment::create(dir.path(), 7, 1).unwrap();
    std::fs::rename(segment_path(dir.path(), 7), segment_path(dir.path(), 8)).unwrap();
    assert!(matches!(open_segment(&segment_path(dir.path(), 8), 8), Err(StorageError::Corrupt { .. })));
}
