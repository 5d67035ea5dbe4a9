//! One TLB: a level of the hierarchy made of one or more set-associative
//! arrays, each holding translations of some page sizes.
//!
//! A lookup probes every array once per page size it holds (the page size
//! of an address is unknown until it hits); at most one can hit, since a
//! virtual page has one size at a time. A translation is filled into the
//! array that holds its size; a TLB with no array for that size does not
//! cache it.

use serde::Serialize;

use crate::cache::{SetAssoc, Slot};
use crate::config::{Config, Serves, TlbConfig};
use crate::pagetable::MAX_LEVELS;

/// Index of a reference kind in per-kind counters: fetch, load, store,
/// modify (the trace's `Kind` discriminants).
pub type KindIndex = usize;

/// A translation as a TLB holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub page_shift: u32,
    /// The entry was cached with its page's dirty bit set.
    pub dirty: bool,
}

#[derive(Clone, Debug)]
struct Array {
    /// Page shifts held, ascending, with their index in the table's sizes.
    shifts: Vec<(u32, usize)>,
    store: SetAssoc,
    /// Per slot: the cached translation's dirty bit.
    dirty: Vec<bool>,
}

/// The page this TLB's last lookup or fill touched. Until anything else
/// happens to the TLB, another lookup of the same page is a hit that
/// changes no replacement state under any policy (the entry is already the
/// most recently used of its set; PLRU would set the same bits; FIFO and
/// random ignore hits), so it can be answered without probing.
#[derive(Clone, Copy, Debug)]
struct Recent {
    space: u32,
    page: u64,
    shift: u32,
    size_index: usize,
    array: usize,
    slot: Slot,
    /// A copy of the slot's dirty bit (only this TLB changes it), so that
    /// a hit need not chase pointers to the array.
    dirty: bool,
}

/// Counters of one TLB. Only lookups and hits by size are counted on a hit
/// (the hot path); misses are counted where they are resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlbCounters {
    /// Lookups per reference kind (fetch, load, store, modify).
    pub lookups: [u64; 4],
    pub misses: [u64; 4],
    /// Hits by the page size (index into the table's page sizes) of the
    /// translation found.
    pub hits_by_size: [u64; MAX_LEVELS],
    /// Misses by the page size of the translation the miss was resolved to.
    pub misses_by_size: [u64; MAX_LEVELS],
    /// Translations inserted.
    pub fills: u64,
    /// Fills that evicted a valid entry.
    pub evictions: u64,
    /// Entries removed by flushes and invalidations.
    pub invalidated: u64,
}

impl TlbCounters {
    pub fn total_lookups(&self) -> u64 {
        self.lookups.iter().sum()
    }

    pub fn total_misses(&self) -> u64 {
        self.misses.iter().sum()
    }

    pub fn total_hits(&self) -> u64 {
        self.total_lookups() - self.total_misses()
    }

    /// Hits of reference kind `kind`.
    pub fn hits(&self, kind: usize) -> u64 {
        self.lookups[kind] - self.misses[kind]
    }
}

#[derive(Clone, Debug)]
pub struct Tlb {
    pub name: String,
    pub level: u32,
    pub serves: Serves,
    pub latency: u32,
    arrays: Vec<Array>,
    recent: Option<Recent>,
    /// The table's page shifts, for per-size counters.
    size_shifts: Vec<u32>,
    pub counters: TlbCounters,
}

