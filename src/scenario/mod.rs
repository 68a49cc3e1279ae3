//! Scenarios: the TOML schema ([`config`], with the closed sets of names
//! some keys take as enums: [`kinds`]), loading with `--set` overrides and
//! "did you mean" errors ([`load()`]), and checks against the catalog
//! ([`validate`]) that turn a well-formed file into a runnable plan, with
//! the serving engine's defaults ([`engine_profile`]) filled in.

pub mod config;
pub mod engine_profile;
pub mod kinds;
pub mod load;
pub mod validate;

pub use config::*;
pub use load::load;

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod test_support;
