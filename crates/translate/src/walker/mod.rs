//! The page walker: what happens on a TLB miss, in each translation mode.
//!
//! - native: one walk of the address space's table.
//! - nested: a two-dimensional walk. Every guest table entry sits at a
//!   guest-physical address that must itself be translated through the host
//!   table (or found in the nested TLB) before it can be read, and so must
//!   the final guest-physical address: (g+1)(h+1)-1 references with no
//!   caches. The translation is cached at the smaller of the guest and host
//!   page sizes.
//! - shadow: the hardware walks the hypervisor's shadow table (guest-virtual
//!   to host-physical) at native cost. A shadow entry that is missing is
//!   filled by the hypervisor behind a VM exit: a guest page-table update
//!   when the guest itself had to fault the page in, a hidden fault when the
//!   guest had it mapped (its page larger than the shadow's).
//!
//! The modes are one closed enum matched once per walk.

use serde::Serialize;

use crate::addr::{Address, Gpa, Hpa, Va};
use crate::config::{ExitConfig, TableShape};
use crate::frames::FrameAllocator;
use crate::histogram::Distribution;
use crate::machine::{Machine, Memory, Virtualization};
use crate::pagetable::{EntryAddrs, LevelMemory, PagePolicy, PageTables, WalkResult, MAX_LEVELS};
use crate::pwc::{LineCounters, PageWalkCache, PwcCounters, WalkMemory};
use crate::rng::SplitMix64;
use crate::tlb::{Tlb, TlbCounters};

mod native;
mod nested;
mod paging;
mod shadow;
mod sharing;

use crate::residency::PageKey;
pub use paging::{Pager, PagingCounters, VmPagingCounters};
pub use sharing::SharingCounters;

use nested::Nested;
use shadow::Shadow;

/// Entry addresses of a walk that did not record them (nothing reads
/// them: see `Walker::reads_entry_addresses`).
pub(crate) const UNRECORDED: EntryAddrs<Hpa> = [Hpa(0); MAX_LEVELS];

/// Counters of every walk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WalkCounters {
    pub walks: u64,
    /// Walks by the page size (index into the translation sizes) they found.
    pub walks_by_size: [u64; MAX_LEVELS],
    /// Walks that found nothing mapped (minor faults of the table walked,
    /// or in shadow mode of the guest).
    pub faulting_walks: u64,
    /// Memory references to page-table entries.
    pub references: u64,
    /// References per level of the table walked (the guest's when nested),
    /// root first.
    pub references_by_level: [u64; MAX_LEVELS],
    /// Cycles of walks: page-walk-cache probes plus references.
    pub cycles: u64,
    /// Walks that set a page's accessed bit (its first walk).
    pub accessed_bits_set: u64,
    /// Walks that set a page's dirty bit (a store's first walk to it).
    pub dirty_bits_set: u64,
    pub line_cache: LineCounters,
}

/// The host dimension of nested walks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NestedCounters {
    /// References to guest table entries (each read after its address was
    /// translated through the host).
    pub guest_references: u64,
    /// References to host table entries.
    pub host_references: u64,
    /// Host references per host table level, root first.
    pub host_references_by_level: [u64; MAX_LEVELS],
    /// Guest-physical addresses translated through the host: one per guest
    /// entry read and one for the final address of each walk.
    pub host_translations: u64,
    /// Host translations that walked the host table (missed the nested TLB,
    /// or there is none).
    pub host_walks: u64,
}

/// VM exits by reason, and their cycles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExitCounters {
    /// Shadow: trapped guest page-table writes (guest demand-paging faults).
    pub page_table_update: u64,
    /// Shadow: trapped guest CR3 writes (guest context switches).
    pub cr3_write: u64,
    /// Shadow: hidden faults (shadow entries the guest had mapped).
    pub shadow_fill: u64,
    /// Nested: EPT/NPT violations (guest-physical pages mapped on first touch).
    pub host_page_fault: u64,
    /// Nested, zero-page sharing: writes to a page sharing the zero frame
    /// (copy-on-write faults).
    pub cow_fault: u64,
    /// Timer exits.
    pub timer: u64,
    /// Shadow: trapped guest page-table writes of the guest's page
    /// replacement (an eviction, or the clock hand clearing an accessed
    /// bit), after which the hypervisor drops the shadow entries.
    pub guest_paging: u64,
    /// Cycles of all exits: round trips plus the hypervisor's work.
    pub cycles: u64,
}

impl ExitCounters {
    pub fn total(&self) -> u64 {
        self.page_table_update
            + self.cr3_write
            + self.shadow_fill
            + self.host_page_fault
            + self.cow_fault
            + self.timer
            + self.guest_paging
    }
}

/// Why a VM exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    PageTableUpdate,
    Cr3Write,
    ShadowFill,
    HostPageFault,
    CopyOnWrite,
    Timer,
    GuestPaging,
}

/// One translation to walk for.
#[derive(Clone, Copy, Debug)]
pub struct WalkRequest {
    /// The address space, numbered across the run.
    pub space: usize,
    /// Its VM, numbered in order of appearance.
    pub vm: usize,
    /// The address space numbered within its VM.
    pub local: usize,
    /// The tag its TLB and page-walk-cache entries carry.
    pub tag: u32,
    /// The tag of entries that belong to the VM rather than an address
    /// space (the nested TLB, the host table's split caches).
    pub vm_tag: u32,
    /// The tag of the physical address space the walked table lives in, for
    /// caches keyed by physical address: the VM's when its guest-physical
    /// memory is walked (nested), else 0 (host-physical memory is one).
    pub physical_tag: u32,
    pub va: Va,
    pub write: bool,
    /// An instruction fetch's (a page first touched by one holds code).
    pub fetch: bool,
}

