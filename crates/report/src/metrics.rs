//! The metrics of a run, derived from the simulator's integer counters.
//! Every metric is documented in docs/METRICS.md. Rates are the only floats
//! and are computed here, at the edge; counters stay integers.

use mmusim_trace::Kind;
use mmusim_translate::config::{PwcKind, WalkMemory};
use mmusim_translate::histogram::Distribution;
use mmusim_translate::per_kind::PerKind;
use mmusim_translate::sim::SimReport;
use mmusim_translate::{ByteSize, Config};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// A JSON object whose keys keep the order they were added in (probe order,
/// root-to-leaf, small to large), not alphabetical order.
#[derive(Clone, Debug, PartialEq)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T: Serialize> Serialize for Ordered<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<T> Ordered<T> {
    pub fn get(&self, key: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// `part / whole`, or nothing when `whole` is 0.
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Events per thousand instructions.
pub fn per_kilo(events: u64, instructions: u64) -> Option<f64> {
    ratio(events * 1000, instructions)
}

fn by_kind<T>(values: PerKind<T>) -> Ordered<T> {
    Ordered(Kind::ALL.iter().zip(values.0).map(|(kind, v)| (kind.name().to_owned(), v)).collect())
}

/// Lookups, hits and misses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Counts {
    pub lookups: u64,
    pub hits: u64,
    pub misses: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlbMetrics {
    pub name: String,
    pub level: u32,
    pub serves: mmusim_translate::config::Serves,
    pub lookups: u64,
    pub hits: u64,
    pub misses: u64,
    pub miss_rate: Option<f64>,
    pub mpki: Option<f64>,
    pub by_kind: Ordered<Counts>,
    pub hits_by_page_size: Ordered<u64>,
    pub misses_by_page_size: Ordered<u64>,
    pub fills: u64,
    pub evictions: u64,
    pub invalidated: u64,
}

/// p50, p90, p99, p99.9 and max of a walk-cost distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    pub max: u64,
}

