//! The translation pipeline: every reference of a trace through the TLB
//! hierarchy, walking the page tables on a miss.
//!
//! Rules (see ARCHITECTURE.md for why):
//! - A reference looks up every page it touches, lowest address first: one
//!   lookup, or more when it crosses a page boundary of the page size found.
//! - Fetches go down the instruction path (TLBs serving instructions, by
//!   level), loads, stores and modifies down the data path.
//! - Fill rule: a hit at some level fills every level above it on the path;
//!   a miss at every level walks the page table and fills them all. Levels
//!   are non-inclusive: evicting from one never removes another's copy.
//! - A store or modify that hits a translation cached clean (dirty bit
//!   clear) is a dirty-bit assist: the page-table entry's dirty bit is set
//!   if it was clear, and the cached copy becomes dirty.
//! - A change of (VM, context) between references is a switch: a context
//!   switch within a VM, a VM switch between VMs. What it does to cached
//!   translations is the `[context]` policy's.

use std::collections::HashMap;

use mmusim_trace::{Access, Kind};
use serde::Serialize;

use crate::config::{Config, ConfigError, Mode, SwitchPolicy};
use crate::histogram::Distribution;
use crate::pagetable::LevelMemory;
use crate::pwc::PwcCounters;
use crate::tlb::{key as key_of, Tlb, TlbCounters};
use crate::walker::{ExitCounters, ExitReason, NestedCounters, WalkCounters, WalkRequest, Walker};

/// `first_tlb` of a path with no TLB.
const NO_TLB: usize = usize::MAX;

/// A reference whose address the page table cannot translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressOutOfRange {
    /// Position of the reference in the batch given to `run`.
    pub index: usize,
    pub addr: u64,
    pub va_bits: u32,
}

impl std::fmt::Display for AddressOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "address {:#x} lies outside the {}-bit virtual address space of the configured page table",
            self.addr, self.va_bits
        )
    }
}

impl std::error::Error for AddressOutOfRange {}

/// Whole-run counters outside the TLBs and walker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunCounters {
    /// References by kind (fetch, load, store, modify).
    pub references: [u64; 4],
    /// Page lookups beyond a reference's first, by kind: the extra pages of
    /// page-crossing references.
    pub extra_page_lookups: [u64; 4],
    /// References that touched more than one page.
    pub page_crossing_references: u64,
    /// Walks by the kind of the reference that caused them.
    pub walks: [u64; 4],
    /// Estimated translation overhead: every TLB lookup costs its TLB's
    /// latency, every walk its cycles, every VM exit its cycles (filled in
    /// by `report`).
    pub translation_cycles: u64,
    /// Stores and modifies that hit a translation cached clean.
    pub dirty_assists: u64,
    /// Dirty bits such assists set in the page table.
    pub dirty_bits_set_by_assists: u64,
    /// Cached translations dropped because a THP promotion made them stale.
    pub promotion_invalidations: u64,
}

/// Switches between address spaces and what they cost the caches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContextCounters {
    /// Changes of context within a VM.
    pub context_switches: u64,
    /// Changes of VM.
    pub vm_switches: u64,
    /// Times every TLB and page-walk cache was emptied.
    pub flushes: u64,
    /// Address-space ids taken from another address space when the pool ran
    /// out (only that id's entries are flushed).
    pub id_recycles: u64,
    /// Valid TLB, nested-TLB and page-walk-cache entries lost to flushes and
    /// recycles.
    pub entries_flushed: u64,
}

/// Where each address space belongs, and its address-space id.
#[derive(Clone, Debug, Default)]
struct Contexts {
    /// (trace VM, trace context) -> address space number.
    spaces: HashMap<(u16, u16), usize>,
    /// Per address space: its VM's number and its number within the VM.
    placement: Vec<(usize, usize)>,
    /// Trace VM -> VM number, and address spaces per VM.
    vms: HashMap<u16, usize>,
    spaces_per_vm: Vec<usize>,
    /// Per VM: which address space holds each id, and when it last ran.
    pools: Vec<Vec<Option<(usize, u64)>>>,
    /// Per address space: its id in its VM's pool, if it holds one.
    ids: Vec<Option<u16>>,
    clock: u64,
}

/// The address space running now.
#[derive(Clone, Copy, Debug)]
struct Current {
    key: Option<(u16, u16)>,
    space: usize,
    vm: usize,
    local: usize,
    tag: u32,
    vm_tag: u32,
}