/// What one walk found and cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOutcome {
    pub page_shift: u32,
    /// The dirty bit the translation is cached with.
    pub dirty: bool,
    pub references: u32,
    pub cycles: u32,
    /// A THP promotion made the cached translations of a region stale
    /// (which: `Walker::take_promotion`). Kept out of the outcome so that it
    /// stays small enough to be returned in registers: built on the stack
    /// and copied out, it stalled every walk on store forwarding.
    pub promoted: bool,
    /// Paging under a resident limit left pages whose translations must
    /// be invalidated (`Walker::take_invalidations`).
    pub paging: bool,
}

/// An OS's tables and the physical memory they map to: the native OS's
/// (`Va` to `Hpa`), a guest's (`Va` to `Gpa`), or nested mode's host
/// (`Gpa` to `Hpa`).
#[derive(Debug, Clone)]
pub(super) struct Tables<In: Address, Out: Address> {
    pub tables: PageTables<In, Out>,
    pub frames: FrameAllocator<Out>,
    /// The resident limit on the pages they map, if any.
    pub pager: Option<Box<Pager>>,
}

impl<In: Address, Out: Address> Tables<In, Out> {
    fn new(shape: &TableShape, policy: PagePolicy, memory: Memory, seed: u64) -> Tables<In, Out> {
        let mut tables = PageTables::new(shape.clone(), policy);
        if let Some(large) = memory.large {
            let blocks = crate::huge::LargeBlocks::new(
                shape.offset_bits,
                large.block_shift,
                large.bytes,
                large.pool,
                large.fragmentation,
            );
            tables.limit_large_pages(blocks);
        }
        Tables {
            tables,
            frames: FrameAllocator::new(shape, memory.bytes, memory.allocator, seed),
            pager: memory.paging.map(|mut paging| {
                // The pool is reserved out of the limit.
                if let Some(large) = memory.large {
                    paging.resident -= large.pool << large.block_shift;
                }
                Box::new(Pager::new(paging, shape.offset_bits, seed))
            }),
        }
    }
}

/// A VM's own tables and guest-physical memory.
pub(super) type Guest = Tables<Va, Gpa>;

/// What each VM's guest tables and memory are made from (the machine's
/// table, page policy and memory; the seed, varied per VM by `vm_seed`).
#[derive(Debug, Clone)]
struct GuestTemplate {
    table: TableShape,
    pages: PagePolicy,
    memory: Memory,
    seed: u64,
}

#[derive(Debug, Clone)]
/// Each mode's state, boxed: the modes differ a lot in size, and the box
/// is reached once per walk.
enum Mmu {
    Native(Box<Tables<Va, Hpa>>),
    Nested(Box<Nested>),
    Shadow(Box<Shadow>),
}

/// What a mode's walk borrows of the walker: the first table's page-walk
/// cache, the walk memory, the counters, and the first table's geometry.
pub(super) struct Shared<'a> {
    pub pwc: &'a mut PageWalkCache,
    pub memory: &'a mut WalkMemory,
    pub counters: &'a mut WalkCounters,
    pub shifts: &'a [u32],
    pub entry_bytes: u32,
    /// Pages whose translations paging left to invalidate.
    pub invalidate: &'a mut Vec<PageKey>,
}

/// Everything a walk needs, whatever the mode.
#[derive(Debug, Clone)]
pub struct Walker {
    mmu: Mmu,
    /// The page-walk cache of the table the hardware walks first (native,
    /// the guest's when nested, the shadow's).
    pwc: PageWalkCache,
    memory: WalkMemory,
    /// Whether costing a walk of the first table reads its entries'
    /// addresses (a unified page-walk cache, a line cache): else native
    /// walks skip computing them.
    reads_entry_addresses: bool,
    /// Leaf shifts of the first table's levels, and its entry size.
    shifts: Vec<u32>,
    entry_bytes: u32,
    /// Page sizes translations can have (index of per-size counters).
    translation_sizes: crate::size::PageSizes,
    exit_costs: ExitConfig,
    /// What each VM's guest tables and memory are made from.
    guest_template: GuestTemplate,
    pub counters: WalkCounters,
    pub exits: ExitCounters,
    pub reference_histogram: Distribution,
    pub cycle_histogram: Distribution,
    /// Pages whose cached translations paging left to invalidate (spaces
    /// numbered across the run), for the simulator to apply.
    invalidate: Vec<PageKey>,
    /// The region (base, page shift) the last walk's THP promotion made
    /// stale, until taken.
    promotion: Option<(u64, u32)>,
    /// Virtualized: per VM, the run's number of each of its address spaces
    /// (guest tables number them within the VM).
    run_spaces: Vec<Vec<usize>>,
}

/// Seed stream of VM `vm`'s guest frames (VM 0 of a virtualized run, and a
/// native run, use the config's seed as is).
fn vm_seed(seed: u64, vm: usize) -> u64 {
    if vm == 0 {
        seed
    } else {
        SplitMix64::new(seed, 0x766d_0000 + vm as u64).next_u64()
    }
}

