//! One pass over several sizes of one TLB array: the lanes of
//! `Simulator::with_lanes`, the swept array answered by LRU stack
//! distances, and the lookups that reach it.

use mmusim_trace::Kind;

use super::{lanes_in, Found, Lane, NotOnePass, Simulator, Swept, NO_TLB};
use crate::addr::Va;
use crate::config::Config;
use crate::stack::StackArray;
use crate::tlb::Tlb;
use crate::walker::WalkRequest;

impl Simulator {
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

    /// The rest of a lookup that missed every shared array down to the
    /// swept TLB (at `depth` of the path): its main array hits in some
    /// lanes, and the others walk.
    pub(super) fn translate_swept(
        &mut self,
        depth: usize,
        va: Va,
        kind: Kind,
        request: &WalkRequest,
        instruction: bool,
    ) -> u32 {
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
}
