//! Running mmusim and presenting what it finds: metrics, tables, JSON and
//! CSV output (see ARCHITECTURE.md). The binary only parses arguments and
//! calls into this crate.

pub mod text;
pub mod trace_info;