impl Walker {
    pub fn new(machine: &Machine) -> Walker {
        let shape = &machine.table;
        let seed = machine.seed;
        let guest_template =
            GuestTemplate { table: shape.clone(), pages: machine.pages.clone(), memory: machine.memory, seed };
        // The host's memory draws from its own seed stream.
        let host_seed = seed ^ 0x686f_7374; // "host"
        let shifts: Vec<u32> = (0..shape.index_bits.len()).map(|level| shape.leaf_shift(level)).collect();
        let mmu = match &machine.virtualization {
            Virtualization::Native => {
                Mmu::Native(Box::new(Tables::new(shape, machine.pages.clone(), machine.memory, seed)))
            }
            Virtualization::Nested { host, tlb, host_pwc } => Mmu::Nested(Box::new(Nested {
                guests: Vec::new(),
                host: {
                    let mut tables = Tables::new(&host.table, host.pages.clone(), host.memory, host_seed);
                    if let Some(pager) = &mut tables.pager {
                        // Host frames back the host's tables too.
                        pager.pin_tables();
                        pager.count_by_space();
                    }
                    tables
                },
                host_pwc: PageWalkCache::new(host_pwc, host_seed),
                host_shifts: (0..host.table.index_bits.len()).map(|l| host.table.leaf_shift(l)).collect(),
                host_entry_bytes: host.table.entry_bytes,
                tlb_latency: tlb.as_ref().map_or(0, |t| t.latency),
                tlb: tlb.as_ref().map(|t| Tlb::nested(t, &host.table, seed)),
                counters: NestedCounters::default(),
                host_victims: Vec::new(),
                guest_swap_outs: Vec::new(),
                vm_tags: machine.context.vm_tags,
                host_lru: host.memory.paging.is_some_and(|p| p.replacement == crate::config::PageReplacement::Lru),
                sharing: host.share_zero_pages.then(|| Box::new(sharing::ZeroSharing::new(host.table.offset_bits))),
            })),
            Virtualization::Shadow { host } => Mmu::Shadow(Box::new(Shadow {
                guests: Vec::new(),
                host: Tables {
                    // The hypervisor's map of guest memory.
                    tables: PageTables::new(host.table.clone(), host.pages.clone()),
                    // Shadow tables are allocated from host memory too.
                    frames: FrameAllocator::new_for(
                        &[&host.table, shape],
                        host.memory.bytes,
                        host.memory.allocator,
                        host_seed,
                    ),
                    pager: host.memory.paging.map(|paging| {
                        let mut pager = Pager::new(paging, host.table.offset_bits, host_seed);
                        pager.pin_tables();
                        pager.count_by_space();
                        // Clearing a host accessed bit drops the page's
                        // shadow entries, so that its next use is seen.
                        pager.invalidate_on_clear();
                        Box::new(pager)
                    }),
                },
                // The shadow table has the hardware's format, the guest's;
                // the hypervisor chooses each entry's size and frame.
                shadow: PageTables::new(shape.clone(), PagePolicy::Fixed(shape.offset_bits)),
                guest_dirty_bits: machine.memory.paging.is_some(),
                reverse_map: rustc_hash::FxHashMap::default(),
                host_victims: Vec::new(),
                guest_swap_outs: Vec::new(),
            })),
        };
        let pwc = PageWalkCache::new(&machine.pwc, seed);
        let memory = WalkMemory::new(machine.walk, seed);
        Walker {
            mmu,
            reads_entry_addresses: pwc.is_unified() || memory.reads_addresses(),
            pwc,
            memory,
            entry_bytes: shape.entry_bytes,
            shifts,
            translation_sizes: crate::size::PageSizes::new(machine.translation_shifts.clone()),
            exit_costs: machine.exits.clone(),
            guest_template,
            counters: WalkCounters::default(),
            exits: ExitCounters::default(),
            reference_histogram: Distribution::default(),
            cycle_histogram: Distribution::default(),
            invalidate: Vec::new(),
            promotion: None,
            run_spaces: Vec::new(),
        }
    }

    /// Counts an exit and its cycles; returns the cycles.
    pub fn exit(&mut self, reason: ExitReason) -> u64 {
        let costs = &self.exit_costs;
        let (counter, work) = match reason {
            ExitReason::PageTableUpdate => (&mut self.exits.page_table_update, costs.page_table_update),
            ExitReason::Cr3Write => (&mut self.exits.cr3_write, costs.cr3_write),
            ExitReason::ShadowFill => (&mut self.exits.shadow_fill, costs.shadow_fill),
            ExitReason::HostPageFault => (&mut self.exits.host_page_fault, costs.host_page_fault),
            // An EPT violation too, whose handler fills a fresh page.
            ExitReason::CopyOnWrite => (&mut self.exits.cow_fault, costs.host_page_fault),
            ExitReason::Timer => (&mut self.exits.timer, 0),
            ExitReason::GuestPaging => (&mut self.exits.guest_paging, costs.page_table_update),
        };
        *counter += 1;
        let cycles = u64::from(costs.round_trip) + u64::from(work);
        self.exits.cycles += cycles;
        cycles
    }

