//! The report crate's integration tests, as one test binary.

mod golden;
mod one_pass;
mod pictures;
mod sweeps;
