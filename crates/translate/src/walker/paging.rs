//! The OS's side of a resident limit (`memory.resident`): each page a fault
//! maps becomes resident; while the resident pages exceed the limit the
//! replacement policy (`residency`) picks a victim, whose entry is cleared,
//! which goes to swap if dirty, whose frame is freed, and whose cached
//! translations must go (an invalidation, left for the simulator to apply:
//! the TLBs are its). A later fault on it is major.

use serde::Serialize;

use super::Tables;
use crate::addr::Address;
use crate::config::PageReplacement;
use crate::machine::Paging;
use crate::pagetable::WalkResult;
use crate::residency::{PageKey, Residency, VictimReason};

/// What paging under a resident limit did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PagingCounters {
    /// Pages evicted to meet the limit.
    pub evictions: u64,
    /// Clock: evictions of pages the hand found unreferenced at its first
    /// look, and of pages whose second chance ran out.
    pub evictions_unreferenced: u64,
    pub evictions_second_chance_spent: u64,
    /// Evicted pages that were dirty, written to swap.
    pub swap_outs: u64,
    /// Faults that read an evicted page back (major faults).
    pub swap_ins: u64,
    /// Accessed bits the clock hand cleared.
    pub accessed_bits_cleared: u64,
    /// Pages whose cached translations were invalidated: every eviction,
    /// and with `clock_clear_flushes` every accessed bit cleared.
    pub invalidations: u64,
    /// Cycles of minor and major faults, swap-outs and invalidations.
    pub cycles: u64,
    /// The most pages resident at once.
    pub resident_peak: u64,
    /// Host: swap-ins the guests' own swap-outs forced (double paging): a
    /// guest wrote to its swap a page the host had swapped out.
    pub double_paging: u64,
    /// Their cycles (major faults), part of `cycles`.
    pub double_paging_cycles: u64,
    /// A guest's balloon: the pages it holds at the end, the most it held.
    pub balloon_pages: u64,
    pub balloon_peak: u64,
    /// Evictions a balloon inflating forced, and the major faults of those
    /// pages when referenced again.
    pub balloon_evictions: u64,
    pub balloon_major_faults: u64,
    /// Balloon frames whose host backing the host freed.
    pub balloon_host_frees: u64,
}

impl PagingCounters {
    /// Adds `units` events of `cycles` each. Sticks at the largest count
    /// rather than wrapping (only absurd costs on huge pages get there).
    fn charge(&mut self, cycles: u32, units: u64) {
        self.cycles = self.cycles.saturating_add(u64::from(cycles).saturating_mul(units));
    }

    /// Sums counters of several memories (each VM's guest).
    pub fn add(&mut self, other: &PagingCounters) {
        self.evictions += other.evictions;
        self.evictions_unreferenced += other.evictions_unreferenced;
        self.evictions_second_chance_spent += other.evictions_second_chance_spent;
        self.swap_outs += other.swap_outs;
        self.swap_ins += other.swap_ins;
        self.accessed_bits_cleared += other.accessed_bits_cleared;
        self.invalidations += other.invalidations;
        self.cycles = self.cycles.saturating_add(other.cycles);
        self.resident_peak += other.resident_peak;
        self.double_paging += other.double_paging;
        self.balloon_pages += other.balloon_pages;
        self.balloon_peak += other.balloon_peak;
        self.balloon_evictions += other.balloon_evictions;
        self.balloon_major_faults += other.balloon_major_faults;
        self.balloon_host_frees += other.balloon_host_frees;
        self.double_paging_cycles = self.double_paging_cycles.saturating_add(other.double_paging_cycles);
    }
}

/// A host's paging counted by the VM whose guest-physical page it was.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VmPagingCounters {
    pub major_faults: u64,
    pub evictions: u64,
    pub swap_outs: u64,
    pub double_paging: u64,
}