    /// Creates VMs' guest tables up to `vm`'s. Under shadow paging the
    /// guest's table is not the one the hardware walks: clearing an
    /// accessed bit there is a trapped write after which the hypervisor
    /// drops the page's shadow entries (so the next reference walks, and
    /// the bit is set again), with or without `clock_clear_flushes`.
    fn guest(template: &GuestTemplate, guests: &mut Vec<Guest>, vm: usize, shadow: bool) {
        while guests.len() <= vm {
            let GuestTemplate { table, pages, memory, seed } = template;
            let vm = guests.len();
            let mut guest = Tables::new(table, pages.clone(), *memory, vm_seed(*seed, vm));
            if let (Some(pager), true) = (&mut guest.pager, shadow) {
                pager.invalidate_on_clear();
            }
            guests.push(guest);
        }
    }

    /// Walks for `request` (faulting in what is missing).
    #[inline]
    pub fn walk(&mut self, request: &WalkRequest) -> WalkOutcome {
        if let Mmu::Native(native) = &mut self.mmu {
            if self.reads_entry_addresses {
                let mut addrs = UNRECORDED;
                let found = native.tables.walk_addressed(
                    request.space,
                    request.va,
                    request.write,
                    &mut native.frames,
                    &mut addrs,
                );
                return self.finish_native_walk(request, &found, &addrs);
            }
            let found = native.tables.walk(request.space, request.va, request.write, &mut native.frames);
            return self.finish_native_walk(request, &found, &UNRECORDED);
        }
        self.walk_virtualized(request)
    }

    /// A native walk that found `found`: paged in under a resident limit
    /// if it faulted, then costed and counted.
    #[inline(always)]
    fn finish_native_walk(
        &mut self,
        request: &WalkRequest,
        found: &WalkResult<Hpa>,
        addrs: &EntryAddrs<Hpa>,
    ) -> WalkOutcome {
        let paged = found.faulted && self.page_in_native(request, found);
        WalkOutcome { paging: paged, ..self.cost_native_walk(request, found, addrs) }
    }

    /// After a native walk that faulted: the pager's work under a resident
    /// limit; returns whether translations must be invalidated.
    #[inline(never)]
    fn page_in_native(&mut self, request: &WalkRequest, found: &WalkResult<Hpa>) -> bool {
        let Mmu::Native(native) = &mut self.mmu else { unreachable!("a native walk") };
        native.pager.is_some() && {
            native.page_in(request.space, request.va, found, &mut self.invalidate);
            !self.invalidate.is_empty()
        }
    }

    /// Whether references (not only faults) matter to paging: LRU under a
    /// resident limit, which `touch` must then be told of.
    pub fn tracks_every_reference(&self) -> bool {
        self.guest_template.memory.paging.is_some_and(|p| p.replacement == crate::config::PageReplacement::Lru)
            || self.host_lru()
    }

    /// Whether a host limit's policy is LRU (stamped at every reference).
    fn host_lru(&self) -> bool {
        match &self.mmu {
            Mmu::Native(_) => false,
            Mmu::Nested(nested) => nested.host_lru,
            Mmu::Shadow(shadow) => shadow.host.pager.as_ref().is_some_and(|pager| pager.tracks_every_reference()),
        }
    }

    /// The last reference to `va`, in the address space `space` (numbered
    /// across the run), `local` in VM `vm`, was at time `stamp`; its page is
    /// mapped (LRU's recency).
    #[inline]
    pub fn touch(&mut self, (space, vm, local): (usize, usize, usize), va: Va, stamp: u64) {
        match &mut self.mmu {
            Mmu::Native(native) => native.touch(space, va, stamp),
            // A VM's tables exist once it has walked, which its first
            // reference did (a new VM's translations are never cached).
            Mmu::Nested(nested) => {
                let guest = &mut nested.guests[vm];
                guest.touch(local, va, stamp);
                if nested.host_lru {
                    // The host's LRU sees the guest-physical page: the
                    // guest's table says which (the TLB hit does not).
                    if let Some((gpa, _)) = guest.tables.translate(local, va) {
                        nested.host.touch(vm, gpa, stamp);
                    }
                }
            }
            Mmu::Shadow(shadow) => {
                let guest = &mut shadow.guests[vm];
                guest.touch(local, va, stamp);
                if shadow.host.pager.as_ref().is_some_and(|pager| pager.tracks_every_reference()) {
                    if let Some((gpa, _)) = guest.tables.translate(local, va) {
                        shadow.host.touch(vm, gpa, stamp);
                    }
                }
            }
        }
    }

    /// The region a walk's THP promotion made stale (after an outcome
    /// saying `promoted`), once.
    pub fn take_promotion(&mut self) -> Option<(u64, u32)> {
        self.promotion.take()
    }

    /// Pages whose cached translations paging requires invalidated (spaces
    /// numbered across the run), emptied into `into`.
    pub fn take_invalidations(&mut self, into: &mut Vec<PageKey>) {
        into.append(&mut self.invalidate);
    }

    /// Guest-physical pages a host limit evicted (or whose host accessed
    /// bits the host's clock cleared with invalidation), by VM (`space`),
    /// emptied into `into`.
    pub fn take_host_invalidations(&mut self, into: &mut Vec<PageKey>) {
        match &mut self.mmu {
            Mmu::Native(_) => {}
            Mmu::Nested(nested) => into.append(&mut nested.host_victims),
            Mmu::Shadow(shadow) => into.append(&mut shadow.host_victims),
        }
    }

