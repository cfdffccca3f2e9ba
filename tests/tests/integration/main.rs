//! Magnetar's integration tests, one module per surface, linked into a single test binary: every
//! suite links the whole broker, and one binary instead of thirteen keeps CI's link time and disk
//! use down. Run one suite with `scripts/test.sh -p magnetar-tests -E 'test(/^websocket::/)'`
//! (nextest) or `cargo test -p magnetar-tests --test integration websocket::`.
//!
//! The PostgreSQL and S3 servers come from `scripts/test.sh` (see its header for the variables);
//! each test creates its own database, schema or key prefix, so the suites run in parallel.

mod common;

mod admin_api;
mod admin_ops;
mod auth;
mod binary_frames;
mod binary_keys;
mod binary_raw;
mod binary_restart;
mod broker_tier;
mod cluster_mode;
mod compaction;
mod console;
mod crash;
mod deduplication;
mod durability;
mod hardening;
mod helm_chart;
mod metrics;
mod offload;
mod offload_faults;
mod on_behalf;
mod openid;
mod ops;
mod page_cache;
mod policies;
mod produce_consume;
mod pulsar_client;
mod pulsar_rs_client;
mod restart;
mod retention;
mod schema_policies;
mod tier;
mod tier_balance;
mod tier_binary;
mod tier_binary_proxy;
mod tier_binary_redirect;
mod tier_crash;
mod tier_dead_peer;
mod tier_failover;
mod tier_fanout;
mod tier_handover;
mod tier_lost_disk;
mod tier_replicated;
mod tier_scale;
mod tier_ws_fanout;
mod topic_ops;
mod websocket;
mod ws_auth;
mod ws_close;
