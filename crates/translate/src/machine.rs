//! The machine a resolved config describes, in the form the simulator
//! builds from: every default written out, every derived figure computed
//! (sets and ways, the page sizes each TLB array holds as shifts with their
//! counter index, the page-walk caches per table level), and nothing
//! optional that the mode requires. `Config` stays the file format (what
//! `config show` prints and sweeps override); `Machine::from_resolved` is
//! the one place that reads a resolved config's optional fields, after
//! `Config::resolve` has checked every one of them.

use crate::config::{
    parse_pwc_level, Allocator, Config, ConfigError, ContextConfig, ExitConfig, Mode, PagePolicyKind, PageReplacement,
    PagesConfig, PagingCosts, PwcConfig, PwcKind, Replacement, Serves, TableShape,
};
use crate::pagetable::PagePolicy;
use crate::size::ByteSize;

/// A resolved machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Native, nested or shadow paging, with the host where there is one.
    pub virtualization: Virtualization,
    pub seed: u64,
    /// The table the hardware walks first: the native table, or each
    /// guest's.
    pub table: TableShape,
    /// Which page size backs each page of that table.
    pub pages: PagePolicy,
    /// The physical memory behind it (guest-physical when virtualized).
    pub memory: Memory,
    /// The sizes a translation can have (the guest's and host's together),
    /// as shifts, ascending: what per-size counters index.
    pub translation_shifts: Vec<u32>,
    /// The TLBs, in probe order (by level, then name).
    pub tlbs: Vec<TlbSpec>,
    /// The page-walk cache of the table walked first.
    pub pwc: PwcSpec,
    pub walk: WalkSpec,
    pub context: ContextConfig,
    /// Exit costs (the defaults natively, where there are no exits) and
    /// the timer interval.
    pub exits: ExitConfig,
}

/// How addresses are translated, and the host behind a VM.
#[derive(Clone, Debug)]
pub enum Virtualization {
    Native,
    /// Two-dimensional walks through the guest's and the host's tables.
    Nested {
        host: Host,
        /// The nested TLB (guest-physical to host-physical), one array.
        tlb: Option<TlbSpec>,
        /// The host table's page-walk cache.
        host_pwc: PwcSpec,
    },
    /// Walks of the hypervisor's shadow tables.
    Shadow {
        host: Host,
    },
}

/// A physical memory.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    pub bytes: u64,
    pub allocator: Allocator,
    /// The resident limit on the pages it backs, if any.
    pub paging: Option<Paging>,
    /// Whether large pages can be had (fragmentation, a pool, or a limit
    /// that bounds the blocks), if the page policy asks for any.
    pub large: Option<LargeSpec>,
}

/// What `huge::LargeBlocks` is built from.
#[derive(Clone, Copy, Debug)]
pub struct LargeSpec {
    pub block_shift: u32,
    /// Physical memory for data pages: the resident limit, or the size.
    pub bytes: u64,
    pub pool: u64,
    pub fragmentation: f64,
}

impl LargeSpec {
    /// Only a `thp` or `ranges` policy with fragmentation, a pool or a
    /// resident limit: without them large pages are always had, as before.
    fn of(memory: &crate::config::MemoryConfig, pages: &PagesConfig, shape: &TableShape) -> Option<LargeSpec> {
        if !matches!(pages.policy, PagePolicyKind::Thp | PagePolicyKind::Ranges) {
            return None;
        }
        if memory.resident.is_none() && memory.fragmentation.is_none() && pages.huge_pool.is_none() {
            return None;
        }
        Some(LargeSpec {
            block_shift: crate::config::large_block_shift(pages, shape),
            bytes: memory.resident.unwrap_or(memory.size).0,
            pool: pages.huge_pool.unwrap_or(0),
            fragmentation: memory.fragmentation.map_or(0.0, |f| f.0),
        })
    }
}

/// A resident limit and how it is kept (`[memory]`, see `residency`).
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    /// Bytes of pages that may be resident at once.
    pub resident: u64,
    pub replacement: PageReplacement,
    pub clock_clear_flushes: bool,
    pub costs: PagingCosts,
}

impl Paging {
    fn of(memory: &crate::config::MemoryConfig) -> Option<Paging> {
        Some(Paging {
            resident: memory.resident?.0,
            replacement: memory.replacement.expect("resolved"),
            clock_clear_flushes: memory.clock_clear_flushes.expect("resolved"),
            costs: memory.costs.expect("resolved"),
        })
    }
}

/// The host of a virtualized machine.
#[derive(Clone, Debug)]
pub struct Host {
    /// The host table's geometry (nested: walked by the hardware; shadow:
    /// the hypervisor's map of guest memory).
    pub table: TableShape,
    pub pages: PagePolicy,
    pub memory: Memory,
    /// Zero-page sharing (`host.share_zero_pages`, nested).
    pub share_zero_pages: bool,
}