    /// VM `vm` (numbered in order of appearance) has its balloon driver
    /// hold `pages` pages from now on (nested, with a guest limit); returns
    /// whether translations must be invalidated (`take_invalidations`,
    /// `take_host_invalidations`).
    /// `running`: the VM running (in order of appearance) and its VM tag.
    pub fn balloon(&mut self, vm: usize, pages: u64, (running_vm, vm_tag): (usize, u32)) -> bool {
        let Mmu::Nested(nested) = &mut self.mmu else { return false };
        Walker::guest(&self.guest_template, &mut nested.guests, vm, false);
        let pending = self.invalidate.len();
        nested.balloon(vm, pages, &mut self.invalidate, nested::Running { vm: running_vm, vm_tag });
        // The guest numbers its address spaces within the VM; each evicted
        // page's was numbered for the run when it walked.
        if let Some(spaces) = self.run_spaces.get(vm) {
            for page in &mut self.invalidate[pending..] {
                page.space = spaces[page.space];
            }
        }
        self.invalidate.len() > pending || !nested.host_victims.is_empty()
    }

    /// Whether paging left translations to invalidate (`take_invalidations`,
    /// `take_host_invalidations`): after a dirty-bit assist, whose
    /// copy-on-write may have made a host limit evict.
    pub fn invalidations_pending(&self) -> bool {
        !self.invalidate.is_empty()
            || match &self.mmu {
                Mmu::Native(_) => false,
                Mmu::Nested(nested) => !nested.host_victims.is_empty(),
                Mmu::Shadow(shadow) => !shadow.host_victims.is_empty(),
            }
    }

    /// What zero-page sharing did (nested, `host.share_zero_pages`), in
    /// total and by VM (numbered in order of appearance).
    pub fn sharing(&self) -> Option<(SharingCounters, Vec<SharingCounters>)> {
        match &self.mmu {
            Mmu::Nested(nested) => nested.sharing.as_deref().map(sharing::ZeroSharing::counters),
            _ => None,
        }
    }

    /// Each VM's guest paging, by VM in order of appearance (virtualized).
    pub fn guest_paging_by_vm(&self) -> Vec<PagingCounters> {
        self.guests().iter().map(|g| g.pager.as_ref().map(|p| p.counters()).unwrap_or_default()).collect()
    }

    /// What paging under a host limit did (nested), in total and by VM
    /// (numbered in order of appearance); `None` without one.
    pub fn host_paging(&self) -> Option<(PagingCounters, Vec<VmPagingCounters>)> {
        let pager = match &self.mmu {
            Mmu::Native(_) => None,
            Mmu::Nested(nested) => nested.host.pager.as_ref(),
            Mmu::Shadow(shadow) => shadow.host.pager.as_ref(),
        };
        pager.map(|pager| (pager.counters(), pager.by_space().unwrap_or_default().to_vec()))
    }

    /// Records the run's number of `request`'s address space, and turns the
    /// spaces of the invalidations a guest's paging left from `from` on into
    /// the run's numbers.
    fn number_spaces(&mut self, request: &WalkRequest, from: usize) {
        if self.run_spaces.len() <= request.vm {
            self.run_spaces.resize(request.vm + 1, Vec::new());
        }
        let spaces = &mut self.run_spaces[request.vm];
        if spaces.len() <= request.local {
            spaces.resize(request.local + 1, usize::MAX);
        }
        spaces[request.local] = request.space;
        for page in &mut self.invalidate[from..] {
            page.space = spaces[page.space];
        }
    }

    /// `walk` in the nested and shadow modes (out of line: the native walk
    /// is the hot one).
    #[inline(never)]
    fn walk_virtualized(&mut self, request: &WalkRequest) -> WalkOutcome {
        let mut host_faults = 0u64;
        let mut cow_faults = 0u64;
        let host_paged;
        let mut exit = None;
        let pending = self.invalidate.len();
        let outcome = match &mut self.mmu {
            Mmu::Native(_) => unreachable!("native walks are `walk`'s"),
            Mmu::Nested(nested) => {
                Walker::guest(&self.guest_template, &mut nested.guests, request.vm, false);
                let mut shared = Shared {
                    pwc: &mut self.pwc,
                    memory: &mut self.memory,
                    counters: &mut self.counters,
                    shifts: &self.shifts,
                    entry_bytes: self.entry_bytes,
                    invalidate: &mut self.invalidate,
                };
                let (outcome, faults) = nested.walk(request, &mut shared);
                host_faults = faults;
                cow_faults = nested.sharing.as_deref_mut().map_or(0, |s| s.take_exits());
                host_paged = !nested.host_victims.is_empty();
                outcome
            }
            Mmu::Shadow(shadow) => {
                Walker::guest(&self.guest_template, &mut shadow.guests, request.vm, true);
                exit = shadow.fill_if_missing(request, &mut self.counters, &mut self.invalidate);
                host_paged = !shadow.host_victims.is_empty();
                let mut addrs = UNRECORDED;
                let found = shadow.shadow.walk_addressed(
                    request.space,
                    request.va,
                    request.write,
                    &mut shadow.host.frames,
                    &mut addrs,
                );
                if found.set_dirty && shadow.guest_dirty_bits {
                    // As for an assist: the guest's entry becomes dirty too.
                    shadow.guests[request.vm].tables.mark_dirty(request.local, request.va);
                }
                let (references, cycles) = self.cost_levels(request, &found, &addrs);
                WalkOutcome {
                    page_shift: found.page_shift,
                    dirty: found.dirty,
                    references,
                    cycles,
                    promoted: false,
                    paging: false,
                }
            }
        };
        let paged = self.invalidate.len() > pending;
        if self.guest_template.memory.paging.is_some() {
            // Victims may be any address space's: know every one's number.
            self.number_spaces(request, pending);
        }
        if paged {
            if let Mmu::Shadow(shadow) = &mut self.mmu {
                // Each is a trapped write to the guest's table; the
                // hypervisor drops the shadow entries of the page.
                for &page in &self.invalidate[pending..] {
                    shadow.shadow.unmap_within(page);
                }
                for _ in pending..self.invalidate.len() {
                    self.exit(ExitReason::GuestPaging);
                }
            }
        }
        let outcome = WalkOutcome { paging: paged || host_paged, ..outcome };
        for _ in 0..host_faults {
            self.exit(ExitReason::HostPageFault);
        }
        for _ in 0..cow_faults {
            self.exit(ExitReason::CopyOnWrite);
        }
        if let Some(reason) = exit {
            self.exit(reason);
        }
        self.count_walk(outcome)
    }

