//! What changes of address space, timer exits and THP promotions do to
//! cached translations: switches under the `[context]` policy, flushes,
//! id recycles and shootdowns.

use mmusim_trace::Kind;

use super::{Simulator, Walker};
use crate::config::Mode;
use crate::context::SwitchKind;
use crate::walker::ExitReason;

impl Simulator {
    /// The running address space changes: count the switch, apply the
    /// context policy (see `context`), run with the space's tag.
    #[cold]
    #[inline(never)]
    pub(super) fn switch_to(&mut self, trace_vm: u16, context: u16) {
        let switch = self.spaces.switch_to(&self.current, trace_vm, context);
        match switch.kind {
            SwitchKind::First => {}
            SwitchKind::Vm => self.context_counters.vm_switches += 1,
            SwitchKind::Context => {
                self.context_counters.context_switches += 1;
                if self.machine.mode() == Mode::Shadow {
                    // The guest loads CR3, which traps to the hypervisor.
                    for lane in &mut self.lanes {
                        lane.walker.exit(ExitReason::Cr3Write);
                    }
                }
            }
        }
        if switch.flush {
            self.flush_all();
        }
        if let Some(stale) = switch.recycled {
            self.context_counters.id_recycles += 1;
            self.invalidate(|tag, _, _| tag == stale.0, |walker| walker.flush_tag(stale.0));
        }
        let new_vm = self.spaces.vms() > self.balloon_vms_seen;
        self.current = switch.current;
        if new_vm {
            // A VM's first run: its balloon starts at its target.
            self.balloon_vms_seen = self.spaces.vms();
            if let Some(&pages) = self.balloon_targets.get(&trace_vm) {
                self.inflate(self.current.vm.0, pages);
            }
        }
    }

    /// Empties every TLB and page-walk cache.
    pub(super) fn flush_all(&mut self) {
        self.invalidate(|_, _, _| true, Walker::flush_all);
        self.context_counters.flushes += 1;
    }

    /// Removes the TLB entries `drop` accepts (by space tag and the page's
    /// address range) and, in each lane, what `flush` removes from the
    /// walker's caches; counts what went as flushed.
    pub(super) fn invalidate(
        &mut self,
        drop: impl Fn(u32, u64, u64) -> bool + Copy,
        flush: impl Fn(&mut Walker) -> u64,
    ) {
        let (shared, swept) = self.invalidate_tlbs(drop);
        self.context_counters.entries_flushed += shared;
        for (lane, state) in self.lanes.iter_mut().enumerate() {
            state.entries_flushed += swept.get(lane).copied().unwrap_or(0) + flush(&mut state.walker);
        }
    }

    /// Removes the TLB entries `drop` accepts; returns how many went from
    /// the shared TLBs, and per lane from the swept array (each lane's
    /// counters of the swept TLB count both its shared arrays' and its own).
    pub(super) fn invalidate_tlbs(&mut self, drop: impl Fn(u32, u64, u64) -> bool + Copy) -> (u64, Vec<u64>) {
        let mut shared = 0;
        let mut in_swept_tlb = 0;
        for (index, tlb) in self.tlbs.iter_mut().enumerate() {
            let dropped = tlb.invalidate_where(drop);
            shared += dropped;
            if self.swept.as_ref().is_some_and(|s| s.tlb == index) {
                in_swept_tlb = dropped;
            }
        }
        let Some(swept) = &mut self.swept else { return (shared, Vec::new()) };
        let lost = swept.stack.invalidate_where(|key, space| {
            let (page, shift) = crate::tlb::unkey(key);
            let first = page << shift;
            drop(space, first, first + ((1u64 << shift) - 1))
        });
        for (lane, state) in self.lanes.iter_mut().enumerate() {
            state.swept.invalidated += in_swept_tlb + lost[lane];
        }
        (shared, lost)
    }

    /// `[[balloon]]`: steps at instruction 0 set the targets VMs start
    /// with; the first later one is the next scheduled event.
    pub(super) fn schedule_balloon(&mut self) {
        self.balloon_steps = self.lanes[0].config.balloon.clone();
        while let Some(step) = self.balloon_steps.get(self.next_balloon_step).filter(|s| s.at == 0) {
            self.balloon_targets.insert(step.vm, step.pages);
            self.next_balloon_step += 1;
        }
        self.next_event = self.next_timer.min(self.next_balloon_at());
    }

