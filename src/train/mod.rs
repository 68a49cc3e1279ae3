//! Training-run simulation (`fleetsim train`): one iteration of a training
//! plan — tensor, pipeline and data parallelism, a pipeline schedule, ZeRO,
//! activation recomputation — executed as a discrete-event simulation of
//! every pipeline device's passes, priced by the serving time model's
//! operator costs.

pub mod config;
pub mod cost;
pub mod faults;
pub mod faults_sweep;
pub mod fidelity;
pub mod memory;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod run;
pub mod schedule;
pub mod search;
pub mod sync;

#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod sync_tests;
