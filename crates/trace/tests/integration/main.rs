//! The trace crate's integration tests, as one test binary.

mod bad_input;
mod common;
mod drmemtrace;
mod properties;
mod real_traces;
mod tiny_traces;
