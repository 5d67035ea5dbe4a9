//! What a simulator reports: every counter of a lane, raw integers (rates
//! are for the report crate to render).

use mmusim_trace::Kind;
use serde::Serialize;

use super::{ContextCounters, RunCounters, Simulator, NO_TLB};
use crate::config::Mode;
use crate::histogram::Distribution;
use crate::pagetable::LevelMemory;
use crate::per_kind::PerKind;
use crate::pwc::PwcCounters;
use crate::tlb::TlbCounters;
use crate::walker::{ExitCounters, NestedCounters, WalkCounters};

impl Simulator {
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
        let host_paging = walker.host_paging();
        let sharing = walker.sharing();
        // VMs are numbered in order of appearance; reports name them as the
        // trace does.
        let trace_vm = |vm: usize| self.spaces.trace_vm(crate::context::VmId(vm)).unwrap_or(vm as u16);
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
            major_faults: tables.major_faults(),
            paging: tables.paging(),
            huge_pages: tables.huge_pages(),
            memory_curve: self.memory_curve.as_ref().map(|curve| curve.points()),
            guest_paging_by_vm: if config.balloon.is_empty() {
                Vec::new()
            } else {
                walker.guest_paging_by_vm().into_iter().enumerate().map(|(vm, c)| (trace_vm(vm), c)).collect()
            },
            host_paging: host_paging.as_ref().map(|(counters, _)| counters.clone()),
            host_paging_by_vm: host_paging.map_or_else(Vec::new, |(_, mut by_vm)| {
                // Every VM seen, those the host never paged too.
                by_vm.resize(self.spaces.vms().max(by_vm.len()), Default::default());
                by_vm.into_iter().enumerate().map(|(vm, counts)| (trace_vm(vm), counts)).collect()
            }),
            sharing: sharing.as_ref().map(|(total, _)| total.clone()),
            sharing_by_vm: sharing.map_or_else(Vec::new, |(_, mut by_vm)| {
                by_vm.resize(self.spaces.vms().max(by_vm.len()), Default::default());
                by_vm.into_iter().enumerate().map(|(vm, counts)| (trace_vm(vm), counts)).collect()
            }),
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
    /// Major faults (evicted pages brought back).
    pub major_faults: u64,
    /// What paging under a resident limit did; `None` without a limit.
    pub paging: Option<crate::walker::PagingCounters>,
    /// Large pages granted and denied, when fragmentation, a huge-page pool
    /// or a resident limit bound them; `None` otherwise.
    pub huge_pages: Option<crate::huge::HugeCounters>,
    /// What paging under a host limit (`host.memory.resident`, nested)
    /// did; its major faults are its `swap_ins`. `None` without one.
    pub host_paging: Option<crate::walker::PagingCounters>,
    /// The host's paging by the VM whose page it was, by the trace's VM id
    /// (VMs in order of appearance); empty without a host limit.
    pub host_paging_by_vm: Vec<(u16, crate::walker::VmPagingCounters)>,
    /// With `[[balloon]]`: each VM's guest paging (its balloon's counts
    /// among them), by the trace's VM id; empty otherwise.
    pub guest_paging_by_vm: Vec<(u16, crate::walker::PagingCounters)>,
    /// Zero-page sharing (`host.share_zero_pages`); `None` without it.
    pub sharing: Option<crate::walker::SharingCounters>,
    /// Its counts by the trace's VM id (VMs in order of appearance); empty
    /// without it.
    pub sharing_by_vm: Vec<(u16, crate::walker::SharingCounters)>,
    /// `memory.curve`: paging under LRU at each of its limits.
    pub memory_curve: Option<Vec<crate::memory_curve::CurvePoint>>,
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
