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
//!
//! This module holds the per-reference loop and the fill rule; `switch` what
//! switches, timer exits and promotions do to cached translations, `swept`
//! the lanes of a one-pass simulation, `report` the counters it reports.

use mmusim_trace::{Access, Kind};
use serde::Serialize;

use crate::addr::Va;
use crate::cache::MruView;
use crate::config::{Config, ConfigError, Mode};
use crate::context::{AddressSpaces, Current};
use crate::machine::Machine;
use crate::memory_curve::MemoryCurve;
use crate::per_kind::PerKind;
use crate::stack::StackArray;
use crate::tlb::{key as key_of, Tlb, TlbCounters};
use crate::walker::{WalkRequest, Walker};

/// `first_tlb` of a path with no TLB.
const NO_TLB: usize = usize::MAX;

/// Bits of each data kind's count in `run_hits`' packed counter.
const KIND_FIELD_BITS: u32 = 21;
/// The longest run of hits `run_hits` takes at once: its counts of loads,
/// stores and modifies then fit their fields.
const MAX_RUN: usize = (1 << KIND_FIELD_BITS) - 1;

/// Where a data kind's count sits in `run_hits`' packed counter.
#[inline(always)]
fn data_field(kind: Kind) -> u32 {
    debug_assert!(kind != Kind::Fetch);
    (kind as u32 - 1) * KIND_FIELD_BITS
}

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
    /// The instruction count at which the next scheduled event (a timer
    /// exit, a balloon step) happens: runs of hits stop before it.
    next_event: u64,
    /// `[[balloon]]` steps, by instruction; the next one to apply.
    balloon_steps: Vec<crate::config::BalloonStep>,
    next_balloon_step: usize,
    /// Each VM's balloon target by the trace's VM id, for VMs that have
    /// not run yet too.
    balloon_targets: rustc_hash::FxHashMap<u16, u64>,
    /// VMs whose first run has applied their balloon target.
    balloon_vms_seen: usize,
    /// The translation sizes, for per-size counters.
    sizes: crate::size::PageSizes,
    /// The last reference left the fast path: the next one is unlikely to
    /// start a run of hits, so `run` does not try (on a miss-heavy stream a
    /// failed try per reference costs more than the runs it finds).
    left_fast_path: bool,
    /// Paging under LRU: every reference's page is reported to the walker,
    /// with its time (`recency_clock`).
    tracks_every_reference: bool,
    /// References simulated, as LRU's time: a reference's pages are
    /// stamped `clock << 16 | piece` (the pages of a page-crossing
    /// reference, lowest first, are referenced in that order).
    recency_clock: u64,
    /// Pages whose translations paging invalidates, between a walk and
    /// their invalidation (kept for its capacity).
    invalidations: Vec<crate::residency::PageKey>,
    /// `memory.curve`: paging under LRU at several limits, from the
    /// references alone.
    memory_curve: Option<Box<MemoryCurve>>,
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
            walker: Walker::new(&Machine::from_resolved(&config)),
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
pub use report::{NestedReport, SimReport, TlbReport};