impl Percentiles {
    /// Exact nearest-rank percentiles.
    pub fn of(distribution: &Distribution) -> Option<Percentiles> {
        Some(Percentiles {
            p50: distribution.value_at_quantile(0.5)?,
            p90: distribution.value_at_quantile(0.9)?,
            p99: distribution.value_at_quantile(0.99)?,
            p99_9: distribution.value_at_quantile(0.999)?,
            max: distribution.max()?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WalkMetrics {
    pub walks: u64,
    pub per_kilo_instruction: Option<f64>,
    pub by_kind: Ordered<u64>,
    pub by_page_size: Ordered<u64>,
    pub faulting: u64,
    pub references: u64,
    pub references_per_walk: Option<f64>,
    pub references_by_level: Ordered<u64>,
    pub references_percentiles: Option<Percentiles>,
    pub cycles: u64,
    pub cycles_per_walk: Option<f64>,
    pub cycles_percentiles: Option<Percentiles>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CacheLevelMetrics {
    pub lookups: u64,
    pub hits: u64,
    pub hit_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PwcMetrics {
    pub kind: PwcKind,
    /// Per table level (l4 = PML4 on x86-64 ... l2 = PD): entries probed.
    pub levels: Ordered<CacheLevelMetrics>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LineCacheMetrics {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableLevelMetrics {
    /// Table nodes.
    pub tables: u64,
    /// 4 KiB pages they occupy (a node smaller than a page still takes one).
    pub pages: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PageTableMetrics {
    pub levels: Ordered<TableLevelMetrics>,
    pub tables: u64,
    pub pages: u64,
    pub bytes: u64,
}

impl PageTableMetrics {
    fn of(levels: &[mmusim_translate::pagetable::LevelMemory]) -> PageTableMetrics {
        let count = levels.len();
        let levels: Vec<(String, TableLevelMetrics)> = levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                let metrics = TableLevelMetrics {
                    tables: level.nodes,
                    pages: level.nodes * level.node_bytes.div_ceil(4096),
                    bytes: level.nodes * level.node_bytes,
                };
                (level_name(i, count), metrics)
            })
            .collect();
        PageTableMetrics {
            tables: levels.iter().map(|(_, l)| l.tables).sum(),
            pages: levels.iter().map(|(_, l)| l.pages).sum(),
            bytes: levels.iter().map(|(_, l)| l.bytes).sum(),
            levels: Ordered(levels),
        }
    }
}

/// Switches between address spaces and what they cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContextMetrics {
    pub context_switches: u64,
    pub vm_switches: u64,
    pub flushes: u64,
    pub id_recycles: u64,
    pub entries_flushed: u64,
}

/// VM exits by reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExitMetrics {
    pub exits: u64,
    pub per_kilo_instruction: Option<f64>,
    pub by_reason: Ordered<u64>,
    pub cycles: u64,
}

/// The host dimension of nested walks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NestedMetrics {
    pub guest_references: u64,
    pub host_references: u64,
    pub host_references_by_level: Ordered<u64>,
    pub host_translations: u64,
    pub host_walks: u64,
    pub nested_tlb: Option<NestedTlbMetrics>,
    pub host_page_walk_caches: Option<PwcMetrics>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NestedTlbMetrics {
    pub lookups: u64,
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: Option<f64>,
    pub hits_by_page_size: Ordered<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    pub mode: String,
    pub references: u64,
    pub instructions: u64,
    pub references_by_kind: Ordered<u64>,
    pub page_lookups: u64,
    pub page_crossing_references: u64,
    pub tlbs: Vec<TlbMetrics>,
    pub walks: WalkMetrics,
    pub page_walk_caches: Option<PwcMetrics>,
    pub walk_line_cache: Option<LineCacheMetrics>,
    pub minor_faults: u64,
    /// Paging under a resident limit (`memory.resident`); absent without
    /// one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub paging: Option<PagingMetrics>,
    /// Large pages had and not had, when fragmentation, a huge-page pool or
    /// a resident limit bound them; absent otherwise.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub huge_pages: Option<HugePageMetrics>,
    /// Paging under a host limit (`host.memory.resident`): host swapping;
    /// absent without one.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub host_paging: Option<HostPagingMetrics>,
    /// The host's paging by VM (`host_paging_by_vm.vm1.major_faults`, by
    /// the trace's VM id); absent without a host limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_paging_by_vm: Option<Vec<VmHostPagingMetrics>>,
    /// With `[[balloon]]`: the balloons' counts, in total and by VM.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub balloon: Option<BalloonMetrics>,
    /// Zero-page sharing (`host.share_zero_pages`); absent without it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub sharing: Option<SharingMetrics>,
    /// Zero-page sharing by VM (`sharing_by_vm.vm1.cow_faults`); absent
    /// without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing_by_vm: Option<Vec<VmSharingMetrics>>,
    /// `memory.curve`: paging under LRU at each of its limits, named by the
    /// limit (`memory_curve.64KiB.major_faults`); absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_curve: Option<Vec<CurvePointMetrics>>,
    pub thp_promotions: u64,
    pub promotion_invalidations: u64,
    pub accessed_bits_set: u64,
    pub dirty_bits_set: u64,
    pub dirty_assists: u64,
    pub context: ContextMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_exits: Option<ExitMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nested: Option<NestedMetrics>,
    pub address_spaces: u64,
    pub vms: u64,
    /// The OS's tables: the guests' when virtualized.
    pub page_tables: PageTableMetrics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_page_tables: Option<PageTableMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_page_tables: Option<PageTableMetrics>,
    /// Physical memory handed out (guest-physical when virtualized).
    pub allocated_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_allocated_bytes: Option<u64>,
    pub translation_cycles: u64,
    pub translation_cycles_per_instruction: Option<f64>,
}

/// Paging under a resident limit: the top-level metrics docs/METRICS.md
/// names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PagingMetrics {
    pub major_faults: u64,
    pub evictions: u64,
    /// Clock only: why the hand chose each victim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evictions_by_reason: Option<Ordered<u64>>,
    pub swap_outs: u64,
    pub swap_ins: u64,
    pub accessed_bits_cleared: u64,
    pub invalidations: u64,
    pub resident_peak: u64,
    pub paging_cycles: u64,
    pub paging_cycles_per_instruction: Option<f64>,
}

impl PagingMetrics {
    fn of(config: &Config, report: &SimReport) -> Option<PagingMetrics> {
        let paging = report.paging.as_ref()?;
        let clock = config.memory.replacement == Some(mmusim_translate::config::PageReplacement::Clock);
        Some(PagingMetrics {
            major_faults: report.major_faults,
            evictions: paging.evictions,
            evictions_by_reason: clock.then(|| {
                Ordered(vec![
                    ("unreferenced".to_owned(), paging.evictions_unreferenced),
                    ("second_chance_spent".to_owned(), paging.evictions_second_chance_spent),
                ])
            }),
            swap_outs: paging.swap_outs,
            swap_ins: paging.swap_ins,
            accessed_bits_cleared: paging.accessed_bits_cleared,
            invalidations: paging.invalidations,
            resident_peak: paging.resident_peak,
            paging_cycles: paging.cycles,
            paging_cycles_per_instruction: ratio(paging.cycles, report.instructions()),
        })
    }
}

/// Paging under a host limit: the host's own replacement of guest-physical
/// pages (docs/METRICS.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostPagingMetrics {
    pub host_major_faults: u64,
    pub host_evictions: u64,
    pub host_swap_outs: u64,
    pub host_accessed_bits_cleared: u64,
    pub host_invalidations: u64,
    pub host_resident_peak: u64,
    pub host_double_paging: u64,
    pub host_double_paging_cycles: u64,
    pub host_paging_cycles: u64,
    pub host_paging_cycles_per_instruction: Option<f64>,
}

impl HostPagingMetrics {
    fn of(report: &SimReport) -> Option<HostPagingMetrics> {
        let host = report.host_paging.as_ref()?;
        Some(HostPagingMetrics {
            host_major_faults: host.swap_ins,
            host_evictions: host.evictions,
            host_swap_outs: host.swap_outs,
            host_accessed_bits_cleared: host.accessed_bits_cleared,
            host_invalidations: host.invalidations,
            host_resident_peak: host.resident_peak,
            host_double_paging: host.double_paging,
            host_double_paging_cycles: host.double_paging_cycles,
            host_paging_cycles: host.cycles,
            host_paging_cycles_per_instruction: ratio(host.cycles, report.instructions()),
        })
    }
}

/// What the balloons did (docs/METRICS.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BalloonMetrics {
    pub balloon_pages: u64,
    pub balloon_peak: u64,
    pub balloon_evictions: u64,
    pub balloon_major_faults: u64,
    pub balloon_host_frees: u64,
    pub balloon_by_vm: Vec<VmBalloonMetrics>,
}

/// One VM's balloon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VmBalloonMetrics {
    /// `vm` and the trace's VM id.
    pub name: String,
    pub pages: u64,
    pub peak: u64,
    pub evictions: u64,
    pub major_faults: u64,
    pub host_frees: u64,
    /// The VM's guest paging, balloon or not.
    pub guest_evictions: u64,
    pub guest_major_faults: u64,
}

impl BalloonMetrics {
    fn of(config: &Config, report: &SimReport) -> Option<BalloonMetrics> {
        if config.balloon.is_empty() {
            return None;
        }
        let total = report.paging.clone().unwrap_or_default();
        Some(BalloonMetrics {
            balloon_pages: total.balloon_pages,
            balloon_peak: total.balloon_peak,
            balloon_evictions: total.balloon_evictions,
            balloon_major_faults: total.balloon_major_faults,
            balloon_host_frees: total.balloon_host_frees,
            balloon_by_vm: report
                .guest_paging_by_vm
                .iter()
                .map(|(vm, c)| VmBalloonMetrics {
                    name: format!("vm{vm}"),
                    pages: c.balloon_pages,
                    peak: c.balloon_peak,
                    evictions: c.balloon_evictions,
                    major_faults: c.balloon_major_faults,
                    host_frees: c.balloon_host_frees,
                    guest_evictions: c.evictions,
                    guest_major_faults: c.swap_ins,
                })
                .collect(),
        })
    }
}

/// Zero-page sharing (docs/METRICS.md): host pages backed by the one
/// frame of zeros, the frames that saves, and the copy-on-write faults.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SharingMetrics {
    pub host_zero_shared_pages: u64,
    pub host_zero_shared_peak: u64,
    /// Frames sharing saves: the pages sharing the zero frame but one (the
    /// zero frame itself), at the end and at the peak.
    pub host_frames_saved: u64,
    pub host_frames_saved_peak: u64,
    pub host_pages_shared: u64,
    pub host_cow_faults: u64,
    pub host_cow_by_io: u64,
}

