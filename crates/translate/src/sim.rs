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

use mmusim_trace::{Access, Kind};
use serde::Serialize;

use crate::addr::Va;
use crate::config::{Config, ConfigError, Mode};
use crate::context::{AddressSpaces, Current, SwitchKind};
use crate::histogram::Distribution;
use crate::machine::Machine;
use crate::pagetable::LevelMemory;
use crate::per_kind::PerKind;
use crate::pwc::PwcCounters;
use crate::stack::StackArray;
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
    pub references: PerKind<u64>,
    /// Page lookups beyond a reference's first, by kind: the extra pages of
    /// page-crossing references.
    pub extra_page_lookups: PerKind<u64>,
    /// References that touched more than one page.
    pub page_crossing_references: u64,
    /// Walks by the kind of the reference that caused them.
    pub walks: PerKind<u64>,
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

#[derive(Debug, Clone)]
pub struct Simulator {
    machine: Machine,
    tlbs: Vec<Tlb>,
    instruction_path: Vec<usize>,
    data_path: Vec<usize>,
    /// First TLB of the instruction and data paths (`NO_TLB` if none), kept
    /// inline so the hot path does not chase the path vectors.
    first_tlb: [usize; 2],
    /// One lane per size of the swept array; one lane when nothing is
    /// swept.
    lanes: Vec<Lane>,
    /// The TLB array answered for every lane at once, if any.
    swept: Option<Swept>,
    /// The dirty bits of a TLB entry dirty in every lane.
    all_lanes: u64,
    /// Lanes walk the first lane's page tables (native mode), which keep a
    /// dirty bit per lane: the lanes' tables would differ in nothing else.
    shared_tables: bool,
    spaces: AddressSpaces,
    current: Current,
    max_va: u64,
    va_bits: u32,
    /// The instruction count at which the next timer exit happens.
    next_timer: u64,
    /// The translation sizes, for per-size counters.
    sizes: crate::size::PageSizes,
    /// The last reference left the fast path: the next one is unlikely to
    /// start a run of hits, so `run` does not try (on a miss-heavy stream a
    /// failed try per reference costs more than the runs it finds).
    left_fast_path: bool,
    counters: RunCounters,
    context_counters: ContextCounters,
}

/// What one lane has of its own: its config (which differs from the others'
/// only in the swept array's ways), its walker (page tables, page-walk
/// caches, walk memory, exits) and the counters that differ between lanes.
/// TLBs other than the swept array see the same lookups in every lane and
/// are shared; only their entries' dirty bits are kept per lane.
#[derive(Clone, Debug)]
struct Lane {
    config: Config,
    walker: Walker,
    /// Walks by the kind of the reference that caused them.
    walks: PerKind<u64>,
    dirty_assists: u64,
    dirty_bits_set_by_assists: u64,
    /// Entries of the swept array dropped by THP promotions.
    promotion_invalidations: u64,
    /// Entries of the swept array and the walker's caches lost to flushes
    /// and recycles.
    entries_flushed: u64,
    /// The swept TLB's counters, as this lane's TLB of that size has them.
    swept: TlbCounters,
}

impl Lane {
    fn new(config: Config) -> Lane {
        Lane {
            walker: Walker::new(&Machine::new(&config)),
            config,
            walks: PerKind::default(),
            dirty_assists: 0,
            dirty_bits_set_by_assists: 0,
            promotion_invalidations: 0,
            entries_flushed: 0,
            swept: TlbCounters::default(),
        }
    }
}

/// The main array of one TLB, answered for every lane's size at once by
/// LRU stack distances; the TLB's other arrays stay in `tlbs`, shared.
#[derive(Clone, Debug)]
struct Swept {
    /// The TLB, in `tlbs`; it is the last level of every path it serves.
    tlb: usize,
    /// Page shifts the main array holds, with their index in the table's
    /// sizes.
    shifts: Vec<(u32, usize)>,
    stack: StackArray,
}

