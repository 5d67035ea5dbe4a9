//! mmusim's translation pipeline: radix page tables filled on demand, TLB
//! hierarchies of any depth and geometry, page-walk caches and a walk-cost
//! model, driven reference by reference.
//!
//! This crate does no I/O and spawns no threads. A [`Simulator`] is built
//! from a [`Config`] (which [`Config::resolve`] checks), runs batches of
//! [`mmusim_trace::Access`] records, and reports integer counters.

pub mod addr;
pub mod budget;
pub mod cache;
pub mod config;
pub mod context;
pub mod frames;
pub mod histogram;
pub mod huge;
pub mod lanes;
pub mod machine;
pub mod memory_curve;
pub mod pagetable;
pub mod per_kind;
pub mod pwc;
pub(crate) mod replacement;
pub mod residency;
pub mod rng;
pub mod sim;
pub mod size;
pub mod stack;
pub mod tlb;
pub mod walker;

pub use config::{Config, ConfigError};
pub use sim::{AddressOutOfRange, SimReport, Simulator};
pub use size::ByteSize;
