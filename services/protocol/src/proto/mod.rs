//! Pulsar's protocol buffer messages (proto2), written by hand from the protocol specification:
//! names, field numbers, types, labels and defaults are Pulsar's; the Rust names are ours
//! (snake_case fields, nested enums lifted to the module with descriptive names).
//!
//! `required` fields are plain values and are always encoded, even when zero: the C++ client
//! rejects a command missing one. prost does not check their presence on decode;
//! [`BaseCommand::validate`] checks the part a dispatcher relies on.

mod command;
mod common;
mod connection;
mod consumer;
mod lookup;
mod metadata;
mod producer;
mod schema;
mod txn;

pub use command::*;
pub use common::*;
pub use connection::*;
pub use consumer::*;
pub use lookup::*;
pub use metadata::*;
pub use producer::*;
pub use schema::*;
pub use txn::*;
