//! The translate crate's integration tests, as one test binary: one link
//! instead of six after every change to the crate.

mod common;
mod cross_check;
mod memory_curve;
mod overcommit;
mod page_table_memory;
mod paging;
mod properties;
mod random_configs;
mod scenarios;
mod sharing;
mod virtualization;