#[derive(Debug, Clone)]
pub struct Simulator {
    config: Config,
    tlbs: Vec<Tlb>,
    instruction_path: Vec<usize>,
    data_path: Vec<usize>,
    /// First TLB of the instruction and data paths (`NO_TLB` if none), kept
    /// inline so the hot path does not chase the path vectors.
    first_tlb: [usize; 2],
    walker: Walker,
    contexts: Contexts,
    current: Current,
    max_va: u64,
    va_bits: u32,
    /// The instruction count at which the next timer exit happens.
    next_timer: u64,
    counters: RunCounters,
    context_counters: ContextCounters,
}

impl Simulator {
    /// Builds the machine a config describes (resolving and checking it
    /// first).
    pub fn new(config: &Config) -> Result<Simulator, ConfigError> {
        let config = config.resolve()?;
        crate::pagetable::check_ranges(&config)?;
        let tlbs: Vec<Tlb> =
            config.tlb_order().into_iter().map(|name| Tlb::new(name, &config.tlb[name], &config)).collect();
        let path = |serves: fn(crate::config::Serves) -> bool| -> Vec<usize> {
            tlbs.iter().enumerate().filter(|(_, t)| serves(t.serves)).map(|(i, _)| i).collect()
        };
        let instruction_path = path(crate::config::Serves::instructions);
        let data_path = path(crate::config::Serves::data);
        let va_bits = config.table_shape().va_bits();
        let first_tlb =
            [instruction_path.first().copied().unwrap_or(NO_TLB), data_path.first().copied().unwrap_or(NO_TLB)];
        let timer = config.exits.as_ref().map_or(0, |e| e.timer_interval);
        Ok(Simulator {
            first_tlb,
            walker: Walker::new(&config),
            max_va: if va_bits >= 64 { u64::MAX } else { (1u64 << va_bits) - 1 },
            va_bits,
            tlbs,
            instruction_path,
            data_path,
            contexts: Contexts::default(),
            current: Current { key: None, space: 0, vm: 0, local: 0, tag: 0, vm_tag: 0 },
            next_timer: if timer == 0 { u64::MAX } else { timer },
            counters: RunCounters::default(),
            context_counters: ContextCounters::default(),
            config,
        })
    }

    /// The resolved config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a batch of references. An address outside the table's virtual
    /// address space stops the batch at that reference.
    pub fn run(&mut self, accesses: &[Access]) -> Result<(), AddressOutOfRange> {
        let mut at = 0;
        while at < accesses.len() {
            at += self.run_hits(&accesses[at..]);
            if let Some(access) = accesses.get(at) {
                if let Err(addr) = self.access(access) {
                    return Err(AddressOutOfRange { index: at, addr, va_bits: self.va_bits });
                }
                at += 1;
            }
        }
        Ok(())
    }

    /// Runs the longest prefix of `accesses` in which every reference is a
    /// hit, in its path's first TLB at the size that TLB guesses, on the
    /// most recently used entry of its set (a hit that changes nothing but
    /// counters: see `SetAssoc::mru`), and returns its length. It stops
    /// before anything else: any other hit or a miss, a write to a clean
    /// entry, a page-crossing reference, an address out of range, a switch
    /// of address space, a timer exit. The loop changes no state and keeps
    /// its counts in registers, adding them once at the end: what `access`
    /// would have counted one by one.
    #[inline(never)]
    fn run_hits(&mut self, accesses: &[Access]) -> usize {
        let Some((vm, context)) = self.current.key else { return 0 };
        let [fetch_tlb, data_tlb] = self.first_tlb;
        if fetch_tlb == NO_TLB || data_tlb == NO_TLB {
            return 0;
        }
        let (fetch_view, _, fetch_shift) = self.tlbs[fetch_tlb].hit_view();
        let (data_view, data_dirty, data_shift) = self.tlbs[data_tlb].hit_view();
        let tag = self.current.tag;
        let max_va = self.max_va;
        // Fetches before the one at which the next timer exit happens: that
        // one must go through `access`.
        let fetches_before = self.counters.references[Kind::Fetch as usize];
        let fetch_limit = self.next_timer.saturating_sub(1).saturating_sub(fetches_before);
        let (mut fetches, mut loads, mut stores, mut modifies) = (0u64, 0u64, 0u64, 0u64);
        // The last page of each path found a hit, in registers: within the
        // run nothing changes state, so it stays one.
        let (mut fetch_page, mut data_page, mut data_page_dirty) = (u64::MAX, u64::MAX, false);
        let mut done = 0;
        for access in accesses {
            let last = access.last_byte();
            if access.vm != vm || access.context != context || last > max_va {
                break;
            }
            if access.kind == Kind::Fetch {
                let page = access.addr >> fetch_shift;
                if last >> fetch_shift != page || fetches == fetch_limit {
                    break;
                }
                if page != fetch_page {
                    if fetch_view.hit(page, key_of(page, fetch_shift), tag).is_none() {
                        break;
                    }
                    fetch_page = page;
                }
                fetches += 1;
            } else {
                let page = access.addr >> data_shift;
                if last >> data_shift != page {
                    break;
                }
                if page != data_page {
                    let Some(slot) = data_view.hit(page, key_of(page, data_shift), tag) else { break };
                    data_page = page;
                    data_page_dirty = data_dirty[slot];
                }
                let write = access.kind.writes();
                if write && !data_page_dirty {
                    break;
                }
                loads += u64::from(access.kind == Kind::Load);
                stores += u64::from(access.kind == Kind::Store);
                modifies += u64::from(access.kind == Kind::Modify);
            }
            done += 1;
        }
        let counts = [fetches, loads, stores, modifies];
        for (kind, &n) in counts.iter().enumerate() {
            self.counters.references[kind] += n;
        }
        self.tlbs[fetch_tlb].count_guessed_hits(Kind::Fetch as usize, fetches);
        for kind in [Kind::Load, Kind::Store, Kind::Modify] {
            self.tlbs[data_tlb].count_guessed_hits(kind as usize, counts[kind as usize]);
        }
        done
    }

