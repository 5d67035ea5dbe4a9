//! One TLB: a level of the hierarchy made of one or more set-associative
//! arrays, each holding translations of some page sizes.
//!
//! A lookup probes every array once per page size it holds (the page size
//! of an address is unknown until it hits); at most one can hit, since a
//! virtual page has one size at a time. A translation is filled into the
//! array that holds its size; a TLB with no array for that size does not
//! cache it.

use serde::Serialize;

use std::marker::PhantomData;

use crate::addr::{Address, Gpa, Va};
use crate::cache::{MruView, SetAssoc, Slot};
use crate::config::Serves;
use crate::machine::{Machine, TlbSpec};
use crate::pagetable::MAX_LEVELS;
use crate::per_kind::PerKind;
use mmusim_trace::Kind;

/// A translation as a TLB holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub page_shift: u32,
    /// Lanes (bits) whose copy of the entry was cached with the page's
    /// dirty bit set: bit 0 alone in a simulator of one lane (see
    /// `Simulator::with_lanes`).
    pub dirty: u64,
}

#[derive(Clone, Debug)]
struct Array {
    /// Page shifts held, ascending, with their index in the table's sizes.
    shifts: Vec<(u32, usize)>,
    store: SetAssoc,
    /// Per slot: the lanes whose copy of the translation is cached dirty.
    dirty: Vec<u64>,
    /// Where each page was last found or placed, indexed by the page's low
    /// bits: a guess the fast path checks against the slot's key, so a
    /// stale or colliding guess costs a probe, never a wrong answer.
    hints: Vec<u32>,
    hint_mask: usize,
    /// Valid entries per size (as `shifts`): sizes with none are not probed.
    held: Vec<u32>,
}

impl Array {
    fn new(shifts: Vec<(u32, usize)>, store: SetAssoc) -> Array {
        let entries = store.entries();
        // Twice the entries, so that pages held at once rarely share a hint.
        let hints = (2 * entries).next_power_of_two();
        let held = vec![0; shifts.len()];
        Array { shifts, store, dirty: vec![0; entries], hints: vec![0; hints], hint_mask: hints - 1, held }
    }

    #[inline(always)]
    fn hint(&mut self, page: u64) -> &mut u32 {
        &mut self.hints[page as usize & self.hint_mask]
    }
}

/// The array and page size the fast path tries first: those of the last
/// translation this TLB found or cached.
#[derive(Clone, Copy, Debug, Default)]
struct Guess {
    array: usize,
    shift: u32,
    size_index: usize,
}

/// Counters of one TLB.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlbCounters {
    /// Lookups per reference kind (fetch, load, store, modify).
    pub lookups: PerKind<u64>,
    pub misses: PerKind<u64>,
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
        self.lookups.total()
    }

    pub fn total_misses(&self) -> u64 {
        self.misses.total()
    }

    pub fn total_hits(&self) -> u64 {
        self.total_lookups() - self.total_misses()
    }

    /// Hits of reference kind `kind`.
    pub fn hits(&self, kind: Kind) -> u64 {
        self.lookups[kind] - self.misses[kind]
    }
}

/// A TLB of translations of addresses of the space `In`: virtual for the
/// TLBs of the hierarchy, guest-physical for the nested TLB.
#[derive(Clone, Debug)]
pub struct Tlb<In: Address = Va> {
    pub name: String,
    pub level: u32,
    pub serves: Serves,
    pub latency: u32,
    arrays: Vec<Array>,
    guess: Guess,
    /// Where the last hit was (array, slot), for `mark_hit_dirty`.
    last_hit: (usize, usize),
    /// The dirty bits of an entry dirty in every lane.
    all_lanes: u64,
    /// The table's page sizes, for per-size counters.
    sizes: crate::size::PageSizes,
    /// By page shift: the array holding that size, the size's position in
    /// the array's `shifts`, and its index among the table's sizes.
    holder: [Option<(usize, usize, usize)>; 64],
    /// Hits by page size and reference kind: one counter per hit, from
    /// which `counters()` derives lookups and hits by size.
    hits: [PerKind<u64>; MAX_LEVELS],
    /// Counters but lookups and hits by size: read them through
    /// `counters()`.
    counters: TlbCounters,
    space: PhantomData<In>,
}

