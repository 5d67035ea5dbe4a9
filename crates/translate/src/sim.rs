//! The translation pipeline: every reference of a trace through the TLB
//! hierarchy, walking the page tables on a miss.
//!
//! Rules (see ARCHITECTURE.md for why):
//! - A reference looks up every page it touches, lowest address first: one
//!   lookup, or more when it crosses a page boundary of the page size found.
//! - Fetches go down the instruction path (TLBs serving instructions, by
//!   level), loads, stores and modifies down the data path.
//! - Fill rule: a hit at some level fills every level above it on the path;
//!   a miss at every level walks the page table and fills them all. Levels
//!   are non-inclusive: evicting from one never removes another's copy.
//! - A store or modify that hits a translation cached clean (dirty bit
//!   clear) is a dirty-bit assist: the page-table entry's dirty bit is set
//!   if it was clear, and the cached copy becomes dirty.

use std::collections::HashMap;

use mmusim_trace::{Access, Kind};
use serde::Serialize;

use crate::config::{Config, ConfigError, Mode};
use crate::histogram::Distribution;
use crate::pagetable::LevelMemory;
use crate::pwc::PwcCounters;
use crate::tlb::{Tlb, TlbCounters};
use crate::walker::{WalkCounters, Walker};

/// `first_tlb` of a path with no TLB.
const NO_TLB: usize = usize::MAX;

/// A reference whose address the page table cannot translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressOutOfRange {
    /// Position of the reference in the batch given to `run`.
    pub index: usize,
    pub addr: u64,
    pub va_bits: u32,
}

impl std::fmt::Display for AddressOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "address {:#x} lies outside the {}-bit virtual address space of the configured page table",
            self.addr, self.va_bits
        )
    }
}

impl std::error::Error for AddressOutOfRange {}

/// Whole-run counters outside the TLBs and walker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunCounters {
    /// References by kind (fetch, load, store, modify).
    pub references: [u64; 4],
    /// Page lookups beyond a reference's first, by kind: the extra pages of
    /// page-crossing references.
    pub extra_page_lookups: [u64; 4],
    /// References that touched more than one page.
    pub page_crossing_references: u64,
    /// Walks by the kind of the reference that caused them.
    pub walks: [u64; 4],
    /// Estimated translation overhead: every TLB lookup costs its TLB's
    /// latency, every walk its cycles (filled in by `report`).
    pub translation_cycles: u64,
    /// Stores and modifies that hit a translation cached clean.
    pub dirty_assists: u64,
    /// Dirty bits such assists set in the page table.
    pub dirty_bits_set_by_assists: u64,
    /// Cached translations dropped because a THP promotion made them stale.
    pub promotion_invalidations: u64,
}

/// Address spaces, numbered in order of first appearance.
#[derive(Clone, Debug, Default)]
struct Spaces {
    ids: HashMap<(u16, u16), usize>,
    last: Option<((u16, u16), usize)>,
}

impl Spaces {
    #[inline(always)]
    fn of(&mut self, vm: u16, context: u16) -> usize {
        match self.last {
            Some((key, id)) if key == (vm, context) => id,
            _ => self.switch(vm, context),
        }
    }

    #[cold]
    #[inline(never)]
    fn switch(&mut self, vm: u16, context: u16) -> usize {
        let key = (vm, context);
        let next = self.ids.len();
        let id = *self.ids.entry(key).or_insert(next);
        self.last = Some((key, id));
        id
    }
}

#[derive(Debug, Clone)]
pub struct Simulator {
    config: Config,
    tlbs: Vec<Tlb>,
    instruction_path: Vec<usize>,
    data_path: Vec<usize>,
    /// First TLB of the instruction and data paths (`NO_TLB` if none), kept
    /// inline so the hot path does not chase the path vectors.
    first_tlb: [usize; 2],
    walker: Walker,
    spaces: Spaces,
    max_va: u64,
    va_bits: u32,
    counters: RunCounters,
}