    #[inline]
    fn access(&mut self, access: &Access) -> Result<(), u64> {
        let last = access.last_byte();
        if last > self.max_va {
            return Err(access.addr);
        }
        let kind = access.kind as usize;
        self.counters.references[kind] += 1;
        if self.current.key != Some((access.vm, access.context)) {
            self.switch_to(access.vm, access.context);
        }
        if self.counters.references[Kind::Fetch as usize] == self.next_timer && access.kind == Kind::Fetch {
            self.timer_exit();
        }
        let write = access.kind.writes();
        let instruction = access.kind == Kind::Fetch;
        let mut va = access.addr;
        loop {
            let shift = self.translate(va, kind, write, instruction);
            let page_last = va | ((1u64 << shift) - 1);
            if last <= page_last {
                break;
            }
            if va == access.addr {
                self.counters.page_crossing_references += 1;
            }
            self.counters.extra_page_lookups[kind] += 1;
            va = page_last + 1;
        }
        Ok(())
    }

    /// The running address space changes: count the switch, apply the
    /// context policy, take an address-space id.
    #[cold]
    #[inline(never)]
    fn switch_to(&mut self, trace_vm: u16, context: u16) {
        let c = &mut self.contexts;
        let next_space = c.placement.len();
        let space = *c.spaces.entry((trace_vm, context)).or_insert(next_space);
        if space == next_space {
            let next_vm = c.spaces_per_vm.len();
            let vm = *c.vms.entry(trace_vm).or_insert(next_vm);
            if vm == next_vm {
                c.spaces_per_vm.push(0);
                c.pools.push(vec![None; self.config.context.ids as usize]);
            }
            c.placement.push((vm, c.spaces_per_vm[vm]));
            c.spaces_per_vm[vm] += 1;
            c.ids.push(None);
        }
        let (vm, local) = c.placement[space];
        let context_policy = self.config.context.clone();
        if self.current.key.is_some() {
            let vm_switch = vm != self.current.vm;
            if vm_switch {
                self.context_counters.vm_switches += 1;
            } else {
                self.context_counters.context_switches += 1;
                if self.config.mode == Mode::Shadow {
                    // The guest loads CR3, which traps to the hypervisor.
                    self.walker.exit(ExitReason::Cr3Write);
                }
            }
            let flush = match context_policy.switch {
                SwitchPolicy::Flush => true,
                SwitchPolicy::Tagged => vm_switch && !context_policy.vm_tags,
            };
            if flush {
                self.flush_all();
            }
        }
        let vm_part = if context_policy.vm_tags { vm as u32 + 1 } else { 0 };
        let tag = match context_policy.switch {
            // Everything is flushed at every switch: no tag is needed.
            SwitchPolicy::Flush => 0,
            SwitchPolicy::Tagged => (vm_part << 16) | u32::from(self.take_id(space, vm)),
        };
        self.current = Current { key: Some((trace_vm, context)), space, vm, local, tag, vm_tag: vm_part };
    }