    /// Counts the accessed and dirty bits the walk that found `found` set,
    /// and returns the references and cycles reading its levels costs
    /// (page-walk caches, then memory): native and shadow walks alike.
    #[inline(always)]
    fn cost_levels(&mut self, request: &WalkRequest, found: &WalkResult<Hpa>, addrs: &EntryAddrs<Hpa>) -> (u32, u32) {
        self.counters.accessed_bits_set += u64::from(found.set_accessed);
        self.counters.dirty_bits_set += u64::from(found.set_dirty);
        if let (PageWalkCache::None, &WalkMemory::Fixed(latency)) = (&self.pwc, &self.memory) {
            // Nothing to skip, every level one reference of the same cost:
            // what `walk_levels` would count, without its per-level probes.
            for count in &mut self.counters.references_by_level[..found.levels] {
                *count += 1;
            }
            let references = found.levels as u32;
            return (references, references * latency);
        }
        if let WalkMemory::Fixed(latency) = self.memory {
            if !self.pwc.is_unified() {
                return self.cost_split_levels(request, found, latency);
            }
        }
        self.cost_cached_levels(request, found, addrs)
    }

    /// `cost_levels` with split page-walk caches and every reference of
    /// the same cost: the levels below the deepest cache hit are read,
    /// which is what `walk_levels` counts, without a call per level.
    #[inline(never)]
    fn cost_split_levels(&mut self, request: &WalkRequest, found: &WalkResult<Hpa>, latency: u32) -> (u32, u32) {
        let leaf = found.levels - 1;
        let (start, probe) = self.pwc.split_start(request.tag, request.va.0, &self.shifts, leaf);
        for count in &mut self.counters.references_by_level[start..found.levels] {
            *count += 1;
        }
        self.pwc.split_fill(request.tag, request.va.0, &self.shifts, start, leaf);
        let references = (found.levels - start) as u32;
        (references, probe + references * latency)
    }

    /// `cost_levels` with page-walk caches or a line cache: each level
    /// probed, each reference priced.
    #[inline(never)]
    fn cost_cached_levels(
        &mut self,
        request: &WalkRequest,
        found: &WalkResult<Hpa>,
        addrs: &EntryAddrs<Hpa>,
    ) -> (u32, u32) {
        let memory = &mut self.memory;
        let counters = &mut self.counters;
        walk_levels(
            &mut self.pwc,
            request,
            request.va,
            &self.shifts,
            self.entry_bytes,
            &addrs[..found.levels],
            |level, addr| {
                counters.references_by_level[level] += 1;
                memory.reference(addr, &mut counters.line_cache)
            },
        )
    }

    /// Counts a finished walk.
    fn count_walk(&mut self, outcome: WalkOutcome) -> WalkOutcome {
        let size_index = self.translation_sizes.index(outcome.page_shift);
        let c = &mut self.counters;
        c.walks += 1;
        c.walks_by_size[size_index] += 1;
        c.references += u64::from(outcome.references);
        c.cycles += u64::from(outcome.cycles);
        self.reference_histogram.record(u64::from(outcome.references));
        self.cycle_histogram.record(u64::from(outcome.cycles));
        outcome
    }

    /// Sets the dirty bit of the page a store found cached clean; returns
    /// whether it was clear.
    pub fn mark_dirty(&mut self, request: &WalkRequest) -> bool {
        match &mut self.mmu {
            Mmu::Native(native) => native.tables.mark_dirty(request.space, request.va),
            Mmu::Nested(nested) => {
                let Some(guest) = nested.guests.get_mut(request.vm) else { return false };
                let host_sees = nested.host.pager.is_some() || nested.sharing.is_some();
                if let (true, Some((gpa, _))) = (host_sees, guest.tables.translate(request.local, request.va)) {
                    // The store reaches the host's page too: a page sharing
                    // the zero frame gets its own (an exit), and a host
                    // limit swaps a page out only if dirty.
                    nested.before_host_write(
                        request.vm,
                        gpa,
                        nested::Running { vm: request.vm, vm_tag: request.vm_tag },
                    );
                    if nested.host.pager.is_some() {
                        nested.host.tables.mark_dirty(request.vm, gpa);
                    }
                }
                let set = nested.guests[request.vm].tables.mark_dirty(request.local, request.va);
                let cow_faults = nested.sharing.as_deref_mut().map_or(0, |s| s.take_exits());
                for _ in 0..cow_faults {
                    self.exit(ExitReason::CopyOnWrite);
                }
                set
            }
            Mmu::Shadow(shadow) => {
                // The hypervisor passes the write on to the guest's entry.
                // Only the guest's paging reads that bit: without a resident
                // limit the work is skipped.
                if let (Some(guest), true) = (shadow.guests.get_mut(request.vm), shadow.guest_dirty_bits) {
                    guest.tables.mark_dirty(request.local, request.va);
                }
                // And to its own map's, which a host limit swaps out only
                // if dirty.
                if let (Some(guest), true) = (shadow.guests.get(request.vm), shadow.host.pager.is_some()) {
                    if let Some((gpa, _)) = guest.tables.translate(request.local, request.va) {
                        shadow.host.tables.mark_dirty(request.vm, gpa);
                    }
                }
                shadow.shadow.mark_dirty(request.space, request.va)
            }
        }
    }

