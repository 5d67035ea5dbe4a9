//! Nested paging: a two-dimensional walk. Every guest table entry sits at
//! a guest-physical address that must itself be translated through the
//! host table (or found in the nested TLB) before it can be read, and so
//! must the final guest-physical address: (g+1)(h+1)-1 references with no
//! caches. The translation is cached at the smaller of the guest and host
//! page sizes.

use super::sharing::Dropped;
use super::{walk_levels, Guest, NestedCounters, Shared, Tables, WalkCounters, WalkOutcome, WalkRequest};
use crate::addr::{Address, Gpa, Hpa};
use crate::pwc::{PageWalkCache, WalkMemory};
use crate::residency::PageKey;
use crate::tlb::Tlb;
use mmusim_trace::Kind;

#[derive(Debug, Clone)]
pub(super) struct Nested {
    /// One per VM: guest-physical memory starts afresh in each.
    pub guests: Vec<Guest>,
    /// The host table, one address space per VM.
    pub host: Tables<Gpa, Hpa>,
    pub host_pwc: PageWalkCache,
    pub host_shifts: Vec<u32>,
    pub host_entry_bytes: u32,
    pub tlb: Option<Tlb<Gpa>>,
    pub tlb_latency: u32,
    pub counters: NestedCounters,
    /// Guest-physical pages the host evicted (space: the VM), whose
    /// translations the simulator must drop.
    pub host_victims: Vec<PageKey>,
    /// Frames of pages a guest just wrote to its swap (kept for capacity).
    pub guest_swap_outs: Vec<(u64, u32)>,
    /// Whether the nested TLB's entries carry their VM's tag (and so
    /// survive VM switches), as the TLBs' do.
    pub vm_tags: bool,
    /// Whether the host limit's policy is LRU: every guest-physical page
    /// referenced, by the program or by a 2D walk, is stamped.
    pub host_lru: bool,
    /// Zero-page sharing (`host.share_zero_pages`).
    pub sharing: Option<Box<super::sharing::ZeroSharing>>,
}

/// The VM running, and the tag its nested-TLB entries carry: whose
/// entries a host eviction must find.
#[derive(Clone, Copy, Debug)]
pub(super) struct Running {
    pub vm: usize,
    pub vm_tag: u32,
}

/// A guest-physical address translated through the host.
struct HostTranslation {
    hpa: Hpa,
    shift: u32,
    references: u32,
    cycles: u32,
    /// The host had to map the page first (an EPT/NPT violation).
    faulted: bool,
}

impl Nested {
    /// A two-dimensional walk for `request`: the guest table's entries,
    /// each found through the host first, then the data's guest-physical
    /// address. Returns the outcome and the EPT/NPT violations (host faults)
    /// it took.
    pub(super) fn walk(&mut self, request: &WalkRequest, shared: &mut Shared<'_>) -> (WalkOutcome, u64) {
        let mut host_faults = 0u64;
        let guest = &mut self.guests[request.vm];
        let mut guest_addrs = [Gpa(0); crate::pagetable::MAX_LEVELS];
        let found =
            guest.tables.walk_addressed(request.local, request.va, request.write, &mut guest.frames, &mut guest_addrs);
        let gpa = guest.tables.frame(found.leaf).plus(request.va.page_offset(found.page_shift));
        let running = Running { vm: request.vm, vm_tag: request.vm_tag };
        if found.faulted {
            self.record_guest_swap_outs(request.vm);
            self.guests[request.vm].page_in(request.local, request.va, &found, shared.invalidate);
            self.double_page(request.vm, running);
            if self.sharing.is_some() {
                // The guest read the page from its swap, or (first touched
                // by a fetch) from the program's file; else zeroed it.
                let base = Gpa(gpa.raw() >> found.page_shift << found.page_shift);
                let data = found.major || request.fetch;
                self.guest_filled(request.vm, (base, found.page_shift), data, request.write.then_some(gpa), running);
            }
        }
        shared.counters.accessed_bits_set += u64::from(found.set_accessed);
        shared.counters.dirty_bits_set += u64::from(found.set_dirty);
        shared.counters.faulting_walks += u64::from(found.faulted);
        let memory = &mut *shared.memory;
        let counters = &mut *shared.counters;
        let mut host_references = 0;
        // Under a host limit, a walk that wrote guest entries (the guest
        // OS mapping a page, or accessed and dirty bits set) dirtied the
        // host pages of the guest table nodes it read: all of them, an
        // upper bound (a host without a limit never reads its dirty bits).
        // (Under zero-page sharing the same writes break a table page's
        // share.)
        let wrote_guest = (self.host.pager.is_some() || self.sharing.is_some())
            && (found.faulted || found.set_accessed || found.set_dirty);
        let (guest_references, mut cycles) = walk_levels(
            shared.pwc,
            request,
            request.va,
            shared.shifts,
            shared.entry_bytes,
            &guest_addrs[..found.levels],
            |level, gpa| {
                // The guest entry's address is guest-physical: find it in
                // the host first, then read it.
                let host = self.host_translate(request, gpa, wrote_guest, memory, counters);
                host_references += host.references;
                host_faults += u64::from(host.faulted);
                counters.references_by_level[level] += 1;
                self.counters.guest_references += 1;
                host.cycles + memory.reference(host.hpa, &mut counters.line_cache)
            },
        );
        let host = self.host_translate(request, gpa, request.write, memory, counters);
        host_references += host.references;
        host_faults += u64::from(host.faulted);
        cycles += host.cycles;
        // A page sharing the zero frame is mapped read-only at the host:
        // its translation is cached clean, so a store comes back to break
        // the share (`mark_dirty`).
        let shared_zero = self.sharing.as_deref().is_some_and(|s| s.is_shared(request.vm, gpa));
        let outcome = WalkOutcome {
            page_shift: found.page_shift.min(host.shift),
            dirty: found.dirty && !shared_zero,
            references: guest_references + host_references,
            cycles,
            promoted: false,
            paging: false,
        };
        (outcome, host_faults)
    }