mod report;
mod swept;
mod switch;

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
        let machine = Machine::from_resolved(&config);
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
        let lane = Lane::new(config);
        let tracks_every_reference = lane.walker.tracks_every_reference();
        let memory_curve = lane.config.memory.curve.as_ref().map(|limits| {
            let config = &lane.config;
            let shape = config.table_shape();
            let page_shift = config.pages.size.map_or(shape.offset_bits, |size| size.0.trailing_zeros());
            let costs = config.memory.costs.expect("resolved with a curve");
            Box::new(MemoryCurve::new(limits, page_shift, shape.offset_bits, costs, config.mode.is_virtualized()))
        });
        let mut sim = Simulator {
            memory_curve,
            first_tlb,
            tracks_every_reference,
            recency_clock: 0,
            invalidations: Vec::new(),
            lanes: vec![lane],
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
            next_event: if timer == 0 { u64::MAX } else { timer },
            balloon_steps: Vec::new(),
            next_balloon_step: 0,
            balloon_targets: rustc_hash::FxHashMap::default(),
            balloon_vms_seen: 0,
            sizes: crate::size::PageSizes::new(machine.translation_shifts.clone()),
            left_fast_path: false,
            counters: RunCounters::default(),
            context_counters: ContextCounters::default(),
            machine,
        };
        sim.schedule_balloon();
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
        // Two copies of the loop: one that reports every reference's page
        // to LRU paging, and one with no trace of that.
        let ran = if self.tracks_every_reference {
            self.run_loop::<true>(accesses)
        } else {
            self.run_loop::<false>(accesses)
        };
        if let Some(curve) = &mut self.memory_curve {
            // The references simulated: up to one out of range.
            curve.observe(&accesses[..ran.as_ref().map_or_else(|e| e.index, |()| accesses.len())]);
        }
        ran
    }

    fn run_loop<const TRACK: bool>(&mut self, accesses: &[Access]) -> Result<(), AddressOutOfRange> {
        let mut at = 0;
        while at < accesses.len() {
            let after_miss = std::mem::take(&mut self.left_fast_path);
            if !after_miss {
                at += self.run_hits::<TRACK>(&accesses[at..]);
            }
            if let Some(access) = accesses.get(at) {
                if let Err(addr) = self.access::<TRACK>(access, after_miss) {
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
    fn run_hits<const TRACK: bool>(&mut self, accesses: &[Access]) -> usize {
        let Some((vm, context)) = self.current.key else { return 0 };
        let [fetch_tlb, data_tlb] = self.first_tlb;
        // A path without a fast path (no TLB, or one whose policy must see
        // every hit) gets a view in which nothing hits: its first reference
        // ends the run.
        let fetch_view = self.tlbs.get(fetch_tlb).and_then(|tlb| tlb.hit_view());
        let data_view = self.tlbs.get(data_tlb).and_then(|tlb| tlb.hit_view());
        if fetch_view.is_none() && data_view.is_none() {
            return 0;
        }
        const NO_DIRTY_BITS: &[u64] = &[0];
        let (fetch_view, _, fetch_shift) = fetch_view.unwrap_or((MruView::never(), NO_DIRTY_BITS, 0));
        let (data_view, data_dirty, data_shift) = data_view.unwrap_or((MruView::never(), NO_DIRTY_BITS, 0));
        let tag = self.current.tag.0;
        let max_va = self.max_va;
        // Fetches before the one at which the next timer exit happens: that
        // one must go through `access`.
        let fetches_before = self.counters.references[Kind::Fetch];
        let fetch_limit = self.next_event.saturating_sub(1).saturating_sub(fetches_before);
        let mut fetches = 0u64;
        // Loads, stores and modifies counted in one register, a field of
        // `KIND_FIELD_BITS` bits each, which a run never fills: one add per
        // reference, no branch on the kind.
        let mut data_counts = 0u64;
        let accesses = &accesses[..accesses.len().min(MAX_RUN)];
        // The last page of each path found a hit, in registers: within the
        // run nothing changes state, so it stays one.
        let (mut fetch_page, mut data_page, mut data_page_dirty) = (u64::MAX, u64::MAX, false);
        let all_lanes = self.all_lanes;
        // LRU: where each path's page was last referenced (an address in
        // it, the reference's index in the run), stamped when the path
        // moves to another page and at the end.
        let track = TRACK;
        let placement = (self.current.space.0, self.current.vm.0, self.current.local);
        let clock = self.recency_clock;
        let (mut fetch_last, mut data_last) = ((0u64, 0usize), (0u64, 0usize));
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
                    if track && fetch_page != u64::MAX {
                        let (addr, at) = fetch_last;
                        self.lanes[0].walker.touch(placement, Va(addr), (clock + at as u64) << 16);
                    }
                    fetch_page = page;
                }
                fetch_last = (access.addr, done);
                fetches += 1;
            } else {
                let page = access.addr >> data_shift;
                if last >> data_shift != page {
                    break;
                }
                let write = access.kind.writes();
                if page != data_page {
                    let Some(slot) = data_view.hit(page, key_of(page, data_shift), tag) else { break };
                    let dirty = data_dirty[slot] == all_lanes;
                    if write && !dirty {
                        break;
                    }
                    if track && data_page != u64::MAX {
                        let (addr, at) = data_last;
                        self.lanes[0].walker.touch(placement, Va(addr), (clock + at as u64) << 16);
                    }
                    data_page = page;
                    data_page_dirty = dirty;
                }
                if write && !data_page_dirty {
                    break;
                }
                data_last = (access.addr, done);
                data_counts += 1 << data_field(access.kind);
            }
            done += 1;
        }
        if track {
            for (page, (addr, at)) in [(fetch_page, fetch_last), (data_page, data_last)] {
                if page != u64::MAX {
                    self.lanes[0].walker.touch(placement, Va(addr), (clock + at as u64) << 16);
                }
            }
            self.recency_clock += done as u64;
        }
        let field = |kind| (data_counts >> data_field(kind)) & MAX_RUN as u64;
        let counts = PerKind([fetches, field(Kind::Load), field(Kind::Store), field(Kind::Modify)]);
        for (kind, n) in counts.iter() {
            self.counters.references[kind] += n;
        }
        if fetches > 0 {
            self.tlbs[fetch_tlb].count_guessed_hits(Kind::Fetch, fetches);
        }
        if done as u64 > fetches {
            for kind in [Kind::Load, Kind::Store, Kind::Modify] {
                self.tlbs[data_tlb].count_guessed_hits(kind, counts[kind]);
            }
        }
        done
    }

    #[inline]
    fn access<const TRACK: bool>(&mut self, access: &Access, after_miss: bool) -> Result<(), u64> {
        let last = access.last_byte();
        if last > self.max_va {
            return Err(access.addr);
        }
        let kind = access.kind;
        self.counters.references[kind] += 1;
        if self.current.key != Some((access.vm, access.context)) {
            self.switch_to(access.vm, access.context);
        }
        if self.counters.references[Kind::Fetch] == self.next_event && access.kind == Kind::Fetch {
            self.scheduled_events();
        }
        let write = access.kind.writes();
        let instruction = access.kind == Kind::Fetch;
        let mut va = Va(access.addr);
        let mut stamp = self.recency_clock << 16;
        loop {
            let shift = self.translate(va, kind, write, instruction, after_miss);
            if TRACK {
                let c = self.current;
                self.lanes[0].walker.touch((c.space.0, c.vm.0, c.local), va, stamp);
                stamp += 1;
            }
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
        self.recency_clock += u64::from(TRACK);
        Ok(())
    }

    /// Translates one page of the running address space; returns its page
    /// shift. The common case (a hit in the first TLB where its guess
    /// says) stays
    /// inline; everything else is out of line so the hot loop keeps its
    /// values in registers.
    #[inline(always)]
    fn translate(&mut self, va: Va, kind: Kind, write: bool, instruction: bool, after_miss: bool) -> u32 {
        let first = self.first_tlb[usize::from(!instruction)];
        if after_miss {
            // The reference after one that left the fast path likely
            // misses too (a miss-heavy stream): the full lookup answers a
            // hit just as well, so the fast probes are skipped.
            return self.translate_slow(va, kind, write, instruction);
        }
        if let Some(tlb) = self.tlbs.get_mut(first) {
            if let Some(shift) = tlb.fast_hit(self.current.tag.0, va, kind, write) {
                return shift;
            }
        }
        self.translate_slow(va, kind, write, instruction)
    }

    fn request(&self, va: Va, write: bool, fetch: bool) -> WalkRequest {
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
            fetch,
        }
    }

    #[inline(never)]
    fn translate_slow(&mut self, va: Va, kind: Kind, write: bool, instruction: bool) -> u32 {
        self.left_fast_path = true;
        let request = self.request(va, write, instruction);
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
                // A hit in the first TLB: the fast path may take the next
                // reference again.
                self.left_fast_path = depth > 0;
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

    /// Walks in the lanes `lanes`; returns the page shift (the same in every
    /// lane: page tables differ between lanes only in accessed and dirty
    /// bits) and the lanes whose walk found the page dirty. A THP promotion
    /// (a fault, so a walk in every lane at once) drops the stale cached
    /// translations everywhere.
    #[inline(always)]
    fn walk_lanes(&mut self, lanes: u64, kind: Kind, request: &WalkRequest) -> (u32, u64) {
        if let (false, [state]) = (self.shared_tables, self.lanes.as_mut_slice()) {
            // One configuration: one walk, no lane masks (lanes that share
            // tables keep dirty bits per lane, and walk below).
            debug_assert_eq!(lanes, 1);
            let outcome = state.walker.walk(request);
            state.walks[kind] += 1;
            if outcome.promoted {
                let region = state.walker.take_promotion().expect("a promotion");
                self.drop_promoted(region, request.tag);
            }
            if outcome.paging {
                self.invalidate_paged();
            }
            return (outcome.page_shift, u64::from(outcome.dirty));
        }
        self.walk_each_lane(lanes, kind, request)
    }

    /// `walk_lanes` for more than one lane.
    #[inline(never)]
    fn walk_each_lane(&mut self, lanes: u64, kind: Kind, request: &WalkRequest) -> (u32, u64) {
        let mut shift = None;
        let mut dirty = 0;
        let mut promoted = None;
        let shared = if self.shared_tables { self.lanes[0].walker.walk_tables_for_lanes(request, lanes) } else { None };
        for lane in lanes_in(lanes) {
            let state = &mut self.lanes[lane];
            let outcome = match &shared {
                Some((found, addrs, set_dirty, dirty)) => {
                    let found = crate::pagetable::WalkResult {
                        set_dirty: set_dirty & 1 << lane != 0,
                        dirty: dirty & 1 << lane != 0,
                        ..*found
                    };
                    state.walker.cost_native_walk(request, &found, addrs)
                }
                None => state.walker.walk(request),
            };
            state.walks[kind] += 1;
            debug_assert!(shift.is_none_or(|s| s == outcome.page_shift), "lanes agree on page sizes");
            shift = Some(outcome.page_shift);
            dirty |= u64::from(outcome.dirty) << lane;
            if outcome.promoted {
                debug_assert_eq!(lanes, self.all_lanes, "promotions happen on faults, in every lane");
                promoted = state.walker.take_promotion();
            }
        }
        if let Some(promoted) = promoted {
            self.drop_promoted(promoted, request.tag);
        }
        (shift.expect("at least one lane walked"), dirty)
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
        // A store to a page sharing the zero frame broke the share, and the
        // frame it took may have made a host limit evict.
        if self.lanes[0].walker.invalidations_pending() {
            self.invalidate_paged();
        }
    }

    /// The index of a page shift among the translation sizes.
    fn size_index(&self, shift: u32) -> usize {
        self.sizes.index(shift)
    }
}
