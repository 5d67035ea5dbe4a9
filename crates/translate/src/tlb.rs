//! One TLB: a level of the hierarchy made of one or more set-associative
//! arrays, each holding translations of some page sizes.
//!
//! A lookup probes every array once per page size it holds (the page size
//! of an address is unknown until it hits); at most one can hit, since a
//! virtual page has one size at a time. A translation is filled into the
//! array that holds its size; a TLB with no array for that size does not
//! cache it.

use serde::Serialize;

use crate::cache::SetAssoc;
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

/// Entries that are the most recently used of their set. Re-hitting one
/// changes no replacement state under any policy (LRU and tree-PLRU are
/// already in the state a hit would leave; FIFO and random ignore hits), so
/// the filter answers such lookups without probing. An entry stops being
/// one as soon as anything else touches its set, which only this TLB's
/// probes, fills and invalidations can do, and they update the filter.
/// Kept as parallel arrays: the check reads only pages, shifts and spaces.
#[derive(Clone, Debug, Default)]
struct MruFilter {
    len: usize,
    page: [u64; FILTER],
    shift: [u32; FILTER],
    space: [u32; FILTER],
    size_index: [usize; FILTER],
    array: [usize; FILTER],
    set: [usize; FILTER],
    slot: [usize; FILTER],
    /// Copies of the slots' dirty bits (only this TLB changes them).
    dirty: [bool; FILTER],
    /// Hits answered by each entry on the fast path, by reference kind, not
    /// yet added to the TLB's counters (see `Tlb::settle`).
    tally: [[u64; 4]; FILTER],
    /// Where the last hit was, for `mark_hit_dirty`.
    last_hit: usize,
}

/// Most entries the MRU filter keeps.
const FILTER: usize = 2;

impl MruFilter {
    #[inline(always)]
    fn find(&self, space: u32, va: u64) -> Option<usize> {
        (0..self.len).find(|&i| va >> self.shift[i] == self.page[i] && self.space[i] == space)
    }

    /// Moves the tallied hits of entry `i` into `counters`.
    fn settle(&mut self, i: usize, counters: &mut TlbCounters) {
        let tally = std::mem::take(&mut self.tally[i]);
        for (kind, hits) in tally.into_iter().enumerate() {
            counters.lookups[kind] += hits;
            counters.hits_by_size[self.size_index[i]] += hits;
        }
    }

    /// Records a just-touched slot (now the most recently used of its set),
    /// replacing the entry of the same set if there is one, else the oldest.
    #[allow(clippy::too_many_arguments)]
    fn remember(
        &mut self,
        counters: &mut TlbCounters,
        space: u32,
        page: u64,
        shift: u32,
        size_index: usize,
        array: usize,
        set: usize,
        slot: usize,
        dirty: bool,
    ) {
        let at = match (0..self.len).find(|&i| self.array[i] == array && self.set[i] == set) {
            Some(i) => {
                self.settle(i, counters);
                i
            }
            None if self.len < FILTER => {
                self.len += 1;
                self.len - 1
            }
            None => {
                // The oldest is at the end: shift everyone down one.
                self.settle(FILTER - 1, counters);
                for i in (1..FILTER).rev() {
                    self.copy(i - 1, i);
                }
                0
            }
        };
        self.page[at] = page;
        self.shift[at] = shift;
        self.space[at] = space;
        self.size_index[at] = size_index;
        self.array[at] = array;
        self.set[at] = set;
        self.slot[at] = slot;
        self.dirty[at] = dirty;
        self.last_hit = at;
    }