/// One TLB.
#[derive(Clone, Debug)]
pub struct TlbSpec {
    pub name: String,
    pub level: u32,
    pub serves: Serves,
    pub latency: u32,
    /// Its arrays: the main one first (named ""), if it has one, then the
    /// named ones by name.
    pub arrays: Vec<ArraySpec>,
}

/// One set-associative array of a TLB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArraySpec {
    pub name: String,
    pub entries: usize,
    pub ways: usize,
    pub replacement: Replacement,
    /// The page sizes it holds, ascending, as (shift, index among the
    /// translation sizes).
    pub sizes: Vec<(u32, usize)>,
}

/// A page-walk cache.
#[derive(Clone, Debug)]
pub enum PwcSpec {
    None,
    /// Per table level, root first: (entries, ways) where that level has a
    /// cache.
    Split {
        levels: Vec<Option<(usize, usize)>>,
        latency: u32,
    },
    Unified {
        entries: usize,
        ways: usize,
        latency: u32,
    },
}

/// What a page-table reference costs.
#[derive(Clone, Copy, Debug)]
pub enum WalkSpec {
    Fixed(u32),
    /// An LRU cache of page-table lines.
    Cache {
        lines: usize,
        ways: usize,
        line_shift: u32,
        hit_latency: u32,
        miss_latency: u32,
    },
}

impl Machine {
    /// The machine a config describes, resolving (and so checking) it
    /// first.
    pub fn new(config: &Config) -> Result<Machine, ConfigError> {
        Ok(Machine::from_resolved(&config.resolve()?))
    }

    /// The machine of `resolved`, a config that `Config::resolve` returned
    /// (it has checked every field read here).
    pub(crate) fn from_resolved(resolved: &Config) -> Machine {
        let table = resolved.table_shape();
        let translation_shifts = resolved.translation_shifts();
        let tlbs = resolved
            .tlb_order()
            .into_iter()
            .map(|name| {
                let tlb = &resolved.tlb[name];
                let mut arrays = Vec::new();
                if let Some(entries) = tlb.entries {
                    arrays.push(array("", entries, tlb.ways, &tlb.page_sizes, tlb.replacement, &translation_shifts));
                }
                for (array_name, a) in &tlb.arrays {
                    arrays.push(array(
                        array_name,
                        a.entries,
                        a.ways,
                        &a.page_sizes,
                        a.replacement,
                        &translation_shifts,
                    ));
                }
                TlbSpec { name: name.to_owned(), level: tlb.level, serves: tlb.serves, latency: tlb.latency, arrays }
            })
            .collect();
        let host = || {
            let host = resolved.host.as_ref().expect("resolved");
            let table = resolved.host_shape().expect("resolved");
            Host {
                pages: page_policy(&host.pages, &table),
                memory: Memory {
                    bytes: host.memory.size.0,
                    allocator: host.memory.allocator,
                    // A host limit (overcommit): nested mode only.
                    paging: Paging::of(&host.memory),
                    large: None,
                },
                share_zero_pages: host.share_zero_pages,
                table,
            }
        };
        let virtualization = match resolved.mode {
            Mode::Native => Virtualization::Native,
            Mode::Nested => {
                let host = host();
                let nested = resolved.nested.as_ref().expect("resolved");
                Virtualization::Nested {
                    tlb: nested.tlb.as_ref().map(|t| TlbSpec {
                        name: "nested".into(),
                        level: 0,
                        serves: Serves::Data,
                        latency: t.latency,
                        arrays: vec![array(
                            "",
                            t.entries,
                            t.ways,
                            &t.page_sizes,
                            t.replacement,
                            &host.table.page_shifts,
                        )],
                    }),
                    host_pwc: pwc_spec(&nested.pwc, &host.table),
                    host,
                }
            }
            Mode::Shadow => Virtualization::Shadow { host: host() },
        };
        let walk = match &resolved.walk.cache {
            None => WalkSpec::Fixed(resolved.walk.latency),
            Some(cache) => {
                let line_shift = cache.line_bytes.0.trailing_zeros();
                WalkSpec::Cache {
                    lines: (cache.capacity.0 >> line_shift) as usize,
                    ways: cache.ways.expect("resolved") as usize,
                    line_shift,
                    hit_latency: cache.hit_latency,
                    miss_latency: cache.miss_latency,
                }
            }
        };
        Machine {
            virtualization,
            seed: resolved.seed,
            pages: page_policy(&resolved.pages, &table),
            memory: Memory {
                bytes: resolved.memory.size.0,
                allocator: resolved.memory.allocator,
                paging: Paging::of(&resolved.memory),
                large: LargeSpec::of(&resolved.memory, &resolved.pages, &table),
            },
            pwc: pwc_spec(&resolved.pwc, &table),
            table,
            translation_shifts,
            tlbs,
            walk,
            context: resolved.context.clone(),
            exits: resolved.exits.clone().unwrap_or_default(),
        }
    }

