//! What several of the integration tests share.

use mmusim_trace::{Access, Batch, TraceReader};

/// Every record of a committed real trace (`traces/NAME`), in order.
pub fn real_trace(name: &str) -> Vec<Access> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces").join(name);
    let mut reader = TraceReader::open(path).unwrap();
    let mut batch = Batch::new();
    let mut all = Vec::new();
    while reader.next_batch(&mut batch).unwrap() {
        all.extend_from_slice(&batch);
    }
    all
}
