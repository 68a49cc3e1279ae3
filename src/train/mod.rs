//! Training-run simulation (`fleetsim train`): one iteration of a training
//! plan — tensor, pipeline and data parallelism, a pipeline schedule, ZeRO,
//! activation recomputation — executed as a discrete-event simulation of
//! every pipeline device's passes, priced by the serving time model's
//! operator costs.

pub mod faults;
pub mod pipeline;
pub mod schedule;

#[cfg(test)]
mod schedule_tests;
