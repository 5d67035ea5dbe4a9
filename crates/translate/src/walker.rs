//! The page walker: reads a translation out of the page tables, using the
//! page-walk caches to skip levels and the walk-memory model to cost each
//! reference.

use serde::Serialize;

use crate::config::Config;
use crate::histogram::Distribution;
use crate::pagetable::{PageTables, MAX_LEVELS};
use crate::pwc::{LineCounters, PageWalkCache, WalkMemory};

/// Counters of every walk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WalkCounters {
    pub walks: u64,
    /// Walks by the page size (index into the table's sizes) they found.
    pub walks_by_size: [u64; MAX_LEVELS],
    /// Walks that found nothing mapped (minor faults).
    pub faulting_walks: u64,
    /// Memory references to page-table entries.
    pub references: u64,
    /// References per table level (0 = root).
    pub references_by_level: [u64; MAX_LEVELS],
    /// Cycles of walks: page-walk-cache probes plus references.
    pub cycles: u64,
    /// Walks that set a page's accessed bit (its first walk).
    pub accessed_bits_set: u64,
    /// Walks that set a page's dirty bit (a store's first walk to it).
    pub dirty_bits_set: u64,
    pub line_cache: LineCounters,
}

/// What one walk found and cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOutcome {
    pub page_shift: u32,
    /// The leaf's dirty bit after the walk.
    pub dirty: bool,
    pub references: u32,
    pub cycles: u32,
    /// A THP promotion made the cached translations of this region stale.
    pub promoted: Option<(u64, u32)>,
}

#[derive(Debug, Clone)]
pub struct Walker {
    pub tables: PageTables,
    pub pwc: PageWalkCache,
    memory: WalkMemory,
    shifts: Vec<u32>,
    entry_bytes: u32,
    pub counters: WalkCounters,
    /// References per walk.
    pub reference_histogram: Distribution,
    /// Cycles per walk.
    pub cycle_histogram: Distribution,
}

impl Walker {
    pub fn new(config: &Config) -> Walker {
        let tables = PageTables::new(config);
        let shifts = (0..tables.levels()).map(|level| tables.level_shift(level)).collect();
        Walker {
            entry_bytes: tables.shape().entry_bytes,
            tables,
            pwc: PageWalkCache::new(config),
            memory: WalkMemory::new(config),
            shifts,
            counters: WalkCounters::default(),
            reference_histogram: Distribution::default(),
            cycle_histogram: Distribution::default(),
        }
    }

    /// Walks `space`'s table for `va` (faulting in what is missing).
    pub fn walk(&mut self, space: usize, tag: u32, va: u64, write: bool) -> WalkOutcome {
        let found = self.tables.walk(space, va, write);
        let leaf = found.levels - 1;
        let mut cycles = 0u32;
        let mut references = 0u32;
        let start = if self.pwc.is_unified() {
            0
        } else {
            let (start, probe) = self.pwc.split_start(tag, va, &self.shifts, leaf);
            cycles += probe;
            start
        };
        for level in start..=leaf {
            let addr = found.entry_addrs[level];
            if level < leaf && self.pwc.is_unified() {
                let (hit, probe) = self.pwc.unified_probe(addr, self.entry_bytes, level);
                cycles += probe;
                if hit {
                    continue;
                }
            }
            references += 1;
            self.counters.references_by_level[level] += 1;
            cycles += self.memory.reference(addr, &mut self.counters.line_cache);
        }
        self.pwc.split_fill(tag, va, &self.shifts, start, leaf);

        let size_index = self.tables.shape().page_shifts.iter().position(|&s| s == found.page_shift).expect("mappable");
        let c = &mut self.counters;
        c.walks += 1;
        c.walks_by_size[size_index] += 1;
        c.faulting_walks += u64::from(found.faulted);
        c.references += u64::from(references);
        c.cycles += u64::from(cycles);
        c.accessed_bits_set += u64::from(found.set_accessed);
        c.dirty_bits_set += u64::from(found.set_dirty);
        self.reference_histogram.record(u64::from(references));
        self.cycle_histogram.record(u64::from(cycles));
        WalkOutcome { page_shift: found.page_shift, dirty: found.dirty, references, cycles, promoted: found.promoted }
    }
}
