//! The peer side of replicated durability: a `ReplicaStore` on real files stores batches durably,
//! refuses fenced logs, survives reopen (cutting only a torn last entry), never loses an
//! acknowledged append to a racing fence, and sweeps dead chunks; plus the wire form of
//! recovered frames and the recovering owner's merge. Chunks written through the page cache;
//! `replica_store_direct` runs the same suite with direct I/O.

const DIRECT: bool = false;

#[path = "replica_store/suite.rs"]
mod suite;