/// One memory's resident set and what paging it cost.
#[derive(Clone, Debug)]
pub struct Pager {
    residency: Residency,
    paging: Paging,
    /// Shift of the smallest page: swap traffic is priced per such page.
    smallest: u32,
    /// Whether clearing an accessed bit invalidates the page's
    /// translations (`clock_clear_flushes`, or always under shadow paging).
    invalidate_on_clear: bool,
    /// The limit also holds the page tables' own pages (the host's: its
    /// frames back them too), which are never evicted.
    pins_tables: bool,
    /// Bytes of other frames the limit holds, never evicted.
    pinned_frames: u64,
    /// A guest's under a host limit: the frames of dirty victims, which
    /// the guest reads to write them to its swap (the host may have to
    /// bring them back first), until `take_swapped_out_frames`.
    records_swap_outs: bool,
    swapped_out_frames: Vec<(u64, u32)>,
    /// The host's: counts by the address space (VM) of the page.
    by_space: Option<Vec<VmPagingCounters>>,
    /// A guest's balloon: the frames (smallest pages) its driver holds.
    balloon: Vec<u64>,
    /// Pages a balloon inflating evicted, until referenced again.
    balloon_evicted: rustc_hash::FxHashSet<PageKey>,
    /// Evictions now are the balloon's.
    balloon_evicting: bool,
    counters: PagingCounters,
}

impl Pager {
    pub fn new(paging: Paging, smallest: u32, seed: u64) -> Pager {
        Pager {
            residency: Residency::new(paging.resident, paging.replacement, seed).with_smallest_page(smallest),
            paging,
            smallest,
            invalidate_on_clear: paging.clock_clear_flushes,
            pins_tables: false,
            pinned_frames: 0,
            records_swap_outs: false,
            swapped_out_frames: Vec::new(),
            by_space: None,
            balloon: Vec::new(),
            balloon_evicted: rustc_hash::FxHashSet::default(),
            balloon_evicting: false,
            counters: PagingCounters::default(),
        }
    }

    /// Clearing an accessed bit invalidates the page's translations from
    /// now on, whatever `clock_clear_flushes` says.
    pub fn invalidate_on_clear(&mut self) {
        self.invalidate_on_clear = true;
    }

    /// From now on the frames of dirty victims are kept for
    /// `take_swapped_out_frames`.
    pub fn record_swap_outs(&mut self) {
        self.records_swap_outs = true;
    }

    /// The (frame, page shift) of each page swapped out since the last
    /// call, in order.
    pub fn take_swapped_out_frames(&mut self, into: &mut Vec<(u64, u32)>) {
        into.append(&mut self.swapped_out_frames);
    }

    /// A swap-in of `units` smallest pages that a guest's swap-out forced
    /// (its cycles were charged with the major fault).
    pub fn count_double_paging(&mut self, space: usize, units: u64) {
        self.counters.double_paging += 1;
        if let Some(counts) = self.space_counts(space) {
            counts.double_paging += 1;
        }
        let cycles = u64::from(self.paging.costs.major_fault).saturating_mul(units);
        self.counters.double_paging_cycles = self.counters.double_paging_cycles.saturating_add(cycles);
    }

    /// `page` is no longer resident and never will be again as it was (its
    /// backing was freed): out of the resident set.
    pub fn forget(&mut self, page: PageKey) {
        self.residency.remove(page);
    }

    /// The host freed the backing of `frames` of the balloon's.
    pub fn count_balloon_host_frees(&mut self, frames: u64) {
        self.counters.balloon_host_frees += frames;
    }

    /// Counts by address space from now on (the host's, by VM).
    pub fn count_by_space(&mut self) {
        self.by_space = Some(Vec::new());
    }

    /// The counts by address space, if kept.
    pub fn by_space(&self) -> Option<&[VmPagingCounters]> {
        self.by_space.as_deref()
    }

