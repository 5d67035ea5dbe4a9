//! Helpers shared by the trace crate's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use mmusim_trace::{Access, Batch, KindCounts, TraceError, TraceReader};

/// A committed sample trace.
pub fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../traces").join(name)
}

/// Every record of `reader`.
pub fn read_all(mut reader: TraceReader) -> Result<Vec<Access>, TraceError> {
    let mut all = Vec::new();
    let mut batch = Batch::new();
    while reader.next_batch(&mut batch)? {
        all.extend_from_slice(&batch);
    }
    Ok(all)
}

/// Counts by kind, reading batch by batch.
pub fn count_kinds(mut reader: TraceReader) -> Result<KindCounts, TraceError> {
    let mut counts = KindCounts::default();
    let mut batch = Batch::new();
    while reader.next_batch(&mut batch)? {
        for access in batch.iter() {
            counts.add(access.kind);
        }
    }
    Ok(counts)
}