    /// Drops the page-walk-cache entries tagged `tag` (an address-space id
    /// being recycled); returns how many went.
    pub fn flush_tag(&mut self, tag: u32) -> u64 {
        self.pwc.flush_tagged(tag)
    }

    /// Empties every page-walk cache and the nested TLB; returns the entries
    /// lost.
    pub fn flush_all(&mut self) -> u64 {
        let mut lost = self.pwc.flush_all();
        if let Mmu::Nested(nested) = &mut self.mmu {
            lost += nested.host_pwc.flush_all();
            if let Some(tlb) = &mut nested.tlb {
                lost += tlb.invalidate_where(|_, _, _| true);
            }
        }
        lost
    }

    /// Drops the page-walk-cache entries of address space `tag` after a THP
    /// promotion (as INVLPG would).
    pub fn flush_space(&mut self, tag: u32) {
        self.pwc.flush_space(tag);
    }

    pub fn pwc_counters(&self) -> Option<&PwcCounters> {
        self.pwc.counters()
    }

    /// Minor faults: first touches of pages of the table the OS manages (the
    /// guest's when virtualized).
    pub fn faults(&self) -> u64 {
        match (&self.mmu, self.guests()) {
            (Mmu::Native(native), _) => native.tables.faults(),
            (_, guests) => guests.iter().map(|g| g.tables.faults()).sum(),
        }
    }

    /// Major faults: evicted pages brought back (the guest's when
    /// virtualized).
    pub fn major_faults(&self) -> u64 {
        match (&self.mmu, self.guests()) {
            (Mmu::Native(native), _) => native.tables.major_faults(),
            (_, guests) => guests.iter().map(|g| g.tables.major_faults()).sum(),
        }
    }

    /// What paging under the resident limit did (every guest's together
    /// when virtualized); `None` without a limit.
    pub fn paging(&self) -> Option<PagingCounters> {
        self.guest_template.memory.paging?;
        let mut total = PagingCounters::default();
        match &self.mmu {
            Mmu::Native(native) => total.add(&native.pager.as_ref()?.counters()),
            _ => {
                for pager in self.guests().iter().filter_map(|g| g.pager.as_ref()) {
                    total.add(&pager.counters());
                }
            }
        }
        Some(total)
    }

    /// Large pages granted and denied (every guest's together when
    /// virtualized), when fragmentation, a pool or a limit bound them.
    pub fn huge_pages(&self) -> Option<crate::huge::HugeCounters> {
        self.guest_template.memory.large?;
        let counters = match &self.mmu {
            Mmu::Native(native) => native.tables.huge_pages().into_iter().collect(),
            _ => self.guests().iter().filter_map(|g| g.tables.huge_pages()).collect::<Vec<_>>(),
        };
        Some(counters.into_iter().fold(crate::huge::HugeCounters::default(), |total, c| crate::huge::HugeCounters {
            granted: total.granted + c.granted,
            from_pool: total.from_pool + c.from_pool,
            denied: total.denied + c.denied,
        }))
    }

    /// Each VM's tables and memory (none in native mode).
    fn guests(&self) -> &[Guest] {
        match &self.mmu {
            Mmu::Native(_) => &[],
            Mmu::Nested(nested) => &nested.guests,
            Mmu::Shadow(shadow) => &shadow.guests,
        }
    }

    pub fn promotions(&self) -> u64 {
        match &self.mmu {
            Mmu::Native(native) => native.tables.promotions(),
            _ => 0,
        }
    }

    /// Live table nodes per level of the OS's tables (all guests together
    /// when virtualized).
    pub fn page_tables(&self) -> Vec<LevelMemory> {
        match &self.mmu {
            Mmu::Native(native) => native.tables.memory(),
            Mmu::Nested(_) | Mmu::Shadow(_) => {
                let mut total = self.guest_template_memory();
                for guest in self.guests() {
                    for (sum, level) in total.iter_mut().zip(guest.tables.memory()) {
                        sum.nodes += level.nodes;
                    }
                }
                total
            }
        }
    }

    fn guest_template_memory(&self) -> Vec<LevelMemory> {
        PageTables::<Va, Gpa>::new(self.guest_template.table.clone(), self.guest_template.pages.clone()).memory()
    }

