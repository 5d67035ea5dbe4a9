//! Native mode: one walk of the address space's table. Lanes of a
//! one-pass simulation share the native tables, which keep a dirty bit per
//! lane (the lanes' tables would differ in nothing else).

use super::{Mmu, WalkOutcome, WalkRequest, Walker};
use crate::addr::Hpa;
use crate::pagetable::{EntryAddrs, WalkResult};

impl Walker {
    /// Native mode: what the walk that found `found` costs (page-walk
    /// caches, memory references), counted.
    #[inline(always)]
    pub fn cost_native_walk(
        &mut self,
        request: &WalkRequest,
        found: &WalkResult<Hpa>,
        addrs: &EntryAddrs<Hpa>,
    ) -> WalkOutcome {
        self.counters.faulting_walks += u64::from(found.faulted);
        if found.promoted.is_some() {
            self.promotion = found.promoted;
        }
        let (references, cycles) = self.cost_levels(request, found, addrs);
        self.count_walk(WalkOutcome {
            page_shift: found.page_shift,
            dirty: found.dirty,
            references,
            cycles,
            promoted: found.promoted.is_some(),
            paging: false,
        })
    }

    /// Native mode, for a simulator whose lanes share this walker's page
    /// tables (they differ only in dirty bits, kept per lane): walks for the
    /// lanes `lanes`; returns what it found, and the lanes in which it set
    /// the dirty bit and in which the page is dirty after it. `None` in the
    /// other modes.
    pub fn walk_tables_for_lanes(
        &mut self,
        request: &WalkRequest,
        lanes: u64,
    ) -> Option<(WalkResult<Hpa>, EntryAddrs<Hpa>, u64, u64)> {
        let Mmu::Native(native) = &mut self.mmu else { return None };
        let mut addrs = super::UNRECORDED;
        let (found, set_dirty, dirty) =
            native.tables.walk_lanes(request.space, request.va, request.write, lanes, &mut native.frames, &mut addrs);
        Some((found, addrs, set_dirty, dirty))
    }

    /// Native mode with shared tables: sets lane `lane`'s dirty bit of the
    /// page a store found cached clean; returns whether it was clear.
    pub fn mark_dirty_lane(&mut self, request: &WalkRequest, lane: usize) -> bool {
        match &mut self.mmu {
            Mmu::Native(native) => native.tables.mark_dirty_lane(request.space, request.va, lane),
            _ => unreachable!("only native tables are shared between lanes"),
        }
    }

    /// Native mode: keep dirty bits per lane for `lanes` lanes sharing these
    /// tables; false in the other modes.
    pub fn share_tables(&mut self, lanes: usize) -> bool {
        match &mut self.mmu {
            Mmu::Native(native) => {
                native.tables.keep_lane_dirty_bits(lanes);
                true
            }
            _ => false,
        }
    }
}