    pub fn mode(&self) -> Mode {
        match self.virtualization {
            Virtualization::Native => Mode::Native,
            Virtualization::Nested { .. } => Mode::Nested,
            Virtualization::Shadow { .. } => Mode::Shadow,
        }
    }

    /// The host table's geometry, when virtualized.
    pub fn host_table(&self) -> Option<&TableShape> {
        match &self.virtualization {
            Virtualization::Native => None,
            Virtualization::Nested { host, .. } | Virtualization::Shadow { host } => Some(&host.table),
        }
    }

    /// The timer's interval in instructions (0: no timer exits).
    pub fn timer_interval(&self) -> u64 {
        self.exits.timer_interval
    }
}

/// An array of `entries` (with `ways`, fully associative if none) holding
/// `sizes`, each found among `size_shifts`.
fn array(
    name: &str,
    entries: u32,
    ways: Option<u32>,
    sizes: &Option<Vec<ByteSize>>,
    replacement: Option<Replacement>,
    size_shifts: &[u32],
) -> ArraySpec {
    let entries = entries as usize;
    ArraySpec {
        name: name.to_owned(),
        entries,
        ways: ways.map_or(entries, |w| w as usize),
        replacement: replacement.expect("resolved"),
        sizes: sizes
            .as_ref()
            .expect("resolved")
            .iter()
            .map(|s| {
                let shift = s.0.trailing_zeros();
                (shift, size_shifts.iter().position(|&t| t == shift).expect("a size the tables map"))
            })
            .collect(),
    }
}

fn pwc_spec(pwc: &PwcConfig, shape: &TableShape) -> PwcSpec {
    let levels = shape.index_bits.len();
    match pwc.kind {
        PwcKind::None => PwcSpec::None,
        PwcKind::Split => {
            let mut caches = vec![None; levels];
            for (name, geometry) in &pwc.levels {
                let from_leaf = parse_pwc_level(name).expect("resolved");
                caches[levels - from_leaf] =
                    Some((geometry.entries as usize, geometry.ways.expect("resolved") as usize));
            }
            PwcSpec::Split { levels: caches, latency: pwc.latency }
        }
        PwcKind::Unified => PwcSpec::Unified {
            entries: pwc.entries.expect("resolved") as usize,
            ways: pwc.ways.expect("resolved") as usize,
            latency: pwc.latency,
        },
    }
}

/// The policy of a resolved `[pages]` section for a table of `shape`.
fn page_policy(pages: &PagesConfig, shape: &TableShape) -> PagePolicy {
    let shift = |size: ByteSize| size.0.trailing_zeros();
    match pages.policy {
        PagePolicyKind::Fixed => PagePolicy::Fixed(shift(pages.size.expect("resolved"))),
        PagePolicyKind::Ranges => {
            let mut ranges: Vec<(u64, u64, u32)> =
                pages.ranges.iter().map(|r| (r.start, r.end, shift(r.size))).collect();
            ranges.sort_unstable();
            PagePolicy::Ranges { default: shift(pages.size.expect("resolved")), ranges }
        }
        PagePolicyKind::Thp => PagePolicy::Thp {
            small: shape.offset_bits,
            large: shift(pages.large.expect("resolved")),
            promote_after: pages.promote_after.expect("resolved"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_fills_in_what_the_simulator_builds_from() {
        let toml = "[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 64\nways = 4\n\
                    [tlb.d.arrays.big]\nentries = 8\npage_sizes = [\"2MiB\"]\n\
                    [pwc]\nkind = \"split\"\n[pwc.levels.l2]\nentries = 32\nways = 4\n";
        let machine = Machine::new(&Config::from_toml(toml).unwrap()).unwrap();
        // x86-64's 4-level table maps 4 KiB, 2 MiB and 1 GiB pages.
        assert_eq!(machine.translation_shifts, vec![12, 21, 30]);
        let arrays = &machine.tlbs[0].arrays;
        // The main array takes the sizes no named array names: 4 KiB and
        // 1 GiB; the named one is fully associative by default.
        assert_eq!(
            arrays[0],
            ArraySpec {
                name: String::new(),
                entries: 64,
                ways: 4,
                replacement: Replacement::Lru,
                sizes: vec![(12, 0), (30, 2)],
            }
        );
        assert_eq!((arrays[1].name.as_str(), arrays[1].ways, &arrays[1].sizes), ("big", 8, &vec![(21, 1)]));
        // `l2` is the level two above the leaf: index 2 of levels 0..4.
        assert!(
            matches!(&machine.pwc, PwcSpec::Split { levels, .. } if *levels == vec![None, None, Some((32, 4)), None])
        );
        assert_eq!(machine.mode(), Mode::Native);
        assert!(machine.host_table().is_none());
        assert!(Machine::new(
            &Config::from_toml("[tlb.d]\nlevel = 1\nserves = \"data\"\nentries = 6\nways = 4\n").unwrap()
        )
        .is_err());
    }
}