    /// Nested: the host tables' nodes; shadow: the shadow tables'.
    pub fn other_tables(&self) -> Option<Vec<LevelMemory>> {
        match &self.mmu {
            Mmu::Native(_) => None,
            Mmu::Nested(nested) => Some(nested.host.tables.memory()),
            Mmu::Shadow(shadow) => Some(shadow.shadow.memory()),
        }
    }

    /// Physical bytes handed out: (guest or native, host).
    pub fn allocated_bytes(&self) -> (u64, u64) {
        match &self.mmu {
            Mmu::Native(native) => (native.frames.allocated_bytes(), 0),
            Mmu::Nested(nested) => {
                (nested.guests.iter().map(|g| g.frames.allocated_bytes()).sum(), nested.host.frames.allocated_bytes())
            }
            Mmu::Shadow(shadow) => {
                (shadow.guests.iter().map(|g| g.frames.allocated_bytes()).sum(), shadow.host.frames.allocated_bytes())
            }
        }
    }

    /// The nested dimension's counters, its page-walk caches' and TLB's.
    pub fn nested(&self) -> Option<(NestedCounters, Option<PwcCounters>, Option<TlbCounters>)> {
        match &self.mmu {
            Mmu::Nested(nested) => Some((
                nested.counters.clone(),
                nested.host_pwc.counters().cloned(),
                nested.tlb.as_ref().map(Tlb::counters),
            )),
            _ => None,
        }
    }

    /// Address spaces that have tables.
    pub fn address_spaces(&self) -> usize {
        match &self.mmu {
            Mmu::Native(native) => native.tables.address_spaces(),
            Mmu::Nested(_) | Mmu::Shadow(_) => self.guests().iter().map(|g| g.tables.address_spaces()).sum(),
        }
    }
}

/// Reads one table's entries for `va` (an address of the space the table
/// maps), root first to `entry_addrs`' last (the leaf; addresses of the
/// space the table lives in), skipping what the page-walk cache lets it
/// skip; `read` performs one reference and returns its cycles. Returns the
/// references and cycles.
pub(super) fn walk_levels<In: Address, Out: Address>(
    pwc: &mut PageWalkCache,
    request: &WalkRequest,
    va: In,
    shifts: &[u32],
    entry_bytes: u32,
    entry_addrs: &[Out],
    mut read: impl FnMut(usize, Out) -> u32,
) -> (u32, u32) {
    let va = va.raw();
    let leaf = entry_addrs.len() - 1;
    let mut cycles = 0;
    let mut references = 0;
    let unified = pwc.is_unified();
    let start = if unified {
        0
    } else {
        let (start, probe) = pwc.split_start(request.tag, va, shifts, leaf);
        cycles += probe;
        start
    };
    for (level, &addr) in entry_addrs.iter().enumerate().skip(start) {
        if level < leaf && unified {
            let (hit, probe) = pwc.unified_probe(addr.raw(), entry_bytes, level, request.physical_tag);
            cycles += probe;
            if hit {
                continue;
            }
        }
        references += 1;
        cycles += read(level, addr);
    }
    pwc.split_fill(request.tag, va, shifts, start, leaf);
    (references, cycles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rng::SplitMix64;

    /// `cost_split_levels` is `cost_cached_levels` without a call per level,
    /// for split page-walk caches and a fixed latency: two walkers of the
    /// Skylake preset walk the same addresses (clustered in a few 2 MiB and
    /// 1 GiB regions, so that every cache both hits and misses, in two
    /// address spaces), one costed each way; every walk's references and
    /// cycles agree, and so do the counters and the caches' counters.
    #[test]
    fn split_cache_costing_counts_what_the_per_level_costing_counts() {
        let config = Config::from_toml(include_str!("../../../../configs/skylake.toml")).unwrap();
        let machine = Machine::new(&config).unwrap();
        let (mut fast, mut general) = (Walker::new(&machine), Walker::new(&machine));
        assert!(matches!(fast.pwc, PageWalkCache::Split { .. }) && matches!(fast.memory, WalkMemory::Fixed(_)));
        let mut random = SplitMix64::new(7, 7);
        let mut skipped_levels = 0;
        for step in 0..50_000u64 {
            let region = random.below(6) << 30 | random.below(40) << 21;
            let va = Va(region | random.below(1 << 21));
            let space = random.below(2) as usize;
            let request = WalkRequest {
                space,
                vm: 0,
                local: space,
                tag: space as u32,
                vm_tag: 0,
                physical_tag: 0,
                va,
                write: random.below(2) == 0,
                fetch: false,
            };
            let mut costs = Vec::new();
            for (walker, split) in [(&mut fast, true), (&mut general, false)] {
                let Mmu::Native(native) = &mut walker.mmu else { unreachable!("a native preset") };
                let mut addrs = UNRECORDED;
                let found = native.tables.walk_addressed(space, va, request.write, &mut native.frames, &mut addrs);
                let WalkMemory::Fixed(latency) = walker.memory else { unreachable!() };
                costs.push(if split {
                    walker.cost_split_levels(&request, &found, latency)
                } else {
                    walker.cost_cached_levels(&request, &found, &addrs)
                });
                if split {
                    skipped_levels += found.levels as u64 - u64::from(costs[0].0);
                }
            }
            assert_eq!(costs[0], costs[1], "walk {step} of {va:?}");
        }
        assert_eq!(fast.counters, general.counters);
        assert_eq!(fast.pwc.counters(), general.pwc.counters());
        assert!(skipped_levels > 0, "the caches hit");
    }
}