/// A stream id for each TLB array's random replacement generator.
fn array_stream(tlb: &str, array: &str) -> u64 {
    tlb.bytes()
        .chain(std::iter::once(b'.'))
        .chain(array.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl Tlb {
    pub fn new(name: &str, config: &TlbConfig, resolved: &Config) -> Tlb {
        let size_shifts = resolved.table_shape().page_shifts;
        let size_shifts_for_add = size_shifts.clone();
        let mut arrays = Vec::new();
        let mut add = |array_name: &str,
                       entries: u32,
                       ways: Option<u32>,
                       sizes: &Option<Vec<crate::size::ByteSize>>,
                       replacement| {
            let entries = entries as usize;
            let ways = ways.map_or(entries, |w| w as usize);
            let shifts = sizes
                .as_ref()
                .expect("resolved")
                .iter()
                .map(|s| {
                    let shift = s.0.trailing_zeros();
                    (shift, size_shifts_for_add.iter().position(|&t| t == shift).expect("mappable"))
                })
                .collect();
            let store = SetAssoc::new(entries, ways, replacement, resolved.seed, array_stream(name, array_name));
            arrays.push(Array { shifts, store, dirty: vec![false; entries] });
        };
        if let Some(entries) = config.entries {
            add("", entries, config.ways, &config.page_sizes, config.replacement.expect("resolved"));
        }
        for (array_name, array) in &config.arrays {
            add(array_name, array.entries, array.ways, &array.page_sizes, array.replacement.expect("resolved"));
        }
        Tlb {
            name: name.to_owned(),
            level: config.level,
            serves: config.serves,
            latency: config.latency,
            arrays,
            recent: None,
            size_shifts,
            counters: TlbCounters::default(),
        }
    }

    fn size_index(&self, shift: u32) -> usize {
        self.size_shifts.iter().position(|&s| s == shift).expect("a mappable size")
    }

    /// Looks `va` up for address space `space`, counting the lookup.
    #[inline(always)]
    pub fn lookup(&mut self, space: u32, va: u64, kind: KindIndex) -> Option<Hit> {
        self.counters.lookups[kind] += 1;
        if let Some(recent) = self.recent {
            if recent.space == space && va >> recent.shift == recent.page {
                self.counters.hits_by_size[recent.size_index] += 1;
                return Some(Hit { page_shift: recent.shift, dirty: recent.dirty });
            }
        }
        self.probe(space, va)
    }

    /// Probes every array for `va`: a lookup the recent page did not answer.
    #[inline(never)]
    fn probe(&mut self, space: u32, va: u64) -> Option<Hit> {
        for (array_index, array) in self.arrays.iter_mut().enumerate() {
            for &(shift, size_index) in &array.shifts {
                let page = va >> shift;
                if let Some(slot) = array.store.lookup(page, key(page, shift), space) {
                    let dirty = array.dirty[slot.0];
                    self.recent = Some(Recent { space, page, shift, size_index, array: array_index, slot, dirty });
                    self.counters.hits_by_size[size_index] += 1;
                    return Some(Hit { page_shift: shift, dirty });
                }
            }
        }
        None
    }

    /// Counts a miss of this TLB, by a reference of `kind`, as resolved to a
    /// page of `shift`.
    pub fn count_miss(&mut self, kind: KindIndex, shift: u32) {
        let index = self.size_index(shift);
        self.counters.misses[kind] += 1;
        self.counters.misses_by_size[index] += 1;
    }

    /// Whether some array holds pages of `shift`.
    pub fn holds(&self, shift: u32) -> bool {
        self.arrays.iter().any(|a| a.shifts.iter().any(|&(s, _)| s == shift))
    }

    /// Caches a translation (not present) of `va`'s page of `shift`.
    #[inline]
    pub fn fill(&mut self, space: u32, va: u64, shift: u32, dirty: bool) {
        let held = self
            .arrays
            .iter()
            .enumerate()
            .find_map(|(i, a)| a.shifts.iter().find(|&&(s, _)| s == shift).map(|&(_, size_index)| (i, size_index)));
        let Some((array_index, size_index)) = held else {
            return;
        };
        let array = &mut self.arrays[array_index];
        let page = va >> shift;
        let (slot, evicted) = array.store.insert(page, key(page, shift), space);
        array.dirty[slot.0] = dirty;
        self.counters.fills += 1;
        self.counters.evictions += u64::from(evicted);
        self.recent = Some(Recent { space, page, shift, size_index, array: array_index, slot, dirty });
    }

    /// Marks the translation the last hit found dirty (after a store found
    /// it clean). Every hit leaves `recent` at its slot.
    pub fn mark_hit_dirty(&mut self) {
        if let Some(recent) = &mut self.recent {
            self.arrays[recent.array].dirty[recent.slot.0] = true;
            recent.dirty = true;
        }
    }

    /// Removes every entry `drop` accepts (by space and the page's virtual
    /// address range `[first, last]`); returns how many went.
    pub fn invalidate_where(&mut self, mut drop: impl FnMut(u32, u64, u64) -> bool) -> u64 {
        self.recent = None;
        let mut dropped = 0;
        for array in &mut self.arrays {
            dropped += array.store.invalidate_where(|key, space| {
                let (page, shift) = unkey(key);
                let first = page << shift;
                drop(space, first, first + ((1u64 << shift) - 1))
            });
        }
        self.counters.invalidated += dropped;
        dropped
    }

    /// Valid entries held.
    pub fn occupancy(&self) -> u64 {
        self.arrays.iter().map(|a| a.store.occupancy()).sum()
    }
}

/// A slot key: the page number with its size, so that pages of different
/// sizes sharing an array never match each other.
#[inline(always)]
fn key(page: u64, shift: u32) -> u64 {
    (page << 6) | u64::from(shift)
}

fn unkey(key: u64) -> (u64, u32) {
    (key >> 6, (key & 63) as u32)
}