impl Simulator {
    /// Builds the machine a config describes (resolving and checking it
    /// first).
    pub fn new(config: &Config) -> Result<Simulator, ConfigError> {
        let config = config.resolve()?;
        crate::pagetable::check_ranges(&config)?;
        match config.mode {
            Mode::Native => {}
        }
        let tlbs: Vec<Tlb> =
            config.tlb_order().into_iter().map(|name| Tlb::new(name, &config.tlb[name], &config)).collect();
        let path = |serves: fn(crate::config::Serves) -> bool| -> Vec<usize> {
            tlbs.iter().enumerate().filter(|(_, t)| serves(t.serves)).map(|(i, _)| i).collect()
        };
        let instruction_path = path(crate::config::Serves::instructions);
        let data_path = path(crate::config::Serves::data);
        let va_bits = config.table_shape().va_bits();
        let first_tlb =
            [instruction_path.first().copied().unwrap_or(NO_TLB), data_path.first().copied().unwrap_or(NO_TLB)];
        Ok(Simulator {
            first_tlb,
            walker: Walker::new(&config),
            max_va: if va_bits >= 64 { u64::MAX } else { (1u64 << va_bits) - 1 },
            va_bits,
            tlbs,
            instruction_path,
            data_path,
            spaces: Spaces::default(),
            counters: RunCounters::default(),
            config,
        })
    }

    /// The resolved config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a batch of references. An address outside the table's virtual
    /// address space stops the batch at that reference.
    pub fn run(&mut self, accesses: &[Access]) -> Result<(), AddressOutOfRange> {
        for access in accesses {
            if let Err(addr) = self.access(access) {
                let index = accesses.iter().position(|a| std::ptr::eq(a, access)).expect("in the batch");
                return Err(AddressOutOfRange { index, addr, va_bits: self.va_bits });
            }
        }
        Ok(())
    }

    #[inline]
    fn access(&mut self, access: &Access) -> Result<(), u64> {
        let last = access.last_byte();
        if last > self.max_va {
            return Err(access.addr);
        }
        let kind = access.kind as usize;
        self.counters.references[kind] += 1;
        let space = self.spaces.of(access.vm, access.context);
        let write = access.kind.writes();
        let instruction = access.kind == Kind::Fetch;
        let mut va = access.addr;
        loop {
            let shift = self.translate(space, va, kind, write, instruction);
            let page_last = va | ((1u64 << shift) - 1);
            if last <= page_last {
                break;
            }
            if va == access.addr {
                self.counters.page_crossing_references += 1;
            }
            self.counters.extra_page_lookups[kind] += 1;
            va = page_last + 1;
        }
        Ok(())
    }

    /// Translates one page; returns its page shift. The common case (the
    /// first TLB's MRU filter has it) stays inline; everything else is out
    /// of line so the hot loop keeps its values in registers.
    #[inline(always)]
    fn translate(&mut self, space: usize, va: u64, kind: usize, write: bool, instruction: bool) -> u32 {
        let first = self.first_tlb[usize::from(!instruction)];
        if let Some(tlb) = self.tlbs.get_mut(first) {
            if let Some(shift) = tlb.filter_hit(space as u32, va, kind, write) {
                return shift;
            }
        }
        self.translate_slow(space, va, kind, write, instruction)
    }

