//! Figures for docs/benchmarks.md: the pure step of one compaction of 100,000 messages with
//! 100-byte payloads over `MAGNETAR_BENCH_KEYS` keys (default 1,000), and the encoding and
//! decoding of the resulting view.
//!
//!   cargo run --release -p magnetar-broker --example compaction_fold

use bytes::Bytes;
use magnetar_broker::compaction::{CompactedView, Compaction};
use magnetar_storage::Record;

fn main() {
    let keys: u64 = std::env::var("MAGNETAR_BENCH_KEYS").ok().and_then(|k| k.parse().ok()).unwrap_or(1000);
    let payload = Bytes::from(vec![b'x'; 100]);
    let records: Vec<Record> = (0..100_000u64)
        .map(|i| Record {
            offset: i,
            segment_base: i / 1000 * 1000,
            publish_time: i as i64,
            event_time: None,
            key: Some(format!("key-{}", i % keys)),
            key_base64: false,
            ordering_key: None,
            properties: Vec::new(),
            payload: payload.clone(),
            producer: None,
            batch: None,
            chunk: None,
            encrypted: None,
        })
        .collect();
    let started = std::time::Instant::now();
    let mut c = Compaction::new(&CompactedView::default(), false);
    records.into_iter().for_each(|r| c.push(r));
    let (view, removed) = c.finish(100_000);
    let folded = started.elapsed();
    let encoded = view.encode();
    let encode = started.elapsed() - folded;
    let decoded = CompactedView::decode(encoded.clone()).expect("the view just encoded decodes");
    let decode = started.elapsed() - folded - encode;
    assert_eq!(decoded.len() as u64 + removed, 100_000);
    println!(
        "100k messages, {keys} keys: fold {folded:?}, encode {encode:?} ({} bytes), decode {decode:?}",
        encoded.len()
    );
}
