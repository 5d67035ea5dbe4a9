//! Page-walk caches: what lets a walk skip the upper levels of the table.
//!
//! `split` (Intel's paging-structure caches): one cache per upper level,
//! each keyed by the virtual-address bits that select an entry of that
//! level (for x86-64's PDE cache, bits 47:21) and tagged by address space.
//! Only entries that point to a lower table are cached, never leaves. All
//! caches are probed at once; every one that hits counts the use, and the
//! walk starts below the deepest hit.
//!
//! `unified` (AMD's page walk cache): one cache of upper-level entries keyed
//! by the entry's physical address. The walk still visits every level, but
//! an upper-level entry found in the cache costs a probe instead of a memory
//! reference.

use serde::Serialize;

use crate::addr::Hpa;
use crate::cache::SetAssoc;
use crate::config::Replacement;
use crate::machine::{PwcSpec, WalkSpec};
use crate::pagetable::MAX_LEVELS;

/// Per table level (0 = root): probes and hits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PwcCounters {
    pub lookups: [u64; MAX_LEVELS],
    pub hits: [u64; MAX_LEVELS],
}

#[derive(Clone, Debug)]
pub enum PageWalkCache {
    None,
    Split {
        /// Per table level, root first; `None` where that level has no cache.
        caches: Vec<Option<SetAssoc>>,
        latency: u32,
        counters: PwcCounters,
    },
    Unified {
        cache: SetAssoc,
        latency: u32,
        counters: PwcCounters,
    },
}

const PWC_STREAM: u64 = 0x0070_7763; // "pwc"

impl PageWalkCache {
    /// The page-walk cache `spec` describes.
    pub fn new(spec: &PwcSpec, seed: u64) -> PageWalkCache {
        match spec {
            PwcSpec::None => PageWalkCache::None,
            PwcSpec::Split { levels, latency } => {
                let count = levels.len();
                let caches = levels
                    .iter()
                    .enumerate()
                    .map(|(level, geometry)| {
                        geometry.map(|(entries, ways)| {
                            // Streams numbered by distance from the leaf, as
                            // the config names the levels (`l2` the PDE cache).
                            SetAssoc::new(entries, ways, Replacement::Lru, seed, PWC_STREAM + (count - level) as u64)
                        })
                    })
                    .collect();
                PageWalkCache::Split { caches, latency: *latency, counters: PwcCounters::default() }
            }
            &PwcSpec::Unified { entries, ways, latency } => {
                let cache = SetAssoc::new(entries, ways, Replacement::Lru, seed, PWC_STREAM);
                PageWalkCache::Unified { cache, latency, counters: PwcCounters::default() }
            }
        }
    }

    pub fn counters(&self) -> Option<&PwcCounters> {
        match self {
            PageWalkCache::None => None,
            PageWalkCache::Split { counters, .. } | PageWalkCache::Unified { counters, .. } => Some(counters),
        }
    }

    /// Split: probes the caches of the levels above `leaf` for `va`; returns
    /// the level the walk starts at and the probe cycles.
    #[inline(always)]
    pub fn split_start(&mut self, space: u32, va: u64, shifts: &[u32], leaf: usize) -> (usize, u32) {
        let PageWalkCache::Split { caches, latency, counters } = self else { return (0, 0) };
        let mut start = 0;
        let mut probed = false;
        for level in 0..leaf {
            if let Some(cache) = &mut caches[level] {
                probed = true;
                counters.lookups[level] += 1;
                let prefix = va >> shifts[level];
                if cache.lookup_mru_first(prefix, prefix, space).is_some() {
                    counters.hits[level] += 1;
                    start = level + 1;
                }
            }
        }
        (start, if probed { *latency } else { 0 })
    }

    /// Split: caches the pointer entries a walk read (levels `start..leaf`).
    #[inline(always)]
    pub fn split_fill(&mut self, space: u32, va: u64, shifts: &[u32], start: usize, leaf: usize) {
        let PageWalkCache::Split { caches, .. } = self else { return };
        for level in start..leaf {
            if let Some(cache) = &mut caches[level] {
                let prefix = va >> shifts[level];
                cache.insert(prefix, prefix, space);
            }
        }
    }