impl SharingMetrics {
    fn of(report: &SimReport) -> Option<SharingMetrics> {
        let s = report.sharing.as_ref()?;
        Some(SharingMetrics {
            host_zero_shared_pages: s.shared_pages,
            host_zero_shared_peak: s.shared_peak,
            host_frames_saved: s.shared_pages.saturating_sub(1),
            host_frames_saved_peak: s.shared_peak.saturating_sub(1),
            host_pages_shared: s.pages_shared,
            host_cow_faults: s.cow_faults,
            host_cow_by_io: s.cow_by_io,
        })
    }
}

/// One VM's zero-page sharing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VmSharingMetrics {
    /// `vm` and the trace's VM id.
    pub name: String,
    pub zero_shared_pages: u64,
    pub pages_shared: u64,
    pub cow_faults: u64,
    pub cow_by_io: u64,
}

/// The host's paging of one VM's guest-physical pages.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VmHostPagingMetrics {
    /// `vm` and the trace's VM id.
    pub name: String,
    pub major_faults: u64,
    pub evictions: u64,
    pub swap_outs: u64,
    pub double_paging: u64,
}

/// Paging under LRU at one limit of `memory.curve`: what a run with that
/// limit reports as its paging metrics (its minor faults are the run's).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePointMetrics {
    /// The limit, as a size (`64KiB`).
    pub name: String,
    pub major_faults: u64,
    pub evictions: u64,
    pub swap_outs: u64,
    pub swap_ins: u64,
    pub invalidations: u64,
    pub resident_peak: u64,
    pub paging_cycles: u64,
    pub paging_cycles_per_instruction: Option<f64>,
}

