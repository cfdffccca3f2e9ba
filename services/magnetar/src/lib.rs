//! Wiring of the `magnetar` binary: configuration loading, start-up and shutdown order, the
//! command line and the `perf` load generators. The logic itself lives in the library crates.

pub mod cli;
pub mod config;
pub mod perf;
pub mod perf_binary;
pub mod perf_ws;
pub mod server;
pub mod tokens;