    /// The address-space id of `space` in its VM's pool: its own if it still
    /// holds one, a free one, or the least recently run space's, whose
    /// entries are then flushed.
    fn take_id(&mut self, space: usize, vm: usize) -> u16 {
        let c = &mut self.contexts;
        c.clock += 1;
        let clock = c.clock;
        if let Some(id) = c.ids[space] {
            c.pools[vm][usize::from(id)] = Some((space, clock));
            return id;
        }
        let pool = &mut c.pools[vm];
        let id = match pool.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                let (oldest, _) = pool
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, slot)| slot.expect("the pool is full").1)
                    .expect("at least one id");
                let (owner, _) = pool[oldest].expect("full");
                c.ids[owner] = None;
                self.context_counters.id_recycles += 1;
                let vm_part = if self.config.context.vm_tags { vm as u32 + 1 } else { 0 };
                let stale = (vm_part << 16) | oldest as u32;
                let mut lost = 0;
                for tlb in &mut self.tlbs {
                    lost += tlb.invalidate_where(|tag, _, _| tag == stale);
                }
                lost += self.walker.flush_tag(stale);
                self.context_counters.entries_flushed += lost;
                oldest
            }
        };
        let c = &mut self.contexts;
        c.pools[vm][id] = Some((space, clock));
        c.ids[space] = Some(id as u16);
        id as u16
    }

    /// Empties every TLB and page-walk cache.
    fn flush_all(&mut self) {
        let mut lost = 0;
        for tlb in &mut self.tlbs {
            lost += tlb.invalidate_where(|_, _, _| true);
        }
        lost += self.walker.flush_all();
        self.context_counters.flushes += 1;
        self.context_counters.entries_flushed += lost;
    }

    /// A timer exit: the hypervisor runs, and without VM tags the TLBs do
    /// not survive it.
    #[cold]
    #[inline(never)]
    fn timer_exit(&mut self) {
        let interval = self.config.exits.as_ref().map_or(0, |e| e.timer_interval);
        self.next_timer = self.next_timer.saturating_add(interval);
        self.walker.exit(ExitReason::Timer);
        if !self.config.context.vm_tags {
            self.flush_all();
        }
    }

    /// Translates one page of the running address space; returns its page
    /// shift. The common case (a hit in the first TLB where its guess
    /// says) stays
    /// inline; everything else is out of line so the hot loop keeps its
    /// values in registers.
    #[inline(always)]
    fn translate(&mut self, va: u64, kind: usize, write: bool, instruction: bool) -> u32 {
        let first = self.first_tlb[usize::from(!instruction)];
        if let Some(tlb) = self.tlbs.get_mut(first) {
            if let Some(shift) = tlb.fast_hit(self.current.tag, va, kind, write) {
                return shift;
            }
        }
        self.translate_slow(va, kind, write, instruction)
    }

    fn request(&self, va: u64, write: bool) -> WalkRequest {
        let c = self.current;
        WalkRequest {
            space: c.space,
            vm: c.vm,
            local: c.local,
            tag: c.tag,
            vm_tag: c.vm_tag,
            physical_tag: if self.config.mode == Mode::Nested { c.vm_tag } else { 0 },
            va,
            write,
        }
    }

    #[inline(never)]
    fn translate_slow(&mut self, va: u64, kind: usize, write: bool, instruction: bool) -> u32 {
        let request = self.request(va, write);
        let path = if instruction { &self.instruction_path } else { &self.data_path };
        let tlbs = &mut self.tlbs;
        let tag = request.tag;
        for (depth, &t) in path.iter().enumerate() {
            if let Some(hit) = tlbs[t].lookup(tag, va, kind) {
                let mut dirty = hit.dirty;
                if write && !hit.dirty {
                    tlbs[t].mark_hit_dirty();
                    self.counters.dirty_assists += 1;
                    if self.walker.mark_dirty(&request) {
                        self.counters.dirty_bits_set_by_assists += 1;
                    }
                    dirty = true;
                }
                for &upper in &path[..depth] {
                    tlbs[upper].count_miss(kind, hit.page_shift);
                    tlbs[upper].fill(tag, va, hit.page_shift, dirty);
                }
                return hit.page_shift;
            }
        }
        let outcome = self.walker.walk(&request);
        self.counters.walks[kind] += 1;
        if let Some((base, shift)) = outcome.promoted {
            // The small pages of the region are gone: drop their cached
            // translations (as the OS's shootdown would) and the walk caches
            // of the space (INVLPG also empties paging-structure caches).
            let end = base + ((1u64 << shift) - 1);
            for tlb in tlbs.iter_mut() {
                self.counters.promotion_invalidations +=
                    tlb.invalidate_where(|s, first, last| s == tag && first >= base && last <= end);
            }
            self.walker.flush_space(tag);
        }
        for &level in path {
            tlbs[level].count_miss(kind, outcome.page_shift);
            tlbs[level].fill(tag, va, outcome.page_shift, outcome.dirty);
        }
        outcome.page_shift
    }

    /// Everything counted so far.
    pub fn report(&self) -> SimReport {
        let exits = self.config.mode.is_virtualized().then(|| self.walker.exits.clone());
        let tlb_cycles: u64 = self.tlbs.iter().map(|t| t.counters().total_lookups() * u64::from(t.latency)).sum();
        let exit_cycles = self.walker.exits.cycles;
        let (allocated_bytes, host_allocated_bytes) = self.walker.allocated_bytes();
        let other_tables = self.walker.other_tables();
        SimReport {
            mode: self.config.mode.name(),
            page_shifts: self.config.translation_shifts(),
            host_page_shifts: self.config.host_shape().map(|shape| shape.page_shifts),
            run: RunCounters {
                translation_cycles: tlb_cycles + self.walker.counters.cycles + exit_cycles,
                ..self.counters.clone()
            },
            context: self.context_counters.clone(),
            tlbs: self
                .tlbs
                .iter()
                .map(|tlb| TlbReport {
                    name: tlb.name.clone(),
                    level: tlb.level,
                    serves: tlb.serves,
                    counters: tlb.counters(),
                })
                .collect(),
            walks: self.walker.counters.clone(),
            pwc: self.walker.pwc_counters().cloned(),
            nested: self.walker.nested().map(|(counters, host_pwc, tlb)| NestedReport { counters, host_pwc, tlb }),
            exits,
            faults: self.walker.faults(),
            promotions: self.walker.promotions(),
            address_spaces: self.contexts.placement.len() as u64,
            vms: self.contexts.spaces_per_vm.len() as u64,
            page_tables: self.walker.page_tables(),
            host_page_tables: other_tables.clone().filter(|_| self.config.mode == Mode::Nested),
            shadow_page_tables: other_tables.filter(|_| self.config.mode == Mode::Shadow),
            allocated_bytes,
            host_allocated_bytes,
        }
    }

    /// References per walk, cycles per walk.
    pub fn histograms(&self) -> (&Distribution, &Distribution) {
        (&self.walker.reference_histogram, &self.walker.cycle_histogram)
    }
}

