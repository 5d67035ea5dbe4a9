//! Shadow paging: the hardware walks the hypervisor's shadow table
//! (guest-virtual to host-physical) at native cost. A shadow entry that is
//! missing is filled by the hypervisor behind a VM exit: a guest page-table
//! update when the guest itself had to fault the page in, a hidden fault
//! when the guest had it mapped (its page larger than the shadow's).
//!
//! Under a host limit (`host.memory.resident`) the hypervisor's map of
//! guest memory pages: a fill whose guest-physical page the host has
//! swapped out brings it back (a host major fault, inside the fill's exit),
//! and a host eviction removes every shadow entry that maps the page (found
//! through a reverse map, as KVM's rmap does), which the simulator follows
//! with a flush of the VM's translations.

use rustc_hash::FxHashMap;

use super::{ExitReason, Guest, Tables, WalkCounters, WalkRequest};
use crate::addr::{Address, Gpa, Hpa, Va};
use crate::pagetable::{PageTables, WalkResult};
use crate::residency::PageKey;

#[derive(Debug, Clone)]
pub(super) struct Shadow {
    pub guests: Vec<Guest>,
    /// The hypervisor's guest-physical to host-physical map (one space per
    /// VM; software, never walked by the hardware), the host's memory
    /// (shadow tables are allocated from it too), and its resident limit.
    pub host: Tables<Gpa, Hpa>,
    /// One shadow table per guest address space, in host memory.
    pub shadow: PageTables<Va, Hpa>,
    /// Whether stores are passed on to the guest's dirty bits (which only
    /// the guest's paging under a resident limit reads; the guest's fault
    /// handling sets them either way).
    pub guest_dirty_bits: bool,
    /// Under a host limit: the shadow entries filled for each host page
    /// (space: the VM), as (shadow space, guest-virtual base, shift,
    /// host-physical base). An entry may have gone since (the guest evicted
    /// its page); each is checked before it is removed.
    pub reverse_map: FxHashMap<PageKey, Vec<(usize, u64, u32, u64)>>,
    /// Host pages (space: the VM) the host evicted, or whose accessed bit
    /// its clock cleared: their shadow entries are gone, and the simulator
    /// flushes the VM's translations.
    pub host_victims: Vec<PageKey>,
    /// Frames of pages a guest just wrote to its swap (kept for capacity).
    pub guest_swap_outs: Vec<(u64, u32)>,
}

impl Shadow {
    /// Fills the shadow entry of `request`'s page if the hardware would
    /// find none; returns the VM exit that took. Pages the guest's paging
    /// evicts on the way are appended to `invalidate`.
    pub(super) fn fill_if_missing(
        &mut self,
        request: &WalkRequest,
        counters: &mut WalkCounters,
        invalidate: &mut Vec<PageKey>,
    ) -> Option<ExitReason> {
        if self.shadow.is_mapped(request.space, request.va) {
            return None;
        }
        // The hypervisor looks at the guest's tables (faulting the page in
        // there if the guest never mapped it, a trapped page-table write)
        // and at its own map of guest memory, and fills the entry.
        let guest = &mut self.guests[request.vm];
        let found = guest.tables.walk(request.local, request.va, request.write, &mut guest.frames);
        let gpa = guest.tables.frame(found.leaf).plus(request.va.page_offset(found.page_shift));
        if found.faulted {
            if self.host.pager.is_some() {
                if let Some(pager) = &mut guest.pager {
                    pager.record_swap_outs();
                }
            }
            guest.page_in(request.local, request.va, &found, invalidate);
            self.double_page(request.vm);
        }
        let host = self.host.tables.walk(request.vm, gpa, request.write, &mut self.host.frames);
        if host.faulted && self.host.pager.is_some() {
            self.host_page_in(request.vm, gpa, &host);
        }
        let hpa = self.host.tables.frame(host.leaf).plus(gpa.page_offset(host.page_shift));
        let shift = found.page_shift.min(host.page_shift);
        self.shadow.map(request.space, request.va, shift, hpa.page_base(shift), &mut self.host.frames);
        if self.host.pager.is_some() {
            let page =
                PageKey { space: request.vm, base: gpa.page_base(host.page_shift).raw(), shift: host.page_shift };
            let entry = (request.space, request.va.page_base(shift).raw(), shift, hpa.page_base(shift).raw());
            self.reverse_map.entry(page).or_default().push(entry);
        }
        counters.faulting_walks += u64::from(found.faulted);
        Some(if found.faulted { ExitReason::PageTableUpdate } else { ExitReason::ShadowFill })
    }

    /// A host fault for `gpa` of VM `vm` under a host limit: the page
    /// becomes resident at the host, evicting others (and, with the clock,
    /// clearing accessed bits), whose shadow entries go.
    fn host_page_in(&mut self, vm: usize, gpa: Gpa, found: &WalkResult<Hpa>) {
        if let Some(pager) = self.host.pager.as_deref_mut() {
            // The shadow tables' nodes are host frames too, pinned.
            pager.set_pinned_frames(self.shadow.table_bytes());
        }
        let from = self.host_victims.len();
        self.host.page_in(vm, gpa, found, &mut self.host_victims);
        for at in from..self.host_victims.len() {
            let page = self.host_victims[at];
            self.drop_shadow_entries(page);
        }
    }

    /// Removes the shadow entries that map the host page `page`: those
    /// filled for it that still map the frame they were filled with (the
    /// guest may have evicted or remapped a page since).
    fn drop_shadow_entries(&mut self, page: PageKey) {
        let Some(entries) = self.reverse_map.remove(&page) else { return };
        for (space, base, shift, frame) in entries {
            if self.shadow.translate(space, Va(base)) == Some((Hpa(frame), shift)) {
                self.shadow.unmap_within(PageKey { space, base, shift });
            }
        }
    }

    /// After VM `vm`'s guest evicted: each page it wrote to its swap is
    /// read, so the host first brings back what it swapped out of it
    /// (double paging), in software: no exit.
    fn double_page(&mut self, vm: usize) {
        let mut frames = std::mem::take(&mut self.guest_swap_outs);
        if let Some(pager) = &mut self.guests[vm].pager {
            pager.take_swapped_out_frames(&mut frames);
        }
        for (frame, shift) in frames.drain(..) {
            let end = frame + (1u64 << shift);
            let mut at = frame;
            while at < end {
                let gpa = Gpa(at);
                let found = self.host.tables.walk(vm, gpa, false, &mut self.host.frames);
                if found.faulted {
                    self.host_page_in(vm, gpa, &found);
                    if found.major {
                        let pager = self.host.pager.as_deref_mut().expect("a host limit");
                        let units = pager.units_of(found.page_shift);
                        pager.count_double_paging(vm, units);
                    }
                }
                at = (at >> found.page_shift << found.page_shift) + (1u64 << found.page_shift);
            }
        }
        self.guest_swap_outs = frames;
    }
}
