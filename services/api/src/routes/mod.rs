pub mod clusters;
pub mod consume;
pub mod namespaces;
pub mod ops;
pub mod produce;
pub mod subscriptions;
pub mod tenants;
pub mod topics;