    fn next_balloon_at(&self) -> u64 {
        self.balloon_steps.get(self.next_balloon_step).map_or(u64::MAX, |s| s.at)
    }

    /// The instruction count reached `next_event`: a timer exit, balloon
    /// steps, or both.
    #[cold]
    #[inline(never)]
    pub(super) fn scheduled_events(&mut self) {
        let fetches = self.counters.references[Kind::Fetch];
        if fetches == self.next_timer {
            self.timer_exit();
        }
        while let Some(&step) = self.balloon_steps.get(self.next_balloon_step).filter(|s| s.at <= fetches) {
            self.next_balloon_step += 1;
            self.balloon_targets.insert(step.vm, step.pages);
            if let Some(vm) = self.spaces.vm_of_trace(step.vm) {
                self.inflate(vm.0, step.pages);
            }
        }
        self.next_event = self.next_timer.min(self.next_balloon_at());
    }

    /// VM `vm`'s balloon holds `pages` from now on.
    fn inflate(&mut self, vm: usize, pages: u64) {
        let running = (self.current.vm.0, self.current.vm_tag);
        if self.lanes[0].walker.balloon(vm, pages, running) {
            self.invalidate_paged();
        }
    }

    /// A timer exit: the hypervisor runs, and without VM tags the TLBs do
    /// not survive it.
    #[cold]
    #[inline(never)]
    pub(super) fn timer_exit(&mut self) {
        let interval = self.machine.timer_interval();
        self.next_timer = self.next_timer.saturating_add(interval);
        for lane in &mut self.lanes {
            lane.walker.exit(ExitReason::Timer);
        }
        if !self.machine.context.vm_tags {
            self.flush_all();
        }
    }

    /// Paging evicted pages, or cleared their accessed bits with
    /// invalidation: their translations go from every TLB, under the tag
    /// their space has now if the TLBs may hold any of its entries, as
    /// INVLPG would, which also empties the space's paging-structure
    /// caches. (Only a simulator of one lane pages: see `lanes`.)
    #[cold]
    #[inline(never)]
    pub(super) fn invalidate_paged(&mut self) {
        let mut pages = std::mem::take(&mut self.invalidations);
        self.lanes[0].walker.take_invalidations(&mut pages);
        for page in pages.drain(..) {
            let Some(tag) = self.spaces.cached_tag(crate::context::SpaceId(page.space), &self.current) else {
                continue;
            };
            for tlb in &mut self.tlbs {
                tlb.invalidate_page(tag.0, page.base, page.shift);
            }
            self.lanes[0].walker.flush_space(tag.0);
        }
        // A host limit evicted guest-physical pages: as INVEPT for the
        // VM's context, its nested-TLB entries for the page, and every
        // translation and walk-cache entry of the VM's address spaces, go.
        // (The walker dropped the nested TLB's entries already.) What is
        // left is the same for every page of a VM: once per VM.
        self.lanes[0].walker.take_host_invalidations(&mut pages);
        pages.sort_unstable_by_key(|page| page.space);
        pages.dedup_by_key(|page| page.space);
        for page in pages.drain(..) {
            let vm = crate::context::VmId(page.space);
            for space in (0..self.spaces.spaces()).map(crate::context::SpaceId) {
                if self.spaces.vm_of(space) != Some(vm) {
                    continue;
                }
                let Some(tag) = self.spaces.cached_tag(space, &self.current) else { continue };
                // Counted in each TLB's `invalidated`.
                self.invalidate_tlbs(|t, _, _| t == tag.0);
                self.lanes[0].walker.flush_space(tag.0);
            }
        }
        self.invalidations = pages;
    }

    /// A THP promotion replaced the small pages of the region `(base,
    /// shift)` of the space tagged `tag`: drops their cached translations
    /// (as the OS's shootdown would) and the walk caches of the space
    /// (INVLPG also empties paging-structure caches).
    #[cold]
    #[inline(never)]
    pub(super) fn drop_promoted(&mut self, (base, shift): (u64, u32), tag: u32) {
        let end = base + ((1u64 << shift) - 1);
        let (shared, swept) = self.invalidate_tlbs(|s, first, last| s == tag && first >= base && last <= end);
        self.counters.promotion_invalidations += shared;
        for (lane, state) in self.lanes.iter_mut().enumerate() {
            state.promotion_invalidations += swept.get(lane).copied().unwrap_or(0);
            state.walker.flush_space(tag);
        }
    }
}
