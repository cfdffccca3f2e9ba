//! The replica store's suite (`replica_store`) with chunks written with direct I/O: whole
//! blocks, the last partial one written again with each entry.

const DIRECT: bool = true;

#[path = "replica_store/suite.rs"]
mod suite;