    /// VM `vm`'s balloon driver comes to hold `target` pages: the guest
    /// evicts what no longer fits (its swap-outs may double-page), and the
    /// host frees the backing of the frames the driver takes, dropping
    /// their translations (an INVEPT each, as for an eviction).
    pub(super) fn balloon(&mut self, vm: usize, target: u64, invalidate: &mut Vec<PageKey>, running: Running) {
        let mut pinned = Vec::new();
        self.record_guest_swap_outs(vm);
        self.guests[vm].balloon_to(target, invalidate, &mut pinned);
        self.double_page(vm, running);
        let shift = self.guests[vm].tables.shape().offset_bits;
        let mut freed = 0;
        let from = self.host_victims.len();
        for frame in pinned {
            let page = PageKey { space: vm, base: frame, shift };
            match self.discard_host_page(page) {
                Dropped::Nothing => continue,
                // No frame of its own to free; its translations still go.
                Dropped::Shared => {}
                Dropped::Frame(host_frame) => {
                    self.host.frames.release(host_frame, shift);
                    if let Some(pager) = self.host.pager.as_deref_mut() {
                        pager.forget(page);
                    }
                    freed += 1;
                }
            }
            self.host_victims.push(page);
        }
        self.drop_nested_entries(from, running);
        if let Some(pager) = &mut self.guests[vm].pager {
            pager.count_balloon_host_frees(freed);
        }
    }

    /// A host fault of VM `vm` for `gpa`: the page becomes resident at the
    /// host, evicting others, whose nested-TLB entries go at once (a later
    /// host translation of this very walk must not find them); the rest of
    /// their invalidation is the simulator's (`host_victims`).
    pub(super) fn host_page_in(
        &mut self,
        vm: usize,
        gpa: Gpa,
        found: &crate::pagetable::WalkResult<Hpa>,
        running: Running,
    ) {
        let from = self.host_victims.len();
        self.host.page_in(vm, gpa, found, &mut self.host_victims);
        self.drop_nested_entries(from, running);
    }

    /// Drops the nested-TLB entries of `host_victims[from..]`: under the
    /// running VM's tag, or with VM tags under the victim's VM's (without
    /// them a VM switch emptied the nested TLB of every other VM's).
    fn drop_nested_entries(&mut self, from: usize, running: Running) {
        let Some(tlb) = &mut self.tlb else { return };
        for page in &self.host_victims[from..] {
            let tag = if page.space == running.vm {
                running.vm_tag
            } else if self.vm_tags {
                crate::context::HardwareTag::vm_part(crate::context::VmId(page.space), true)
            } else {
                continue;
            };
            tlb.invalidate_page(tag, page.base, page.shift);
        }
    }

    /// Under a host limit, the swap-outs of VM `vm`'s guest are kept for
    /// `double_page` (before the guest may evict).
    fn record_guest_swap_outs(&mut self, vm: usize) {
        if self.host.pager.is_some() {
            if let Some(pager) = &mut self.guests[vm].pager {
                pager.record_swap_outs();
            }
        }
    }