    /// Unified: probes for the upper-level entry at `entry_addr` (level
    /// `level`), caching it on a miss; returns whether it hit and the probe
    /// cycles. `tag` tells apart physical address spaces (each VM's guest
    /// memory): 0 for host-physical addresses.
    pub fn unified_probe(&mut self, entry_addr: u64, entry_bytes: u32, level: usize, tag: u32) -> (bool, u32) {
        let PageWalkCache::Unified { cache, latency, counters } = self else { return (false, 0) };
        counters.lookups[level] += 1;
        let index = entry_addr / u64::from(entry_bytes);
        if cache.lookup(index, entry_addr, tag).is_some() {
            counters.hits[level] += 1;
            return (true, *latency);
        }
        cache.insert(index, entry_addr, tag);
        (false, *latency)
    }

    pub fn is_unified(&self) -> bool {
        matches!(self, PageWalkCache::Unified { .. })
    }

    /// Drops cached entries of address space `space` after its tables
    /// changed (split caches are tagged by space; a unified cache is tagged
    /// by physical address and is flushed whole).
    pub fn flush_space(&mut self, space: u32) -> u64 {
        match self {
            PageWalkCache::None => 0,
            PageWalkCache::Split { caches, .. } => {
                caches.iter_mut().flatten().map(|cache| cache.invalidate_where(|_, s| s == space)).sum()
            }
            PageWalkCache::Unified { cache, .. } => cache.invalidate_where(|_, _| true),
        }
    }

    /// Drops the split caches' entries tagged `tag` (an address-space id
    /// being recycled). A unified cache holds entries by physical address,
    /// which stay valid, so it keeps them.
    pub fn flush_tagged(&mut self, tag: u32) -> u64 {
        match self {
            PageWalkCache::Split { caches, .. } => {
                caches.iter_mut().flatten().map(|cache| cache.invalidate_where(|_, s| s == tag)).sum()
            }
            PageWalkCache::None | PageWalkCache::Unified { .. } => 0,
        }
    }

    /// Empties the caches; returns the entries lost.
    pub fn flush_all(&mut self) -> u64 {
        match self {
            PageWalkCache::None => 0,
            PageWalkCache::Split { caches, .. } => {
                caches.iter_mut().flatten().map(|cache| cache.invalidate_where(|_, _| true)).sum()
            }
            PageWalkCache::Unified { cache, .. } => cache.invalidate_where(|_, _| true),
        }
    }
}

/// What a page-table memory reference costs.
#[derive(Clone, Debug)]
pub enum WalkMemory {
    Fixed(u32),
    /// An LRU cache of page-table lines.
    Cache {
        lines: SetAssoc,
        line_shift: u32,
        hit_latency: u32,
        miss_latency: u32,
    },
}

/// Hits and misses of the page-table line cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LineCounters {
    pub hits: u64,
    pub misses: u64,
}

impl WalkMemory {
    /// Whether a reference's cost depends on its address (a line cache),
    /// so that callers must compute it.
    #[inline]
    pub fn reads_addresses(&self) -> bool {
        matches!(self, WalkMemory::Cache { .. })
    }

    pub fn new(spec: WalkSpec, seed: u64) -> WalkMemory {
        match spec {
            WalkSpec::Fixed(latency) => WalkMemory::Fixed(latency),
            WalkSpec::Cache { lines, ways, line_shift, hit_latency, miss_latency } => WalkMemory::Cache {
                lines: SetAssoc::new(lines, ways, Replacement::Lru, seed, 0),
                line_shift,
                hit_latency,
                miss_latency,
            },
        }
    }

    /// Cycles to read the entry at physical address `addr`.
    #[inline]
    pub fn reference(&mut self, addr: Hpa, counters: &mut LineCounters) -> u32 {
        match self {
            WalkMemory::Fixed(latency) => *latency,
            WalkMemory::Cache { lines, line_shift, hit_latency, miss_latency } => {
                let line = addr.0 >> *line_shift;
                if lines.lookup(line, line, 0).is_some() {
                    counters.hits += 1;
                    *hit_latency
                } else {
                    lines.insert(line, line, 0);
                    counters.misses += 1;
                    *miss_latency
                }
            }
        }
    }
}