pub use crate::lanes::NotOnePass;

/// A translation found below a level of a path, to be cached above it:
/// `va`'s page of `shift` in the space tagged `tag`, dirty in the lanes
/// `dirty` has.
#[derive(Clone, Copy, Debug)]
struct Found {
    tag: u32,
    va: Va,
    shift: u32,
    dirty: u64,
}

/// Iterates the lanes (bit positions) set in `mask`.
fn lanes_in(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let lane = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            lane
        })
    })
}

impl Simulator {
    /// Builds the machine a config describes (resolving and checking it
    /// first).
    pub fn new(config: &Config) -> Result<Simulator, ConfigError> {
        let config = config.resolve()?;
        let machine = Machine::new(&config);
        let tlbs: Vec<Tlb> = machine.tlbs.iter().map(|spec| Tlb::new(spec, &machine)).collect();
        let path = |serves: fn(crate::config::Serves) -> bool| -> Vec<usize> {
            tlbs.iter().enumerate().filter(|(_, t)| serves(t.serves)).map(|(i, _)| i).collect()
        };
        let instruction_path = path(crate::config::Serves::instructions);
        let data_path = path(crate::config::Serves::data);
        let va_bits = machine.table.va_bits();
        let first_tlb =
            [instruction_path.first().copied().unwrap_or(NO_TLB), data_path.first().copied().unwrap_or(NO_TLB)];
        let timer = machine.timer_interval();
        Ok(Simulator {
            first_tlb,
            lanes: vec![Lane::new(config)],
            swept: None,
            all_lanes: 1,
            shared_tables: false,
            max_va: if va_bits >= 64 { u64::MAX } else { (1u64 << va_bits) - 1 },
            va_bits,
            tlbs,
            instruction_path,
            data_path,
            spaces: AddressSpaces::new(&machine.context),
            current: Current::none(),
            next_timer: if timer == 0 { u64::MAX } else { timer },
            sizes: crate::size::PageSizes::new(machine.translation_shifts.clone()),
            left_fast_path: false,
            counters: RunCounters::default(),
            context_counters: ContextCounters::default(),
            machine,
        })
    }

    /// One simulator for several configs that differ only in the number of
    /// ways of one TLB's main array (with the same number of sets, LRU
    /// replacement, and the TLB the last level of every path it serves):
    /// everything is simulated once but that array, answered for every
    /// size by stack distances, and what lies behind it (walks, page-walk
    /// caches, exits), simulated per size. `lane_report(i)` is then exactly
    /// `Simulator::new(&configs[i])`'s report after the same references.
    pub fn with_lanes(configs: &[Config], tlb: &str) -> Result<Simulator, NotOnePass> {
        let no = |why: String| NotOnePass(why);
        let lanes = crate::lanes::lanes(configs, tlb)?;
        let sets = lanes[0].family.sets;
        let ways: Vec<usize> = lanes.iter().map(|lane| lane.ways).collect();
        let resolved: Vec<Config> = lanes.into_iter().map(|lane| lane.config).collect();
        let mut sim = Simulator::new(&resolved[0]).map_err(|e| no(e.to_string()))?;
        let index = sim.tlbs.iter().position(|t| t.name == tlb).expect("a TLB of the config");
        // The swept TLB keeps its other arrays (shared: they hold other
        // page sizes, which the main array's size does not affect).
        let mut others = sim.machine.tlbs[index].clone();
        let main = others.arrays.iter().position(|a| a.name.is_empty()).expect("lanes sweep a main array");
        let shifts = others.arrays.remove(main).sizes;
        sim.tlbs[index] = Tlb::new(&others, &sim.machine);
        // A first-level swept TLB has no fast path: its hits differ by lane.
        for first in &mut sim.first_tlb {
            if *first == index {
                *first = NO_TLB;
            }
        }
        sim.all_lanes = crate::tlb::lane_mask(resolved.len());
        for t in &mut sim.tlbs {
            t.set_lanes(resolved.len());
        }
        sim.lanes = resolved.into_iter().map(Lane::new).collect();
        let lanes = sim.lanes.len();
        sim.shared_tables = sim.lanes[0].walker.share_tables(lanes);
        sim.swept = Some(Swept { tlb: index, shifts, stack: StackArray::new(sets, ways) });
        Ok(sim)
    }

