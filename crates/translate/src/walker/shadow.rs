//! Shadow paging: the hardware walks the hypervisor's shadow table
//! (guest-virtual to host-physical) at native cost. A shadow entry that is
//! missing is filled by the hypervisor behind a VM exit: a guest page-table
//! update when the guest itself had to fault the page in, a hidden fault
//! when the guest had it mapped (its page larger than the shadow's).

use super::{ExitReason, Guest, WalkCounters, WalkRequest};
use crate::addr::{Address, Gpa, Hpa, Va};
use crate::frames::FrameAllocator;
use crate::pagetable::PageTables;
use crate::residency::PageKey;

#[derive(Debug, Clone)]
pub(super) struct Shadow {
    pub guests: Vec<Guest>,
    /// The hypervisor's guest-physical to host-physical map (one space per
    /// VM; software, never walked by the hardware).
    pub host_map: PageTables<Gpa, Hpa>,
    /// One shadow table per guest address space, in host memory.
    pub shadow: PageTables<Va, Hpa>,
    pub host_frames: FrameAllocator<Hpa>,
    /// Whether stores are passed on to the guest's dirty bits (which only
    /// the guest's paging under a resident limit reads; the guest's fault
    /// handling sets them either way).
    pub guest_dirty_bits: bool,
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
            guest.page_in(request.local, request.va, &found, invalidate);
        }
        let host = self.host_map.walk(request.vm, gpa, request.write, &mut self.host_frames);
        let hpa = self.host_map.frame(host.leaf).plus(gpa.page_offset(host.page_shift));
        let shift = found.page_shift.min(host.page_shift);
        self.shadow.map(request.space, request.va, shift, hpa.page_base(shift), &mut self.host_frames);
        counters.faulting_walks += u64::from(found.faulted);
        Some(if found.faulted { ExitReason::PageTableUpdate } else { ExitReason::ShadowFill })
    }
}
