//! What several of the integration tests share.

use mmusim_trace::{Access, TraceReader};

/// Every record of a committed real trace (`traces/NAME`), in order.
pub fn real_trace(name: &str) -> Vec<Access> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces").join(name);
    TraceReader::open(path).unwrap().records().collect::<Result<_, _>>().unwrap()
}