impl CurvePointMetrics {
    fn of(report: &SimReport) -> Option<Vec<CurvePointMetrics>> {
        let points = report.memory_curve.as_ref()?;
        let instructions = report.instructions();
        Some(
            points
                .iter()
                .map(|p| CurvePointMetrics {
                    name: p.resident.to_string(),
                    major_faults: p.major_faults,
                    evictions: p.evictions,
                    swap_outs: p.swap_outs,
                    swap_ins: p.swap_ins,
                    invalidations: p.invalidations,
                    resident_peak: p.resident_peak,
                    paging_cycles: p.paging_cycles,
                    paging_cycles_per_instruction: ratio(p.paging_cycles, instructions),
                })
                .collect(),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HugePageMetrics {
    pub huge_pages_granted: u64,
    pub huge_pages_from_pool: u64,
    pub huge_pages_denied: u64,
}

/// A level's name counted from the leaf: on 4-level x86-64, l4 is the PML4
/// and l1 the page table.
pub fn level_name(index: usize, levels: usize) -> String {
    format!("l{}", levels - index)
}

impl Metrics {
    pub fn new(config: &Config, report: &SimReport, references: &Distribution, cycles: &Distribution) -> Metrics {
        let instructions = report.instructions();
        let sizes: Vec<String> = report.page_shifts.iter().map(|&s| ByteSize(1 << s).to_string()).collect();
        let per_size = |counts: &[u64]| Ordered(sizes.iter().cloned().zip(counts.iter().copied()).collect());
        let levels = report.page_tables.len();
        let tlbs = report
            .tlbs
            .iter()
            .map(|tlb| {
                let c = &tlb.counters;
                let (lookups, hits) = (c.total_lookups(), c.total_hits());
                TlbMetrics {
                    name: tlb.name.clone(),
                    level: tlb.level,
                    serves: tlb.serves,
                    lookups,
                    hits,
                    misses: lookups - hits,
                    miss_rate: ratio(lookups - hits, lookups),
                    mpki: per_kilo(lookups - hits, instructions),
                    by_kind: by_kind(PerKind(Kind::ALL.map(|kind| Counts {
                        lookups: c.lookups[kind],
                        hits: c.hits(kind),
                        misses: c.misses[kind],
                    }))),
                    hits_by_page_size: per_size(&c.hits_by_size),
                    misses_by_page_size: per_size(&c.misses_by_size),
                    fills: c.fills,
                    evictions: c.evictions,
                    invalidated: c.invalidated,
                }
            })
            .collect();
        let w = &report.walks;
        let walks = WalkMetrics {
            walks: w.walks,
            per_kilo_instruction: per_kilo(w.walks, instructions),
            by_kind: by_kind(report.run.walks),
            by_page_size: per_size(&w.walks_by_size),
            faulting: w.faulting_walks,
            references: w.references,
            references_per_walk: ratio(w.references, w.walks),
            references_by_level: Ordered(
                (0..levels).map(|i| (level_name(i, levels), w.references_by_level[i])).collect(),
            ),
            references_percentiles: Percentiles::of(references),
            cycles: w.cycles,
            cycles_per_walk: ratio(w.cycles, w.walks),
            cycles_percentiles: Percentiles::of(cycles),
        };
        let page_walk_caches = report.pwc.as_ref().map(|pwc| PwcMetrics {
            kind: config.pwc.kind,
            levels: Ordered(
                (0..levels.saturating_sub(1))
                    .filter(|&i| pwc.lookups[i] > 0 || cached_level(config, i, levels))
                    .map(|i| {
                        let metrics = CacheLevelMetrics {
                            lookups: pwc.lookups[i],
                            hits: pwc.hits[i],
                            hit_rate: ratio(pwc.hits[i], pwc.lookups[i]),
                        };
                        (level_name(i, levels), metrics)
                    })
                    .collect(),
            ),
        });
        let walk_line_cache = (config.walk.memory == WalkMemory::Cache).then(|| LineCacheMetrics {
            hits: w.line_cache.hits,
            misses: w.line_cache.misses,
            hit_rate: ratio(w.line_cache.hits, w.line_cache.hits + w.line_cache.misses),
        });
        let virtualized = report.exits.is_some();
        let vm_exits = report.exits.as_ref().map(|e| {
            let mut by_reason = vec![
                ("page_table_update".into(), e.page_table_update),
                ("cr3_write".into(), e.cr3_write),
                ("shadow_fill".into(), e.shadow_fill),
                ("host_page_fault".into(), e.host_page_fault),
                ("timer".into(), e.timer),
            ];
            if report.paging.is_some() {
                // Only a guest with a resident limit pages.
                by_reason.push(("guest_paging".into(), e.guest_paging));
            }
            if report.sharing.is_some() {
                by_reason.push(("cow_fault".into(), e.cow_fault));
            }
            ExitMetrics {
                exits: e.total(),
                per_kilo_instruction: per_kilo(e.total(), instructions),
                by_reason: Ordered(by_reason),
                cycles: e.cycles,
            }
        });
        let nested = report.nested.as_ref().map(|n| {
            let host_levels = report.host_page_tables.as_ref().map_or(0, Vec::len);
            let host_sizes: Vec<String> =
                report.host_page_shifts.iter().flatten().map(|&s| ByteSize(1 << s).to_string()).collect();
            NestedMetrics {
                guest_references: n.counters.guest_references,
                host_references: n.counters.host_references,
                host_references_by_level: Ordered(
                    (0..host_levels)
                        .map(|i| (level_name(i, host_levels), n.counters.host_references_by_level[i]))
                        .collect(),
                ),
                host_translations: n.counters.host_translations,
                host_walks: n.counters.host_walks,
                nested_tlb: n.tlb.as_ref().map(|t| NestedTlbMetrics {
                    lookups: t.total_lookups(),
                    hits: t.total_hits(),
                    misses: t.total_misses(),
                    hit_rate: ratio(t.total_hits(), t.total_lookups()),
                    hits_by_page_size: Ordered(host_sizes.iter().cloned().zip(t.hits_by_size).collect()),
                }),
                host_page_walk_caches: n.host_pwc.as_ref().map(|pwc| PwcMetrics {
                    kind: config.nested.as_ref().map_or(PwcKind::None, |c| c.pwc.kind),
                    levels: Ordered(
                        (0..host_levels.saturating_sub(1))
                            .filter(|&i| pwc.lookups[i] > 0)
                            .map(|i| {
                                let metrics = CacheLevelMetrics {
                                    lookups: pwc.lookups[i],
                                    hits: pwc.hits[i],
                                    hit_rate: ratio(pwc.hits[i], pwc.lookups[i]),
                                };
                                (level_name(i, host_levels), metrics)
                            })
                            .collect(),
                    ),
                }),
            }
        });
        let c = &report.context;
        Metrics {
            mode: report.mode.to_owned(),
            references: report.references(),
            instructions,
            references_by_kind: by_kind(report.run.references),
            page_lookups: report.page_lookups().total(),
            page_crossing_references: report.run.page_crossing_references,
            tlbs,
            walks,
            page_walk_caches,
            walk_line_cache,
            minor_faults: report.faults,
            paging: PagingMetrics::of(config, report),
            huge_pages: report.huge_pages.as_ref().map(|h| HugePageMetrics {
                huge_pages_granted: h.granted,
                huge_pages_from_pool: h.from_pool,
                huge_pages_denied: h.denied,
            }),
            host_paging: HostPagingMetrics::of(report),
            balloon: BalloonMetrics::of(config, report),
            host_paging_by_vm: report.host_paging.as_ref().map(|_| {
                report
                    .host_paging_by_vm
                    .iter()
                    .map(|(vm, c)| VmHostPagingMetrics {
                        name: format!("vm{vm}"),
                        major_faults: c.major_faults,
                        evictions: c.evictions,
                        swap_outs: c.swap_outs,
                        double_paging: c.double_paging,
                    })
                    .collect()
            }),
            sharing: SharingMetrics::of(report),
            sharing_by_vm: report.sharing.as_ref().map(|_| {
                report
                    .sharing_by_vm
                    .iter()
                    .map(|(vm, c)| VmSharingMetrics {
                        name: format!("vm{vm}"),
                        zero_shared_pages: c.shared_pages,
                        pages_shared: c.pages_shared,
                        cow_faults: c.cow_faults,
                        cow_by_io: c.cow_by_io,
                    })
                    .collect()
            }),
            memory_curve: CurvePointMetrics::of(report),
            thp_promotions: report.promotions,
            promotion_invalidations: report.run.promotion_invalidations,
            accessed_bits_set: w.accessed_bits_set,
            dirty_bits_set: w.dirty_bits_set + report.run.dirty_bits_set_by_assists,
            dirty_assists: report.run.dirty_assists,
            context: ContextMetrics {
                context_switches: c.context_switches,
                vm_switches: c.vm_switches,
                flushes: c.flushes,
                id_recycles: c.id_recycles,
                entries_flushed: c.entries_flushed,
            },
            vm_exits,
            nested,
            address_spaces: report.address_spaces,
            vms: report.vms,
            page_tables: PageTableMetrics::of(&report.page_tables),
            host_page_tables: report.host_page_tables.as_deref().map(PageTableMetrics::of),
            shadow_page_tables: report.shadow_page_tables.as_deref().map(PageTableMetrics::of),
            allocated_bytes: report.allocated_bytes,
            host_allocated_bytes: virtualized.then_some(report.host_allocated_bytes),
            translation_cycles: report.run.translation_cycles,
            translation_cycles_per_instruction: ratio(report.run.translation_cycles, instructions),
        }
    }
}

/// Whether table level `index` has a cache (split) or can be cached (unified).
fn cached_level(config: &Config, index: usize, levels: usize) -> bool {
    match config.pwc.kind {
        PwcKind::None => false,
        PwcKind::Unified => true,
        PwcKind::Split => config.pwc.levels.contains_key(&level_name(index, levels)),
    }
}