    fn space_counts(&mut self, space: usize) -> Option<&mut VmPagingCounters> {
        let counts = self.by_space.as_mut()?;
        if counts.len() <= space {
            counts.resize(space + 1, VmPagingCounters::default());
        }
        Some(&mut counts[space])
    }

    /// Smallest pages in a page of `shift`.
    pub fn units_of(&self, shift: u32) -> u64 {
        1 << (shift - self.smallest)
    }

    /// The page tables' own pages count against the limit from now on.
    pub fn pin_tables(&mut self) {
        self.pins_tables = true;
    }

    /// `bytes` more of frames that are never evicted (the zero frame of
    /// sharing) count against the limit from now on.
    pub fn pin_frames(&mut self, bytes: u64) {
        self.pinned_frames += bytes;
    }

    /// The bytes of other frames the limit holds are `bytes` now (the
    /// shadow tables', which grow).
    pub fn set_pinned_frames(&mut self, bytes: u64) {
        self.pinned_frames = bytes;
    }

    /// `bytes` of those frames went back.
    pub fn unpin_frames(&mut self, bytes: u64) {
        self.pinned_frames -= bytes;
    }

    pub fn tracks_every_reference(&self) -> bool {
        self.residency.policy() == PageReplacement::Lru
    }

    pub fn counters(&self) -> PagingCounters {
        PagingCounters { resident_peak: self.residency.peak_pages(), ..self.counters.clone() }
    }

    /// Smallest pages in `page`: the unit swap traffic is priced in.
    fn units(&self, page: PageKey) -> u64 {
        1 << (page.shift - self.smallest)
    }
}

impl<In: Address, Out: Address> Tables<In, Out> {
    /// After a walk of `space` for `va` that faulted (`found`): the page it
    /// mapped becomes resident, and pages are evicted until the resident
    /// ones fit the limit. Pages whose translations must be invalidated are
    /// appended to `invalidate` (numbered as this table numbers spaces).
    #[cold]
    #[inline(never)]
    pub(super) fn page_in(&mut self, space: usize, va: In, found: &WalkResult<Out>, invalidate: &mut Vec<PageKey>) {
        let Some(pager) = self.pager.as_deref_mut() else { return };
        let shift = found.page_shift;
        let page = PageKey { space, base: va.raw() >> shift << shift, shift };
        let costs = pager.paging.costs;
        if found.major {
            if let Some(counts) = pager.space_counts(space) {
                counts.major_faults += 1;
            }
            pager.counters.swap_ins += 1;
            pager.counters.charge(costs.major_fault, pager.units(page));
            if !pager.balloon_evicted.is_empty() && pager.balloon_evicted.remove(&page) {
                pager.counters.balloon_major_faults += 1;
            }
        } else {
            pager.counters.charge(costs.minor_fault, 1);
        }
        if let Some((base, large)) = found.promoted {
            // The promotion replaced the region's small pages.
            let small = pager.smallest;
            for index in 0..1u64 << (large - small) {
                pager.residency.remove(PageKey { space, base: base + (index << small), shift: small });
            }
        }
        if self.tables.is_pool_page(page) {
            // Reserved up front and pinned: outside the limit.
            return;
        }
        pager.residency.admit(page);
        if pager.pins_tables {
            pager.residency.set_pinned_bytes(self.tables.table_bytes() + pager.pinned_frames);
        }
        self.evict_over_limit(page, invalidate);
        if let Some(pager) = self.pager.as_deref_mut() {
            pager.residency.record_peak();
        }
    }

