//! `summary.json` and the terminal table of a run.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::metrics::Metrics;
use crate::run::{RunError, RunOutput, WorkloadProvenance};
use crate::text::{bytes, thousands};

/// The tool that made a file.
#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

pub const TOOL: Tool = Tool { name: "mmusim", version: env!("CARGO_PKG_VERSION") };

/// Everything about a run, as written to `summary.json`.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub tool: Tool,
    pub config: &'a mmusim_translate::Config,
    pub workload: &'a WorkloadProvenance,
    pub metrics: &'a Metrics,
    /// References and cycles per walk: every value that occurred, with its
    /// count, ascending.
    pub distributions: crate::metrics::Ordered<Vec<(u64, u64)>>,
}

impl<'a> Summary<'a> {
    pub fn of(output: &'a RunOutput) -> Summary<'a> {
        let distributions = crate::metrics::Ordered(
            crate::outputs::DISTRIBUTIONS
                .iter()
                .zip([&output.references, &output.cycles])
                .map(|(name, d)| (name.to_string(), d.buckets().collect()))
                .collect(),
        );
        Summary {
            tool: TOOL,
            config: &output.config,
            workload: &output.workload,
            metrics: &output.metrics,
            distributions,
        }
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("summaries serialize");
        text.push('\n');
        text
    }
}

/// Writes a run's directory (summary.json, metrics.csv, histograms.csv,
/// .hgrm files) into `dir`, each file atomically; returns `dir`.
pub fn write_summary(dir: &Path, output: &RunOutput) -> Result<PathBuf, RunError> {
    let params = vec![("config".to_owned(), output.config.name.clone())];
    crate::outputs::write_run_dir(dir, &output.config.name, &params, output)?;
    Ok(dir.to_owned())
}

fn rate(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// The short table `mmusim run` prints.
pub fn render(output: &RunOutput) -> String {
    let m = &output.metrics;
    let mut out = String::new();
    let traces: Vec<&str> = output.workload.traces.iter().map(|t| t.path.as_str()).collect();
    let _ = writeln!(out, "{} ({}) on {}", output.config.name, m.mode, traces.join(" + "));
    let _ = writeln!(
        out,
        "  {} references, {} instructions, {} page lookups ({} crossing a page)",
        thousands(m.references),
        thousands(m.instructions),
        thousands(m.page_lookups),
        thousands(m.page_crossing_references)
    );
    let _ = writeln!(
        out,
        "  {:<10}{:>14}{:>14}{:>12}{:>11}{:>10}",
        "TLB", "lookups", "hits", "misses", "miss rate", "MPKI"
    );
    for tlb in &m.tlbs {
        let _ = writeln!(
            out,
            "  {:<10}{:>14}{:>14}{:>12}{:>10}%{:>10}",
            tlb.name,
            thousands(tlb.lookups),
            thousands(tlb.hits),
            thousands(tlb.misses),
            rate(tlb.miss_rate.map(|r| r * 100.0), 3),
            rate(tlb.mpki, 3)
        );
    }
    let w = &m.walks;
    let p99 = |p: &Option<crate::metrics::Percentiles>| p.as_ref().map_or("-".to_owned(), |p| p.p99.to_string());
    let _ = writeln!(
        out,
        "  walks {} ({} per kilo-instruction): {} references per walk (p99 {}), {} cycles per walk (p99 {})",
        thousands(w.walks),
        rate(w.per_kilo_instruction, 3),
        rate(w.references_per_walk, 2),
        p99(&w.references_percentiles),
        rate(w.cycles_per_walk, 1),
        p99(&w.cycles_percentiles)
    );
    if let Some(pwc) = &m.page_walk_caches {
        let levels: Vec<String> = pwc
            .levels
            .0
            .iter()
            .map(|(name, l)| match l.hit_rate {
                Some(r) => format!("{name} {:.1}%", r * 100.0),
                None => format!("{name} unused"),
            })
            .collect();
        let _ = writeln!(out, "  page-walk cache hit rates: {}", levels.join(", "));
    }
    if let Some(nested) = &m.nested {
        let _ = writeln!(
            out,
            "  nested: {} guest and {} host references; {} of {} guest-physical translations walked the host{}",
            thousands(nested.guest_references),
            thousands(nested.host_references),
            thousands(nested.host_walks),
            thousands(nested.host_translations),
            nested.nested_tlb.as_ref().map_or(String::new(), |t| format!(
                " (nested TLB hit rate {}%)",
                rate(t.hit_rate.map(|r| r * 100.0), 1)
            ))
        );
    }
    let c = &m.context;
    if c.context_switches + c.vm_switches > 0 {
        let _ = writeln!(
            out,
            "  {} context and {} VM switches: {} flushes, {} id recycles, {} entries flushed",
            thousands(c.context_switches),
            thousands(c.vm_switches),
            thousands(c.flushes),
            thousands(c.id_recycles),
            thousands(c.entries_flushed)
        );
    }
    if let Some(exits) = &m.vm_exits {
        let reasons: Vec<String> =
            exits.by_reason.0.iter().filter(|(_, n)| *n > 0).map(|(r, n)| format!("{} {r}", thousands(*n))).collect();
        let _ = writeln!(
            out,
            "  {} VM exits ({}), {} cycles",
            thousands(exits.exits),
            if reasons.is_empty() { "none".to_owned() } else { reasons.join(", ") },
            thousands(exits.cycles)
        );
    }
    let mut tables =
        format!("page tables {} in {} tables", bytes(m.page_tables.bytes), thousands(m.page_tables.tables));
    if let Some(host) = &m.host_page_tables {
        tables.push_str(&format!(" (host: {})", bytes(host.bytes)));
    }
    if let Some(shadow) = &m.shadow_page_tables {
        tables.push_str(&format!(" (shadow: {})", bytes(shadow.bytes)));
    }
    let _ = writeln!(
        out,
        "  {} minor faults, {tables}, translation overhead {} cycles per instruction",
        thousands(m.minor_faults),
        rate(m.translation_cycles_per_instruction, 4)
    );
    if let Some(p) = &m.paging {
        let _ = writeln!(
            out,
            "  paging: {} major faults, {} evictions ({} swapped out), {} invalidations, peak {} pages resident, {} cycles per instruction",
            thousands(p.major_faults),
            thousands(p.evictions),
            thousands(p.swap_outs),
            thousands(p.invalidations),
            thousands(p.resident_peak),
            rate(p.paging_cycles_per_instruction, 4)
        );
    }
    if let Some(h) = &m.host_paging {
        let _ = writeln!(
            out,
            "  host paging: {} major faults ({} double paging), {} evictions ({} swapped out), {} invalidations, peak {} pages resident, {} cycles per instruction",
            thousands(h.host_major_faults),
            thousands(h.host_double_paging),
            thousands(h.host_evictions),
            thousands(h.host_swap_outs),
            thousands(h.host_invalidations),
            thousands(h.host_resident_peak),
            rate(h.host_paging_cycles_per_instruction, 4)
        );
    }
    if let Some(z) = &m.sharing {
        let _ = writeln!(
            out,
            "  zero-page sharing: {} host pages share the zero frame at the end (peak {}), {} host frames saved (peak {}), {} copy-on-write faults, {} shares broken by guest I/O",
            thousands(z.host_zero_shared_pages),
            thousands(z.host_zero_shared_peak),
            thousands(z.host_frames_saved),
            thousands(z.host_frames_saved_peak),
            thousands(z.host_cow_faults),
            thousands(z.host_cow_by_io)
        );
    }
    if let Some(b) = &m.balloon {
        let _ = writeln!(
            out,
            "  balloons: {} pages at the end (peak {}), {} guest evictions and {} major faults they caused, {} host frames freed",
            thousands(b.balloon_pages),
            thousands(b.balloon_peak),
            thousands(b.balloon_evictions),
            thousands(b.balloon_major_faults),
            thousands(b.balloon_host_frees)
        );
    }
    if let Some(curve) = &m.memory_curve {
        let points: Vec<String> = curve.iter().map(|p| format!("{} {}", p.name, thousands(p.major_faults))).collect();
        let _ = writeln!(out, "  memory curve (LRU), major faults by resident limit: {}", points.join(", "));
    }
    if let Some(h) = &m.huge_pages {
        let _ = writeln!(
            out,
            "  huge pages: {} granted ({} from the pool), {} denied",
            thousands(h.huge_pages_granted),
            thousands(h.huge_pages_from_pool),
            thousands(h.huge_pages_denied)
        );
    }
    out
}