    /// Turns the fast paths off (runs of hits, hits on most recently used
    /// slots, hinted slots): every lookup is then a full probe of every
    /// array, which records every hit with its policy. For tests: results
    /// must not change.
    pub fn disable_fast_paths(&mut self) {
        self.first_tlb = [NO_TLB; 2];
    }

    /// The resolved config (the first lane's).
    pub fn config(&self) -> &Config {
        &self.lanes[0].config
    }

    /// Lanes: sizes of the swept array simulated at once (1 if none).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// The resolved config of lane `lane`.
    pub fn lane_config(&self, lane: usize) -> &Config {
        &self.lanes[lane].config
    }

    /// Runs a batch of references. An address outside the table's virtual
    /// address space stops the batch at that reference.
    pub fn run(&mut self, accesses: &[Access]) -> Result<(), AddressOutOfRange> {
        let mut at = 0;
        while at < accesses.len() {
            if !std::mem::take(&mut self.left_fast_path) {
                at += self.run_hits(&accesses[at..]);
            }
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
        let Some((fetch_view, _, fetch_shift)) = self.tlbs[fetch_tlb].hit_view() else { return 0 };
        let Some((data_view, data_dirty, data_shift)) = self.tlbs[data_tlb].hit_view() else { return 0 };
        let tag = self.current.tag.0;
        let max_va = self.max_va;
        // Fetches before the one at which the next timer exit happens: that
        // one must go through `access`.
        let fetches_before = self.counters.references[Kind::Fetch];
        let fetch_limit = self.next_timer.saturating_sub(1).saturating_sub(fetches_before);
        let (mut fetches, mut loads, mut stores, mut modifies) = (0u64, 0u64, 0u64, 0u64);
        // The last page of each path found a hit, in registers: within the
        // run nothing changes state, so it stays one.
        let (mut fetch_page, mut data_page, mut data_page_dirty) = (u64::MAX, u64::MAX, false);
        let all_lanes = self.all_lanes;
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
                    data_page_dirty = data_dirty[slot] == all_lanes;
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
        let counts = PerKind([fetches, loads, stores, modifies]);
        for (kind, n) in counts.iter() {
            self.counters.references[kind] += n;
        }
        self.tlbs[fetch_tlb].count_guessed_hits(Kind::Fetch, fetches);
        for kind in [Kind::Load, Kind::Store, Kind::Modify] {
            self.tlbs[data_tlb].count_guessed_hits(kind, counts[kind]);
        }
        done
    }

    #[inline]
    fn access(&mut self, access: &Access) -> Result<(), u64> {
        let last = access.last_byte();
        if last > self.max_va {
            return Err(access.addr);
        }
        let kind = access.kind;
        self.counters.references[kind] += 1;
        if self.current.key != Some((access.vm, access.context)) {
            self.switch_to(access.vm, access.context);
        }
        if self.counters.references[Kind::Fetch] == self.next_timer && access.kind == Kind::Fetch {
            self.timer_exit();
        }
        let write = access.kind.writes();
        let instruction = access.kind == Kind::Fetch;
        let mut va = Va(access.addr);
        loop {
            let shift = self.translate(va, kind, write, instruction);
            let page_last = va.0 | ((1u64 << shift) - 1);
            if last <= page_last {
                break;
            }
            if va.0 == access.addr {
                self.counters.page_crossing_references += 1;
            }
            self.counters.extra_page_lookups[kind] += 1;
            va = Va(page_last + 1);
        }
        Ok(())
    }

    /// The running address space changes: count the switch, apply the
    /// context policy (see `context`), run with the space's tag.
    #[cold]
    #[inline(never)]
    fn switch_to(&mut self, trace_vm: u16, context: u16) {
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
        self.current = switch.current;
    }

    /// Empties every TLB and page-walk cache.
    fn flush_all(&mut self) {
        self.invalidate(|_, _, _| true, Walker::flush_all);
        self.context_counters.flushes += 1;
    }

    /// Removes the TLB entries `drop` accepts (by space tag and the page's
    /// address range) and, in each lane, what `flush` removes from the
    /// walker's caches; counts what went as flushed.
    fn invalidate(&mut self, drop: impl Fn(u32, u64, u64) -> bool + Copy, flush: impl Fn(&mut Walker) -> u64) {
        let (shared, swept) = self.invalidate_tlbs(drop);
        self.context_counters.entries_flushed += shared;
        for (lane, state) in self.lanes.iter_mut().enumerate() {
            state.entries_flushed += swept.get(lane).copied().unwrap_or(0) + flush(&mut state.walker);
        }
    }

    /// Removes the TLB entries `drop` accepts; returns how many went from
    /// the shared TLBs, and per lane from the swept array (each lane's
    /// counters of the swept TLB count both its shared arrays' and its own).
    fn invalidate_tlbs(&mut self, drop: impl Fn(u32, u64, u64) -> bool + Copy) -> (u64, Vec<u64>) {
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

    /// A timer exit: the hypervisor runs, and without VM tags the TLBs do
    /// not survive it.
    #[cold]
    #[inline(never)]
    fn timer_exit(&mut self) {
        let interval = self.machine.timer_interval();
        self.next_timer = self.next_timer.saturating_add(interval);
        for lane in &mut self.lanes {
            lane.walker.exit(ExitReason::Timer);
        }
        if !self.machine.context.vm_tags {
            self.flush_all();
        }
    }

    /// Translates one page of the running address space; returns its page
    /// shift. The common case (a hit in the first TLB where its guess
    /// says) stays
    /// inline; everything else is out of line so the hot loop keeps its
    /// values in registers.
    #[inline(always)]
    fn translate(&mut self, va: Va, kind: Kind, write: bool, instruction: bool) -> u32 {
        let first = self.first_tlb[usize::from(!instruction)];
        if let Some(tlb) = self.tlbs.get_mut(first) {
            if let Some(shift) = tlb.fast_hit(self.current.tag.0, va, kind, write) {
                return shift;
            }
        }
        self.translate_slow(va, kind, write, instruction)
    }

    fn request(&self, va: Va, write: bool) -> WalkRequest {
        let c = self.current;
        WalkRequest {
            space: c.space.0,
            vm: c.vm.0,
            local: c.local,
            tag: c.tag.0,
            vm_tag: c.vm_tag,
            physical_tag: if self.machine.mode() == Mode::Nested { c.vm_tag } else { 0 },
            va,
            write,
        }
    }

    #[inline(never)]
    fn translate_slow(&mut self, va: Va, kind: Kind, write: bool, instruction: bool) -> u32 {
        self.left_fast_path = true;
        let request = self.request(va, write);
        let path = if instruction { &self.instruction_path } else { &self.data_path };
        let tag = request.tag;
        let swept_tlb = self.swept.as_ref().map_or(NO_TLB, |s| s.tlb);
        for (depth, &t) in path.iter().enumerate() {
            if let Some(hit) = self.tlbs[t].lookup(tag, va, kind) {
                // A hit in a shared array: every lane hits.
                let mut dirty = hit.dirty;
                if write && dirty != self.all_lanes {
                    self.tlbs[t].mark_hit_dirty();
                    self.assist(self.all_lanes & !dirty, &request);
                    dirty = self.all_lanes;
                }
                if t == swept_tlb {
                    let size_index = self.size_index(hit.page_shift);
                    for lane in &mut self.lanes {
                        lane.swept.lookups[kind] += 1;
                        lane.swept.hits_by_size[size_index] += 1;
                    }
                }
                self.fill_above(depth, instruction, kind, Found { tag, va, shift: hit.page_shift, dirty });
                return hit.page_shift;
            }
            if t == swept_tlb {
                return self.translate_swept(depth, va, kind, &request, instruction);
            }
        }
        // A miss at every level, in every lane: each lane walks.
        let (shift, dirty) = self.walk_lanes(self.all_lanes, kind, &request);
        let every_level = if instruction { self.instruction_path.len() } else { self.data_path.len() };
        self.fill_above(every_level, instruction, kind, Found { tag, va, shift, dirty });
        shift
    }

    /// The fill rule: the TLBs of the path above `depth` (where the
    /// translation was found; the path's length when it was walked) each
    /// count a miss and cache the translation.
    #[inline(always)]
    fn fill_above(&mut self, depth: usize, instruction: bool, kind: Kind, found: Found) {
        let path = if instruction { &self.instruction_path } else { &self.data_path };
        for &upper in &path[..depth] {
            self.tlbs[upper].count_miss(kind, found.shift);
            self.tlbs[upper].fill(found.tag, found.va, found.shift, found.dirty);
        }
    }

    /// The rest of a lookup that missed every shared array down to the
    /// swept TLB (at `depth` of the path): its main array hits in some
    /// lanes, and the others walk.
    fn translate_swept(&mut self, depth: usize, va: Va, kind: Kind, request: &WalkRequest, instruction: bool) -> u32 {
        let tag = request.tag;
        let swept = self.swept.as_ref().expect("a swept array");
        let found = swept.shifts.iter().find_map(|&(shift, size_index)| {
            swept.stack.find(crate::tlb::key(va.0 >> shift, shift), tag).map(|f| (shift, size_index, f))
        });
        let hit_lanes = found.map_or(0, |(_, _, f)| swept.stack.lanes_holding(f.depth));
        let mut dirty = 0;
        if let Some((_, size_index, f)) = found {
            for lane in lanes_in(hit_lanes) {
                self.lanes[lane].swept.lookups[kind] += 1;
                self.lanes[lane].swept.hits_by_size[size_index] += 1;
            }
            dirty = f.dirty & hit_lanes;
            let clean = hit_lanes & !f.dirty;
            if request.write && clean != 0 {
                self.assist(clean, request);
                dirty |= clean;
            }
        }
        let miss_lanes = self.all_lanes & !hit_lanes;
        let shift = if miss_lanes == 0 {
            found.expect("a hit in every lane").0
        } else {
            let (shift, walked_dirty) = self.walk_lanes(miss_lanes, kind, request);
            dirty |= walked_dirty & miss_lanes;
            shift
        };
        let size_index = self.size_index(shift);
        let swept_tlb = self.swept.as_ref().expect("a swept array").tlb;
        let main_holds = self.swept.as_ref().expect("a swept array").shifts.iter().any(|&(s, _)| s == shift);
        if main_holds {
            let swept = self.swept.as_mut().expect("a swept array");
            let page = va.0 >> shift;
            let evicting = swept.stack.lanes_evicting(page) & miss_lanes;
            swept.stack.use_entry(page, crate::tlb::key(page, shift), tag, dirty, size_index as u8);
            for lane in lanes_in(miss_lanes) {
                let counters = &mut self.lanes[lane].swept;
                counters.lookups[kind] += 1;
                counters.misses[kind] += 1;
                counters.misses_by_size[size_index] += 1;
                counters.fills += 1;
                counters.evictions += u64::from(evicting & 1 << lane != 0);
            }
        } else {
            // A size only the TLB's other (shared) arrays hold: every lane
            // missed it and fills it there.
            let filled = self.tlbs[swept_tlb].fill(tag, va, shift, dirty);
            for lane in &mut self.lanes {
                lane.swept.lookups[kind] += 1;
                lane.swept.misses[kind] += 1;
                lane.swept.misses_by_size[size_index] += 1;
                if let Some(evicted) = filled {
                    lane.swept.fills += 1;
                    lane.swept.evictions += u64::from(evicted);
                }
            }
        }
        self.fill_above(depth, instruction, kind, Found { tag, va, shift, dirty });
        shift
    }

    /// Walks in the lanes `lanes`; returns the page shift (the same in every
    /// lane: page tables differ between lanes only in accessed and dirty
    /// bits) and the lanes whose walk found the page dirty. A THP promotion
    /// (a fault, so a walk in every lane at once) drops the stale cached
    /// translations everywhere.
    fn walk_lanes(&mut self, lanes: u64, kind: Kind, request: &WalkRequest) -> (u32, u64) {
        if let [state] = self.lanes.as_mut_slice() {
            // One configuration: one walk, no lane masks.
            let outcome = state.walker.walk(request);
            state.walks[kind] += 1;
            if let Some(promoted) = outcome.promoted {
                self.drop_promoted(promoted, request.tag);
            }
            return (outcome.page_shift, u64::from(outcome.dirty));
        }
        let mut shift = None;
        let mut dirty = 0;
        let mut promoted = None;
        let shared = if self.shared_tables { self.lanes[0].walker.walk_tables_for_lanes(request, lanes) } else { None };
        for lane in lanes_in(lanes) {
            let state = &mut self.lanes[lane];
            let outcome = match &shared {
                Some((found, set_dirty, dirty)) => {
                    let found = crate::pagetable::WalkResult {
                        set_dirty: set_dirty & 1 << lane != 0,
                        dirty: dirty & 1 << lane != 0,
                        ..*found
                    };
                    state.walker.cost_native_walk(request, &found)
                }
                None => state.walker.walk(request),
            };
            state.walks[kind] += 1;
            debug_assert!(shift.is_none_or(|s| s == outcome.page_shift), "lanes agree on page sizes");
            shift = Some(outcome.page_shift);
            dirty |= u64::from(outcome.dirty) << lane;
            if outcome.promoted.is_some() {
                debug_assert_eq!(lanes, self.all_lanes, "promotions happen on faults, in every lane");
                promoted = outcome.promoted;
            }
        }
        if let Some(promoted) = promoted {
            self.drop_promoted(promoted, request.tag);
        }
        (shift.expect("at least one lane walked"), dirty)
    }

    /// A THP promotion replaced the small pages of the region `(base,
    /// shift)` of the space tagged `tag`: drops their cached translations
    /// (as the OS's shootdown would) and the walk caches of the space
    /// (INVLPG also empties paging-structure caches).
    #[cold]
    #[inline(never)]
    fn drop_promoted(&mut self, (base, shift): (u64, u32), tag: u32) {
        let end = base + ((1u64 << shift) - 1);
        let (shared, swept) = self.invalidate_tlbs(|s, first, last| s == tag && first >= base && last <= end);
        self.counters.promotion_invalidations += shared;
        for (lane, state) in self.lanes.iter_mut().enumerate() {
            state.promotion_invalidations += swept.get(lane).copied().unwrap_or(0);
            state.walker.flush_space(tag);
        }
    }

    /// Dirty-bit assists in the lanes `lanes`: a store found the translation
    /// cached clean there.
    fn assist(&mut self, lanes: u64, request: &WalkRequest) {
        for lane in lanes_in(lanes) {
            let set = if self.shared_tables {
                self.lanes[0].walker.mark_dirty_lane(request, lane)
            } else {
                self.lanes[lane].walker.mark_dirty(request)
            };
            let state = &mut self.lanes[lane];
            state.dirty_assists += 1;
            state.dirty_bits_set_by_assists += u64::from(set);
        }
    }

    /// The index of a page shift among the translation sizes.
    fn size_index(&self, shift: u32) -> usize {
        self.sizes.index(shift)
    }

    /// Everything counted so far (of the first lane, the only one unless
    /// built `with_lanes`).
    pub fn report(&self) -> SimReport {
        self.lane_report(0)
    }

    /// Everything lane `lane` counted so far.
    pub fn lane_report(&self, lane: usize) -> SimReport {
        let state = &self.lanes[lane];
        let walker = &state.walker;
        // The page tables and the memory behind them, which lanes may share.
        let tables = if self.shared_tables { &self.lanes[0].walker } else { walker };
        let config = &state.config;
        let swept_tlb = self.swept.as_ref().map_or(NO_TLB, |s| s.tlb);
        let tlbs: Vec<TlbReport> = self
            .tlbs
            .iter()
            .enumerate()
            .map(|(index, tlb)| TlbReport {
                name: tlb.name.clone(),
                level: tlb.level,
                serves: tlb.serves,
                counters: if index == swept_tlb { state.swept.clone() } else { tlb.counters() },
            })
            .collect();
        let latency = |name: &str| self.tlbs.iter().find(|t| t.name == name).map_or(0, |t| u64::from(t.latency));
        let tlb_cycles: u64 = tlbs.iter().map(|t| t.counters.total_lookups() * latency(&t.name)).sum();
        let exits = config.mode.is_virtualized().then(|| walker.exits.clone());
        let exit_cycles = walker.exits.cycles;
        let (allocated_bytes, host_allocated_bytes) = tables.allocated_bytes();
        let other_tables = tables.other_tables();
        let mut context = self.context_counters.clone();
        context.entries_flushed += state.entries_flushed;
        SimReport {
            mode: config.mode.name(),
            page_shifts: config.translation_shifts(),
            host_page_shifts: config.host_shape().map(|shape| shape.page_shifts),
            run: RunCounters {
                walks: state.walks,
                dirty_assists: state.dirty_assists,
                dirty_bits_set_by_assists: state.dirty_bits_set_by_assists,
                promotion_invalidations: self.counters.promotion_invalidations + state.promotion_invalidations,
                translation_cycles: tlb_cycles + walker.counters.cycles + exit_cycles,
                ..self.counters.clone()
            },
            context,
            tlbs,
            walks: walker.counters.clone(),
            pwc: walker.pwc_counters().cloned(),
            nested: walker.nested().map(|(counters, host_pwc, tlb)| NestedReport { counters, host_pwc, tlb }),
            exits,
            faults: tables.faults(),
            promotions: tables.promotions(),
            address_spaces: self.spaces.spaces() as u64,
            vms: self.spaces.vms() as u64,
            page_tables: tables.page_tables(),
            host_page_tables: other_tables.clone().filter(|_| config.mode == Mode::Nested),
            shadow_page_tables: other_tables.filter(|_| config.mode == Mode::Shadow),
            allocated_bytes,
            host_allocated_bytes,
        }
    }

    /// References per walk, cycles per walk (of the first lane).
    pub fn histograms(&self) -> (&Distribution, &Distribution) {
        self.lane_histograms(0)
    }

    /// References per walk, cycles per walk of lane `lane`.
    pub fn lane_histograms(&self, lane: usize) -> (&Distribution, &Distribution) {
        let walker = &self.lanes[lane].walker;
        (&walker.reference_histogram, &walker.cycle_histogram)
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
        self.run.references[Kind::Fetch]
    }

    pub fn references(&self) -> u64 {
        self.run.references.total()
    }

    /// Page lookups by kind: one per page a reference touches.
    pub fn page_lookups(&self) -> PerKind<u64> {
        PerKind(std::array::from_fn(|k| self.run.references.0[k] + self.run.extra_page_lookups.0[k]))
    }
}
