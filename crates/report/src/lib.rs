//! Running mmusim and presenting what it finds: config files, runs,
//! metrics, `summary.json` and terminal tables (see ARCHITECTURE.md). The
//! binary only parses arguments and calls into this crate.

pub mod check;
pub mod config_file;
pub mod metrics;
pub mod one_pass;
pub mod outputs;
pub mod pictures;
pub mod pipeline;
pub mod plan;
pub mod record;
pub mod run;
pub mod summary;
pub mod sweep;
pub mod text;
pub mod trace_info;