    fn copy(&mut self, from: usize, to: usize) {
        self.page[to] = self.page[from];
        self.shift[to] = self.shift[from];
        self.space[to] = self.space[from];
        self.size_index[to] = self.size_index[from];
        self.array[to] = self.array[from];
        self.set[to] = self.set[from];
        self.slot[to] = self.slot[from];
        self.dirty[to] = self.dirty[from];
        self.tally[to] = std::mem::take(&mut self.tally[from]);
    }
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
    filter: MruFilter,
    /// The table's page shifts, for per-size counters.
    size_shifts: Vec<u32>,
    /// Counters, except hits the filter has tallied but not settled: read
    /// them through `counters()`.
    counters: TlbCounters,
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
        let size_shifts = resolved.translation_shifts();
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
                    (shift, size_shifts.iter().position(|&t| t == shift).expect("mappable"))
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
            filter: MruFilter::default(),
            size_shifts,
            counters: TlbCounters::default(),
        }
    }

    /// The nested TLB: guest-physical to host-physical translations, at the
    /// host table's page sizes.
    pub fn nested(config: &crate::config::NestedTlbConfig, host: &crate::config::TableShape, seed: u64) -> Tlb {
        let entries = config.entries as usize;
        let ways = config.ways.map_or(entries, |w| w as usize);
        let size_shifts = host.page_shifts.clone();
        let shifts = config
            .page_sizes
            .as_ref()
            .expect("resolved")
            .iter()
            .map(|s| {
                let shift = s.0.trailing_zeros();
                (shift, size_shifts.iter().position(|&t| t == shift).expect("a host size"))
            })
            .collect();
        let replacement = config.replacement.expect("resolved");
        let store = SetAssoc::new(entries, ways, replacement, seed, array_stream("nested", ""));
        Tlb {
            name: "nested".into(),
            level: 0,
            serves: Serves::Data,
            latency: config.latency,
            arrays: vec![Array { shifts, store, dirty: vec![false; entries] }],
            filter: MruFilter::default(),
            size_shifts,
            counters: TlbCounters::default(),
        }
    }

    fn size_index(&self, shift: u32) -> usize {
        self.size_shifts.iter().position(|&s| s == shift).expect("a mappable size")
    }

    /// The hot path: answers from the MRU filter alone, counting the lookup
    /// only when it does. A write to a translation cached clean is left to
    /// `lookup` (it needs a dirty-bit assist).
    #[inline(always)]
    pub fn filter_hit(&mut self, space: u32, va: u64, kind: KindIndex, write: bool) -> Option<u32> {
        let i = self.filter.find(space, va)?;
        if write && !self.filter.dirty[i] {
            return None;
        }
        self.filter.tally[i][kind] += 1;
        Some(self.filter.shift[i])
    }

    /// Looks `va` up for address space `space`, counting the lookup.
    #[inline]
    pub fn lookup(&mut self, space: u32, va: u64, kind: KindIndex) -> Option<Hit> {
        self.counters.lookups[kind] += 1;
        if let Some(i) = self.filter.find(space, va) {
            self.counters.hits_by_size[self.filter.size_index[i]] += 1;
            self.filter.last_hit = i;
            return Some(Hit { page_shift: self.filter.shift[i], dirty: self.filter.dirty[i] });
        }
        self.probe(space, va)
    }

    /// Probes the arrays for `va`: a lookup the filter did not answer.
    #[inline(never)]
    fn probe(&mut self, space: u32, va: u64) -> Option<Hit> {
        for array_index in 0..self.arrays.len() {
            let array = &mut self.arrays[array_index];
            let found = if array.store.is_fully_associative() && array.shifts.len() > 1 {
                // One pass for every size: a slot matches if its page, at its
                // own size, is va's.
                array
                    .store
                    .lookup_matching(space, |k| {
                        let (page, shift) = unkey(k);
                        va >> shift == page
                    })
                    .map(|slot| {
                        let (_, shift) = unkey(array.store.key_at(slot));
                        let &(_, size_index) = array.shifts.iter().find(|&&(s, _)| s == shift).expect("held");
                        ((shift, size_index), slot)
                    })
            } else {
                array.shifts.iter().find_map(|&(shift, size_index)| {
                    let page = va >> shift;
                    array.store.lookup(page, key(page, shift), space).map(|slot| ((shift, size_index), slot))
                })
            };
            if let Some(((shift, size_index), slot)) = found {
                let page = va >> shift;
                let dirty = array.dirty[slot.0];
                let set = array.store.set_of(page);
                self.filter.remember(
                    &mut self.counters,
                    space,
                    page,
                    shift,
                    size_index,
                    array_index,
                    set,
                    slot.0,
                    dirty,
                );
                self.counters.hits_by_size[size_index] += 1;
                return Some(Hit { page_shift: shift, dirty });
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
        let set = array.store.set_of(page);
        self.counters.fills += 1;
        self.counters.evictions += u64::from(evicted);
        self.filter.remember(&mut self.counters, space, page, shift, size_index, array_index, set, slot.0, dirty);
    }

    /// Marks the translation the last hit found dirty (after a store found
    /// it clean). Every hit leaves its entry in the filter at `last_hit`.
    pub fn mark_hit_dirty(&mut self) {
        let f = &mut self.filter;
        if f.len > 0 {
            self.arrays[f.array[f.last_hit]].dirty[f.slot[f.last_hit]] = true;
            f.dirty[f.last_hit] = true;
        }
    }

    /// Removes every entry `drop` accepts (by space and the page's virtual
    /// address range `[first, last]`); returns how many went.
    pub fn invalidate_where(&mut self, mut drop: impl FnMut(u32, u64, u64) -> bool) -> u64 {
        self.settle();
        self.filter = MruFilter::default();
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

    /// Adds the hits tallied in the filter to the counters.
    fn settle(&mut self) {
        for i in 0..self.filter.len {
            self.filter.settle(i, &mut self.counters);
        }
    }

    /// The counters, with every hit so far included.
    pub fn counters(&self) -> TlbCounters {
        let mut counters = self.counters.clone();
        let mut filter = self.filter.clone();
        for i in 0..filter.len {
            filter.settle(i, &mut counters);
        }
        counters
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
