//! fleetsim: a fast, deterministic discrete-event simulator of LLM serving fleets.

pub mod catalog;
pub mod error;
pub mod metrics;
pub mod scenario;
pub mod timing;
pub mod units;
pub mod workload;

pub use error::{Error, Result};