/// A stream id for each TLB array's random replacement generator.
fn array_stream(tlb: &str, array: &str) -> u64 {
    tlb.bytes()
        .chain(std::iter::once(b'.'))
        .chain(array.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

impl Tlb<Va> {
    /// A TLB of the hierarchy.
    pub fn new(spec: &TlbSpec, machine: &Machine) -> Tlb<Va> {
        Tlb::build(spec, &machine.translation_shifts, machine.seed)
    }
}

impl Tlb<Gpa> {
    /// The nested TLB: guest-physical to host-physical translations, at the
    /// host table's page sizes.
    pub fn nested(spec: &TlbSpec, host: &crate::config::TableShape, seed: u64) -> Tlb<Gpa> {
        Tlb::build(spec, &host.page_shifts, seed)
    }
}

impl<In: Address> Tlb<In> {
    /// The TLB `spec` describes, for translations of `size_shifts` (what
    /// its per-size counters index).
    fn build(spec: &TlbSpec, size_shifts: &[u32], seed: u64) -> Tlb<In> {
        let arrays: Vec<Array> = spec
            .arrays
            .iter()
            .map(|array| {
                let stream = array_stream(&spec.name, &array.name);
                let store = SetAssoc::new(array.entries, array.ways, array.replacement, seed, stream);
                Array::new(array.sizes.clone(), store)
            })
            .collect();
        Tlb {
            name: spec.name.clone(),
            level: spec.level,
            serves: spec.serves,
            latency: spec.latency,
            guess: first_guess(&arrays),
            holder: holders(&arrays),
            arrays,
            last_hit: (0, 0),
            all_lanes: 1,
            sizes: crate::size::PageSizes::new(size_shifts.to_vec()),
            hits: [PerKind::default(); MAX_LEVELS],
            counters: TlbCounters::default(),
            space: PhantomData,
        }
    }

    fn size_index(&self, shift: u32) -> usize {
        self.sizes.index(shift)
    }

    /// The hot path: a hit in the guessed array at the guessed size (those
    /// of the last translation found or cached), on the most recently used
    /// entry of its set (no use to record) or in the slot its page was last
    /// seen in (a use recorded as any hit's). Anything else, and a write to
    /// a translation cached clean (it needs a dirty-bit assist), is left to
    /// `lookup`.
    #[inline(always)]
    pub fn fast_hit(&mut self, space: u32, va: In, kind: Kind, write: bool) -> Option<u32> {
        let guess = self.guess;
        let array = &mut self.arrays[guess.array];
        if !array.store.mru_hits_are_noops() {
            return self.hinted_hit(space, va, kind, write);
        }
        let page = va.raw() >> guess.shift;
        match array.store.mru_view().hit(page, key(page, guess.shift), space) {
            Some(slot) if write && array.dirty[slot] != self.all_lanes => None,
            Some(_) => {
                self.hits[guess.size_index][kind] += 1;
                Some(guess.shift)
            }
            None => self.hinted_hit(space, va, kind, write),
        }
    }

    /// A hit in the slot the guessed size's page was last seen in (see
    /// `fast_hit`), counted and its use recorded.
    #[inline]
    pub fn hinted_hit(&mut self, space: u32, va: In, kind: Kind, write: bool) -> Option<u32> {
        let va = va.raw();
        let guess = self.guess;
        let array = &mut self.arrays[guess.array];
        let page = va >> guess.shift;
        let slot = *array.hint(page) as usize;
        if !array.store.holds_at(slot, key(page, guess.shift), space) || (write && array.dirty[slot] != self.all_lanes)
        {
            return None;
        }
        array.store.touch_slot(page, slot);
        self.hits[guess.size_index][kind] += 1;
        Some(guess.shift)
    }

    /// What a run of hits needs (see `Simulator::run_hits`): the guessed
    /// array's view for hits on most recently used entries, its dirty bits,
    /// and the guessed page shift; `None` if its policy must see every hit.
    #[inline(always)]
    pub fn hit_view(&self) -> Option<(MruView<'_>, &[u64], u32)> {
        let array = &self.arrays[self.guess.array];
        array.store.mru_hits_are_noops().then(|| (array.store.mru_view(), array.dirty.as_slice(), self.guess.shift))
    }

    /// Counts `hits` more hits, by references of `kind`, at the guessed
    /// size: what `fast_hit` counts for each, in one go.
    #[inline(always)]
    pub fn count_guessed_hits(&mut self, kind: Kind, hits: u64) {
        self.hits[self.guess.size_index][kind] += hits;
    }

    /// Looks `va` up for address space `space`, counting a hit (a miss is
    /// counted by `count_miss` once resolved).
    #[inline]
    pub fn lookup(&mut self, space: u32, va: In, kind: Kind) -> Option<Hit> {
        let va = va.raw();
        for array_index in 0..self.arrays.len() {
            let array = &mut self.arrays[array_index];
            if let [(shift, size_index)] = *array.shifts {
                // One size: one probe, unless the array is empty.
                if array.held[0] == 0 {
                    continue;
                }
                let page = va >> shift;
                if let Some(slot) = array.store.lookup(page, key(page, shift), space) {
                    return Some(self.hit_at(array_index, slot, shift, size_index, va, kind));
                }
                continue;
            }
            if array.held.iter().all(|&n| n == 0) {
                continue;
            }
            let found = if array.store.is_fully_associative() {
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
                array.shifts.iter().zip(&array.held).filter(|(_, &held)| held > 0).find_map(
                    |(&(shift, size_index), _)| {
                        let page = va >> shift;
                        array.store.lookup(page, key(page, shift), space).map(|slot| ((shift, size_index), slot))
                    },
                )
            };
            if let Some(((shift, size_index), slot)) = found {
                return Some(self.hit_at(array_index, slot, shift, size_index, va, kind));
            }
        }
        None
    }

    /// Records a hit `lookup` found in `slot` of array `array_index`, on
    /// `va`'s page of `shift`.
    #[inline(always)]
    fn hit_at(&mut self, array_index: usize, slot: Slot, shift: u32, size_index: usize, va: u64, kind: Kind) -> Hit {
        let array = &mut self.arrays[array_index];
        *array.hint(va >> shift) = slot.0 as u32;
        let dirty = array.dirty[slot.0];
        self.guess = Guess { array: array_index, shift, size_index };
        self.last_hit = (array_index, slot.0);
        self.hits[size_index][kind] += 1;
        Hit { page_shift: shift, dirty }
    }

    /// Counts a miss of this TLB, by a reference of `kind`, as resolved to a
    /// page of `shift`.
    pub fn count_miss(&mut self, kind: Kind, shift: u32) {
        let index = self.size_index(shift);
        self.counters.misses[kind] += 1;
        self.counters.misses_by_size[index] += 1;
    }

    /// Whether some array holds pages of `shift`.
    pub fn holds(&self, shift: u32) -> bool {
        self.arrays.iter().any(|a| a.shifts.iter().any(|&(s, _)| s == shift))
    }

    /// Caches a translation (not present) of `va`'s page of `shift`, dirty
    /// in the lanes `dirty` has; returns whether it evicted a valid entry,
    /// or `None` if no array holds that size.
    #[inline(always)]
    pub fn fill(&mut self, space: u32, va: In, shift: u32, dirty: u64) -> Option<bool> {
        let va = va.raw();
        let (array_index, held, size_index) = self.holder[shift as usize]?;
        let array = &mut self.arrays[array_index];
        let page = va >> shift;
        let (slot, evicted) = array.store.insert(page, key(page, shift), space);
        match evicted {
            None => array.held[held] += 1,
            // An entry of the same size replaced: the counts stay.
            Some(old) if unkey(old).1 == shift => {}
            Some(old) => {
                let (_, old_held, _) = self.holder[unkey(old).1 as usize].expect("a size held");
                array.held[held] += 1;
                array.held[old_held] -= 1;
            }
        }
        array.dirty[slot.0] = dirty;
        *array.hint(page) = slot.0 as u32;
        self.guess = Guess { array: array_index, shift, size_index };
        self.counters.fills += 1;
        self.counters.evictions += u64::from(evicted.is_some());
        Some(evicted.is_some())
    }

    /// Marks the translation the last hit found dirty in every lane (after
    /// a store found it clean in some).
    pub fn mark_hit_dirty(&mut self) {
        let (array, slot) = self.last_hit;
        self.arrays[array].dirty[slot] = self.all_lanes;
    }

    /// Makes this TLB's entries carry a dirty bit for each of `lanes` lanes.
    pub fn set_lanes(&mut self, lanes: usize) {
        self.all_lanes = lane_mask(lanes);
    }

    /// Removes every entry `drop` accepts (by space and the page's virtual
    /// address range `[first, last]`); returns how many went.
    pub fn invalidate_where(&mut self, mut drop: impl FnMut(u32, u64, u64) -> bool) -> u64 {
        let mut dropped = 0;
        for array in &mut self.arrays {
            let (shifts, held) = (&array.shifts, &mut array.held);
            dropped += array.store.invalidate_where(|key, space| {
                let (page, shift) = unkey(key);
                let first = page << shift;
                let dropping = drop(space, first, first + ((1u64 << shift) - 1));
                if dropping {
                    held[shifts.iter().position(|&(s, _)| s == shift).expect("held")] -= 1;
                }
                dropping
            });
        }
        self.counters.invalidated += dropped;
        dropped
    }

    /// Removes the entries of `space` that translate pages within the page
    /// of `1 << shift` bytes at `base` (it was evicted): at its own size or
    /// any smaller one. Returns how many went.
    pub fn invalidate_page(&mut self, space: u32, base: u64, shift: u32) -> u64 {
        let last = base + ((1u64 << shift) - 1);
        let mut dropped = 0;
        for array in &mut self.arrays {
            for (position, &(size, _)) in array.shifts.iter().enumerate() {
                if size > shift || array.held[position] == 0 {
                    continue;
                }
                let pages = 1u64 << (shift - size);
                let removed = if pages > array.store.entries() as u64 {
                    // Fewer entries than pages: look at each entry instead.
                    array.store.invalidate_where(|k, s| {
                        let (page, page_shift) = unkey(k);
                        s == space && page_shift == size && page << size >= base && page << size <= last
                    })
                } else {
                    (base >> size..=last >> size)
                        .map(|page| u64::from(array.store.remove(page, key(page, size), space)))
                        .sum()
                };
                array.held[position] -= removed as u32;
                dropped += removed;
            }
        }
        self.counters.invalidated += dropped;
        dropped
    }

    /// The counters, lookups and hits by size derived from the hits.
    pub fn counters(&self) -> TlbCounters {
        let mut counters = self.counters.clone();
        for (size, by_kind) in self.hits.iter().enumerate() {
            for (kind, hits) in by_kind.iter() {
                counters.lookups[kind] += hits;
                counters.hits_by_size[size] += hits;
            }
        }
        for (kind, misses) in self.counters.misses.iter() {
            counters.lookups[kind] += misses;
        }
        counters
    }

    /// Bytes this TLB's arrays hold on the heap (for the budget's test).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.arrays
            .iter()
            .map(|a| {
                a.store.heap_bytes()
                    + a.dirty.capacity() * 8
                    + a.hints.capacity() * 4
                    + a.held.capacity() * 4
                    + a.shifts.capacity() * size_of::<(u32, usize)>()
            })
            .sum()
    }

    /// Valid entries held.
    pub fn occupancy(&self) -> u64 {
        self.arrays.iter().map(|a| a.store.occupancy()).sum()
    }
}

/// `Tlb::holder` of `arrays`.
fn holders(arrays: &[Array]) -> [Option<(usize, usize, usize)>; 64] {
    let mut holder = [None; 64];
    for (index, array) in arrays.iter().enumerate() {
        for (position, &(shift, size_index)) in array.shifts.iter().enumerate() {
            holder[shift as usize] = Some((index, position, size_index));
        }
    }
    holder
}

/// The bits of `lanes` lanes.
pub fn lane_mask(lanes: usize) -> u64 {
    if lanes >= 64 {
        u64::MAX
    } else {
        (1u64 << lanes) - 1
    }
}

/// The first guess: the main array's smallest size.
fn first_guess(arrays: &[Array]) -> Guess {
    arrays.first().and_then(|a| a.shifts.first()).map_or(Guess::default(), |&(shift, size_index)| Guess {
        array: 0,
        shift,
        size_index,
    })
}

/// A slot key: the page number with its size, so that pages of different
/// sizes sharing an array never match each other.
#[inline(always)]
pub fn key(page: u64, shift: u32) -> u64 {
    (page << 6) | u64::from(shift)
}

pub fn unkey(key: u64) -> (u64, u32) {
    (key >> 6, (key & 63) as u32)
}
