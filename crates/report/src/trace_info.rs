//! The human table of `mmusim trace info`.

use std::fmt::Write;

use mmusim_trace::TraceInfo;

use crate::text::{bytes, thousands};

/// One block of lines per trace.
pub fn render(info: &TraceInfo) -> String {
    let r = &info.references;
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<20}{value}");
    };
    let compression = match info.compression.name() {
        "none" => "uncompressed".to_owned(),
        name => format!("{name}-compressed"),
    };
    line("format", format!("{} ({compression})", info.format));
    let on_disk = if info.file_bytes == 0 && info.path == mmusim_trace::STDIN {
        "a stream".to_owned()
    } else {
        format!("{} on disk", bytes(info.file_bytes))
    };
    line("size", format!("{on_disk}, {} decoded", bytes(info.decoded_bytes)));
    if let Some(hash) = &info.xxh3_128 {
        line(mmusim_trace::HASH_ALGORITHM, hash.clone());
    }
    if let Some(description) = &info.description {
        line("source", description.clone());
    }
    line("references", thousands(r.records));
    let kinds = [
        ("fetch", r.by_kind.fetch),
        ("load", r.by_kind.load),
        ("store", r.by_kind.store),
        ("modify", r.by_kind.modify),
    ];
    for (kind, count) in kinds {
        line(&format!("  {kind}"), thousands(count));
    }
    if let Some(d) = &info.drmemtrace {
        line("skipped records", thousands(info.skipped_records));
        for (what, count) in [
            ("markers", d.markers),
            ("encodings", d.encodings),
            ("non-fetched instrs", d.non_fetched_instructions),
            ("prefetches", d.prefetches),
            ("flushes", d.flushes),
            ("header, thread, pid", d.bookkeeping),
        ] {
            line(&format!("  {what}"), thousands(count));
        }
        line(
            "threads",
            format!("{} in {} process{}", d.threads, d.processes, if d.processes == 1 { "" } else { "es" }),
        );
    } else if info.skipped_records > 0 {
        line("skipped records", format!("{} (cache maintenance, not references)", thousands(info.skipped_records)));
    }
    let inferred =
        if info.format == mmusim_trace::Format::Pinatrace { " (inferred: one per change of IP)" } else { "" };
    line("instructions", format!("{}{inferred}", thousands(r.instructions)));
    let unknown = if r.unknown_size_records > 0 {
        format!(" ({} references without a size)", thousands(r.unknown_size_records))
    } else {
        String::new()
    };
    line("bytes referenced", format!("{}{unknown}", thousands(r.accessed_bytes)));
    line("4 KiB pages", format!("{} ({} touched)", thousands(r.distinct_4k_pages), bytes(r.distinct_4k_pages << 12)));
    line("2 MiB pages", thousands(r.distinct_2m_pages));
    line("page-crossing refs", thousands(r.page_crossing_records));
    if let (Some(low), Some(high)) = (r.lowest_address, r.highest_address) {
        line("address range", format!("{low:#x} ..= {high:#x}"));
    }
    line("address spaces", format!("{} in {} VM{}", r.address_spaces, r.vms, if r.vms == 1 { "" } else { "s" }));
    format!("{}\n{out}", info.path)
}