/// One TLB's counters, with what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlbReport {
    pub name: String,
    pub level: u32,
    pub serves: crate::config::Serves,
    #[serde(flatten)]
    pub counters: TlbCounters,
}

/// Nested mode's host dimension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NestedReport {
    pub counters: NestedCounters,
    pub host_pwc: Option<PwcCounters>,
    /// The nested TLB, by host page size.
    pub tlb: Option<TlbCounters>,
}

/// Raw integer counters of a run; rates are for the report crate to render.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimReport {
    pub mode: &'static str,
    /// The translation sizes (as shifts) that per-size counters index.
    pub page_shifts: Vec<u32>,
    /// The host table's sizes, which the nested TLB's counters index.
    pub host_page_shifts: Option<Vec<u32>>,
    pub run: RunCounters,
    pub context: ContextCounters,
    pub tlbs: Vec<TlbReport>,
    pub walks: WalkCounters,
    pub pwc: Option<PwcCounters>,
    pub nested: Option<NestedReport>,
    pub exits: Option<ExitCounters>,
    /// Minor faults (first touches of unmapped pages; the guest's when
    /// virtualized).
    pub faults: u64,
    /// THP promotions.
    pub promotions: u64,
    pub address_spaces: u64,
    pub vms: u64,
    /// Live table nodes per level, root first (all guests' when virtualized).
    pub page_tables: Vec<LevelMemory>,
    /// Nested: the host tables' nodes.
    pub host_page_tables: Option<Vec<LevelMemory>>,
    /// Shadow: the shadow tables' nodes.
    pub shadow_page_tables: Option<Vec<LevelMemory>>,
    /// Physical bytes handed out (data pages and table nodes; guest-physical
    /// when virtualized).
    pub allocated_bytes: u64,
    /// Host-physical bytes handed out (virtualized).
    pub host_allocated_bytes: u64,
}

impl SimReport {
    pub fn instructions(&self) -> u64 {
        self.run.references[Kind::Fetch as usize]
    }

    pub fn references(&self) -> u64 {
        self.run.references.iter().sum()
    }

    /// Page lookups by kind: one per page a reference touches.
    pub fn page_lookups(&self) -> [u64; 4] {
        std::array::from_fn(|k| self.run.references[k] + self.run.extra_page_lookups[k])
    }
}
