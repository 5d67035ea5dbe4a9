//! Memory-address traces for mmusim: streaming readers for Valgrind Lackey,
//! Dinero IV din, ChampSim, Intel Pin pinatrace, DynamoRIO drmemtrace and
//! mmusim's own binary format, plain, gzip/xz/zstd-compressed or zipped;
//! writers for the binary format
//! and Lackey text; and round-robin mixing of several traces into one
//! multi-programmed workload.
//!
//! Readers yield [`Access`] records in reusable [`Batch`]es: they buffer in
//! bulk, allocate nothing per record, and hold at most a fixed window of a
//! streamed trace in memory. Every malformed, truncated or unreadable input
//! is a [`TraceError`] naming the file and the line or byte offset; a trace
//! is never silently shortened.
//!
//! This crate knows nothing about TLBs or page tables.

mod access;
pub mod binary;
mod decode;
mod drmemtrace_dir;
mod error;
mod format;
mod input;
mod mix;
mod reader;
mod stats;
mod write;
mod zip_members;

pub use access::{Access, Kind};
pub use decode::drmemtrace::DrmemtraceCounts;
pub use error::{Location, TraceError};
pub use format::Format;
pub use input::{exit_with_a_message_on_sigbus, hash_file, open_trace_file, Compression, HASH_ALGORITHM, STDIN};
pub use mix::{BatchSource, Mix, TraceSpec, Workload, DEFAULT_QUANTUM};
pub use reader::{Batch, Records, TraceReader, BATCH_RECORDS};
pub use stats::{KindCounts, ReferenceStats, TraceInfo};
pub use write::{
    compression_for, convert, write_atomically, write_lackey_trace, write_trace, AtomicFile, BinaryWriter,
    ConvertSummary, LackeyWriter, OutputFormat, WriteSummary, PARTIAL_PREFIX, PARTIAL_SUFFIX,
};
