//! Scenarios: the TOML schema ([`config`]), loading with `--set` overrides
//! and "did you mean" errors ([`load()`]), and checks against the catalog
//! ([`validate`]) that turn a well-formed file into a runnable plan.

pub mod config;
pub mod load;
pub mod validate;

pub use config::*;
pub use load::load;