    /// The balloon driver comes to hold `target` smallest pages: the limit
    /// shrinks (or grows) by them; inflating evicts what no longer fits
    /// (the guest's own policy choosing) and then takes frames from the
    /// allocator, pinned, appended to `pinned` (their host backing can
    /// go); deflating gives frames back.
    pub(super) fn balloon_to(&mut self, target: u64, invalidate: &mut Vec<PageKey>, pinned: &mut Vec<u64>) {
        let Some(pager) = self.pager.as_deref_mut() else { return };
        let smallest = pager.smallest;
        let held = pager.balloon.len() as u64;
        pager.residency.set_limit(pager.paging.resident - (target << smallest));
        if target > held {
            pager.balloon_evicting = true;
            self.evict_over_limit(Residency::NOTHING, invalidate);
            let pager = self.pager.as_deref_mut().expect("checked above");
            pager.balloon_evicting = false;
            for _ in held..target {
                let frame = self.frames.allocate(smallest).raw();
                pager.balloon.push(frame);
                pinned.push(frame);
            }
        } else {
            for _ in target..held {
                let frame = pager.balloon.pop().expect("held");
                self.frames.release(Out::from_raw(frame), smallest);
            }
        }
        let pager = self.pager.as_deref_mut().expect("checked above");
        pager.counters.balloon_pages = target;
        pager.counters.balloon_peak = pager.counters.balloon_peak.max(target);
    }

    /// Evicts pages (never `keep`) until the resident ones fit the limit.
    fn evict_over_limit(&mut self, keep: PageKey, invalidate: &mut Vec<PageKey>) {
        let Some(pager) = self.pager.as_deref_mut() else { return };
        let costs = pager.paging.costs;
        let clear_flushes = pager.invalidate_on_clear;
        while pager.residency.over_limit() {
            let tables = &mut self.tables;
            let counters = &mut pager.counters;
            let chosen = pager.residency.evict_one(keep, |candidate| {
                let was_set = tables.test_and_clear_accessed(candidate);
                if was_set {
                    counters.accessed_bits_cleared += 1;
                    if clear_flushes {
                        counters.invalidations += 1;
                        counters.charge(costs.invalidation, 1);
                        invalidate.push(candidate);
                    }
                }
                was_set
            });
            let Some((victim, reason)) = chosen else { break };
            let (frame, dirty) = self.tables.evict(victim);
            self.frames.release(frame, victim.shift);
            let units = pager.units(victim);
            let counters = &mut pager.counters;
            counters.evictions += 1;
            match reason {
                VictimReason::Unreferenced => counters.evictions_unreferenced += 1,
                VictimReason::SecondChanceSpent => counters.evictions_second_chance_spent += 1,
                VictimReason::Policy => {}
            }
            if dirty {
                counters.swap_outs += 1;
                counters.charge(costs.swap_out, units);
            }
            counters.invalidations += 1;
            counters.charge(costs.invalidation, 1);
            invalidate.push(victim);
            if let Some(counts) = pager.space_counts(victim.space) {
                counts.evictions += 1;
                counts.swap_outs += u64::from(dirty);
            }
            if pager.balloon_evicting {
                pager.counters.balloon_evictions += 1;
                pager.balloon_evicted.insert(victim);
            }
            if dirty && pager.records_swap_outs {
                pager.swapped_out_frames.push((frame.raw(), victim.shift));
            }
        }
    }

    /// LRU: `va` of `space` (mapped) is referenced now, between the trace's
    /// references (a 2D walk reading a guest table page at the host).
    pub(super) fn touch_now(&mut self, space: usize, va: In) {
        if let Some(pager) = self.pager.as_deref_mut() {
            if pager.residency.policy() == PageReplacement::Lru {
                let stamp = pager.residency.next_stamp();
                self.touch(space, va, stamp);
            }
        }
    }

    /// The last reference to `va` of `space` was at time `stamp` (LRU's
    /// recency); the page is mapped.
    #[inline]
    pub(super) fn touch(&mut self, space: usize, va: In, stamp: u64) {
        if let Some(pager) = self.pager.as_deref_mut() {
            if !pager.residency.touch_address(space, va.raw(), stamp) {
                if let Some(page) = self.tables.page_of(space, va) {
                    pager.residency.touch(page, va.raw(), stamp);
                }
            }
        }
    }
}