    #[inline(never)]
    fn translate_slow(&mut self, space: usize, va: u64, kind: usize, write: bool, instruction: bool) -> u32 {
        let path = if instruction { &self.instruction_path } else { &self.data_path };
        let tlbs = &mut self.tlbs;
        let tag = space as u32;
        for (depth, &t) in path.iter().enumerate() {
            if let Some(hit) = tlbs[t].lookup(tag, va, kind) {
                let mut dirty = hit.dirty;
                if write && !hit.dirty {
                    tlbs[t].mark_hit_dirty();
                    self.counters.dirty_assists += 1;
                    if self.walker.tables.mark_dirty(space, va) {
                        self.counters.dirty_bits_set_by_assists += 1;
                    }
                    dirty = true;
                }
                for &upper in &path[..depth] {
                    tlbs[upper].count_miss(kind, hit.page_shift);
                    tlbs[upper].fill(tag, va, hit.page_shift, dirty);
                }
                return hit.page_shift;
            }
        }
        let outcome = self.walker.walk(space, tag, va, write);
        self.counters.walks[kind] += 1;
        if let Some((base, shift)) = outcome.promoted {
            // The small pages of the region are gone: drop their cached
            // translations (as the OS's shootdown would) and the walk caches
            // of the space (INVLPG also empties paging-structure caches).
            let end = base + ((1u64 << shift) - 1);
            for tlb in tlbs.iter_mut() {
                self.counters.promotion_invalidations +=
                    tlb.invalidate_where(|s, first, last| s == tag && first >= base && last <= end);
            }
            self.walker.pwc.flush_space(tag);
        }
        for &level in path {
            tlbs[level].count_miss(kind, outcome.page_shift);
            tlbs[level].fill(tag, va, outcome.page_shift, outcome.dirty);
        }
        outcome.page_shift
    }

    /// Everything counted so far.
    pub fn report(&self) -> SimReport {
        let shape = self.config.table_shape();
        SimReport {
            mode: self.config.mode.name(),
            page_shifts: shape.page_shifts.clone(),
            run: RunCounters {
                translation_cycles: self.walker.counters.cycles
                    + self.tlbs.iter().map(|t| t.counters().total_lookups() * u64::from(t.latency)).sum::<u64>(),
                ..self.counters.clone()
            },
            tlbs: self
                .tlbs
                .iter()
                .map(|tlb| TlbReport {
                    name: tlb.name.clone(),
                    level: tlb.level,
                    serves: tlb.serves,
                    counters: tlb.counters(),
                })
                .collect(),
            walks: self.walker.counters.clone(),
            pwc: self.walker.pwc.counters().cloned(),
            faults: self.walker.tables.faults(),
            promotions: self.walker.tables.promotions(),
            address_spaces: self.walker.tables.address_spaces() as u64,
            page_tables: self.walker.tables.memory(),
            allocated_bytes: self.walker.tables.allocated_bytes(),
        }
    }

    /// References per walk, cycles per walk.
    pub fn histograms(&self) -> (&Distribution, &Distribution) {
        (&self.walker.reference_histogram, &self.walker.cycle_histogram)
    }
}

/// One TLB's counters, with what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlbReport {
    pub name: String,
    pub level: u32,
    pub serves: crate::config::Serves,
    #[serde(flatten)]
    pub counters: TlbCounters,
}

/// Raw integer counters of a run; rates are for the report crate to render.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimReport {
    pub mode: &'static str,
    /// The table's page sizes (as shifts) that per-size counters index.
    pub page_shifts: Vec<u32>,
    pub run: RunCounters,
    pub tlbs: Vec<TlbReport>,
    pub walks: WalkCounters,
    pub pwc: Option<PwcCounters>,
    /// Minor faults (first touches of unmapped pages).
    pub faults: u64,
    /// THP promotions.
    pub promotions: u64,
    pub address_spaces: u64,
    /// Live table nodes per level, root first.
    pub page_tables: Vec<LevelMemory>,
    /// Physical bytes handed out (data pages and table nodes).
    pub allocated_bytes: u64,
}

impl SimReport {
    pub fn instructions(&self) -> u64 {
        self.run.references[Kind::Fetch as usize]
    }

    pub fn references(&self) -> u64 {
        self.run.references.iter().sum()
    }

    /// Page lookups by kind: one per page a reference touches.
    pub fn page_lookups(&self) -> [u64; 4] {
        std::array::from_fn(|k| self.run.references[k] + self.run.extra_page_lookups[k])
    }
}
