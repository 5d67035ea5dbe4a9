//! The translation pipeline (see ARCHITECTURE.md).