    /// After VM `vm`'s guest evicted: each page it wrote to its swap is
    /// brought back at the host first if the host had swapped it out.
    fn double_page(&mut self, vm: usize, running: Running) {
        let mut frames = std::mem::take(&mut self.guest_swap_outs);
        if let Some(pager) = &mut self.guests[vm].pager {
            pager.take_swapped_out_frames(&mut frames);
        }
        for (frame, shift) in frames.drain(..) {
            self.back_for_guest_swap_out(vm, Gpa(frame), shift, running);
        }
        self.guest_swap_outs = frames;
    }

    /// A guest of VM `vm` writes the page at `base` (of `shift`) to its
    /// swap, reading it: each of its host pages the host swapped out must
    /// come back first (double paging). The hypervisor does it in
    /// software, with no EPT violation.
    #[cold]
    fn back_for_guest_swap_out(&mut self, vm: usize, base: Gpa, shift: u32, running: Running) {
        let end = base.raw() + (1u64 << shift);
        let mut at = base.raw();
        while at < end {
            let gpa = Gpa(at);
            let found = self.host.tables.walk(vm, gpa, false, &mut self.host.frames);
            if found.faulted && !self.share_if_zero(vm, gpa, false) {
                self.host_page_in(vm, gpa, &found, running);
                if found.major {
                    let pager = self.host.pager.as_deref_mut().expect("a host limit");
                    let units = pager.units_of(found.page_shift);
                    pager.count_double_paging(vm, units);
                }
            }
            at = (at >> found.page_shift << found.page_shift) + (1u64 << found.page_shift);
        }
    }

    /// Translates a guest-physical address of `request`'s VM through the
    /// nested TLB, or a walk of the host table.
    fn host_translate(
        &mut self,
        request: &WalkRequest,
        gpa: Gpa,
        write: bool,
        memory: &mut WalkMemory,
        counters: &mut WalkCounters,
    ) -> HostTranslation {
        self.counters.host_translations += 1;
        if write && self.sharing.is_some() {
            self.before_host_write(request.vm, gpa, Running { vm: request.vm, vm_tag: request.vm_tag });
        }
        let mut cycles = 0;
        if let Some(tlb) = &mut self.tlb {
            cycles += self.tlb_latency;
            // Counted as loads: the nested TLB serves the walker alone.
            if let Some(hit) = tlb.lookup(request.vm_tag, gpa, Kind::Load) {
                // The host-physical address matters only to a memory model
                // that caches lines; at a fixed latency no one reads it, so
                // the host table is not looked up for it.
                let hpa = if memory.reads_addresses() {
                    self.host.tables.translate(request.vm, gpa).expect("cached, so mapped").0
                } else {
                    Hpa(0)
                };
                if self.host_lru {
                    self.host.touch_now(request.vm, gpa);
                }
                return HostTranslation { hpa, shift: hit.page_shift, references: 0, cycles, faulted: false };
            }
        }
        self.counters.host_walks += 1;
        let mut addrs = super::UNRECORDED;
        let found = self.host.tables.walk_addressed(request.vm, gpa, write, &mut self.host.frames, &mut addrs);
        let host_counters = &mut self.counters;
        // Host-table entries belong to the VM, not to an address space, and
        // live in host-physical memory.
        let host_request = WalkRequest { tag: request.vm_tag, physical_tag: 0, ..*request };
        let (references, walk_cycles) = walk_levels(
            &mut self.host_pwc,
            &host_request,
            gpa,
            &self.host_shifts,
            self.host_entry_bytes,
            &addrs[..found.levels],
            |level, addr| {
                host_counters.host_references += 1;
                host_counters.host_references_by_level[level] += 1;
                memory.reference(addr, &mut counters.line_cache)
            },
        );
        cycles += walk_cycles;
        if let Some(tlb) = &mut self.tlb {
            tlb.count_miss(Kind::Load, found.page_shift);
            tlb.fill(request.vm_tag, gpa, found.page_shift, 0);
        }
        let shared_zero = found.faulted && self.share_if_zero(request.vm, gpa, write);
        if found.faulted && !shared_zero && self.host.pager.is_some() {
            // Over a host limit the host swaps guest-physical pages out.
            self.host_page_in(request.vm, gpa, &found, Running { vm: request.vm, vm_tag: request.vm_tag });
        }
        if self.host_lru {
            self.host.touch_now(request.vm, gpa);
        }
        let hpa = self.host.tables.frame(found.leaf).plus(gpa.page_offset(found.page_shift));
        HostTranslation { hpa, shift: found.page_shift, references, cycles, faulted: found.faulted }
    }
}
