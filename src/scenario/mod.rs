//! Scenarios: the TOML schema ([`config`]), loading with `--set`
//! overrides and "did you mean" errors, and validation against the catalog.

pub mod config;

pub use config::*;
