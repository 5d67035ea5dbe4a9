//! Replacement policies of a set-associative store, and their contract
//! with the fast paths.
//!
//! A policy keeps per-set state and answers three events: a hit on a way,
//! a fill of a way, and the choice of a victim in a full set. The fast
//! paths of the simulator (`Tlb::fast_hit`, `Simulator::run_hits`) answer a
//! hit on the most recently used slot of a set without telling the policy;
//! that is exact only for a policy whose [`Policy::mru_hit_is_noop`] says
//! so, and the fast paths ask before they take such a hit.
//!
//! Adding a policy: a variant of `config::Replacement` (its name in
//! configs), a variant here with its state, and an arm in each method
//! below (`mru_hit_is_noop` first: it decides whether the fast paths may
//! skip the policy's hits).

use crate::config::Replacement;
use crate::rng::SplitMix64;

/// Re-reference prediction values of SRRIP: 2 bits per way.
const RRPV_MAX: u8 = 3;
/// SRRIP inserts with a "long" re-reference prediction, one short of
/// distant, so that a line never reused ages out before one that was.
const RRPV_INSERT: u8 = RRPV_MAX - 1;

#[derive(Clone, Debug)]
pub(crate) enum Policy {
    /// Per-slot time of last use; the smallest is the victim.
    Lru { stamps: Vec<u64>, clock: u64 },
    /// Per-slot time of insertion; hits change nothing.
    Fifo { stamps: Vec<u64>, clock: u64 },
    /// Per-set binary tree over the ways padded to a power of two, stored as
    /// a heap (node 1 is the root); a bit of 1 sends the victim search right.
    TreePlru { bits: Vec<u8>, leaves: usize },
    /// A victim drawn from the seeded generator; hits change nothing.
    Random(SplitMix64),
    /// Static re-reference interval prediction (Jaleel et al., ISCA 2010),
    /// hit-priority variant: a 2-bit prediction per way, set to "near" (0)
    /// on a hit and to "long" (2) on a fill; the victim is the first way,
    /// from way 0, predicted "distant" (3), after ageing every way of the
    /// set by one until one is.
    Srrip { rrpv: Vec<u8> },
}

impl Policy {
    pub(crate) fn new(replacement: Replacement, sets: usize, ways: usize, rng_seed: u64, rng_stream: u64) -> Policy {
        let entries = sets * ways;
        match replacement {
            Replacement::Lru => Policy::Lru { stamps: vec![0; entries], clock: 0 },
            Replacement::Fifo => Policy::Fifo { stamps: vec![0; entries], clock: 0 },
            Replacement::TreePlru => {
                let leaves = ways.next_power_of_two();
                Policy::TreePlru { bits: vec![0; sets * leaves], leaves }
            }
            Replacement::Random => Policy::Random(SplitMix64::new(rng_seed, rng_stream)),
            Replacement::Srrip => Policy::Srrip { rrpv: vec![RRPV_MAX; entries] },
        }
    }

    /// Whether a hit on the way of a set that was used last (hit or filled)
    /// leaves every future victim choice as it is, so that it may go
    /// unrecorded.
    ///
    /// - LRU: the way is already the most recent; its new stamp keeps the
    ///   order of the set.
    /// - tree-PLRU: the tree already points away from the way.
    /// - FIFO, random: hits are ignored.
    /// - SRRIP: no. A way just filled is predicted "long" (2); a hit makes
    ///   it "near" (0), which changes which way ages out first.
    pub(crate) const fn mru_hit_is_noop(&self) -> bool {
        match self {
            Policy::Lru { .. } | Policy::Fifo { .. } | Policy::TreePlru { .. } | Policy::Random(_) => true,
            Policy::Srrip { .. } => false,
        }
    }

    /// Bytes the policy's state holds on the heap (for the budget's test).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Policy::Lru { stamps, .. } | Policy::Fifo { stamps, .. } => stamps.capacity() * 8,
            Policy::TreePlru { bits, .. } => bits.capacity(),
            Policy::Srrip { rrpv } => rrpv.capacity(),
            Policy::Random(_) => 0,
        }
    }

    /// A hit on `way` of `set`.
    #[inline(always)]
    pub(crate) fn hit(&mut self, set: usize, way: usize, ways: usize) {
        match self {
            Policy::Lru { stamps, clock } => {
                *clock += 1;
                stamps[set * ways + way] = *clock;
            }
            Policy::TreePlru { bits, leaves } => {
                point_away(&mut bits[set * *leaves..(set + 1) * *leaves], *leaves, way)
            }
            Policy::Srrip { rrpv } => rrpv[set * ways + way] = 0,
            Policy::Fifo { .. } | Policy::Random(_) => {}
        }
    }

    /// A new entry in `way` of `set`.
    #[inline(always)]
    pub(crate) fn fill(&mut self, set: usize, way: usize, ways: usize) {
        match self {
            Policy::Lru { stamps, clock } | Policy::Fifo { stamps, clock } => {
                *clock += 1;
                stamps[set * ways + way] = *clock;
            }
            Policy::TreePlru { bits, leaves } => {
                point_away(&mut bits[set * *leaves..(set + 1) * *leaves], *leaves, way)
            }
            Policy::Srrip { rrpv } => rrpv[set * ways + way] = RRPV_INSERT,
            Policy::Random(_) => {}
        }
    }

    /// The way of full set `set` to evict.
    #[inline(always)]
    pub(crate) fn victim(&mut self, set: usize, ways: usize) -> usize {
        match self {
            Policy::Lru { stamps, .. } | Policy::Fifo { stamps, .. } => {
                let stamps = &stamps[set * ways..(set + 1) * ways];
                (0..ways).min_by_key(|&way| stamps[way]).expect("at least one way")
            }
            Policy::TreePlru { bits, leaves } => {
                let bits = &bits[set * *leaves..(set + 1) * *leaves];
                let (mut node, mut low, mut width) = (1, 0, *leaves);
                while width > 1 {
                    width /= 2;
                    // Follow the bit, unless the right half holds no real
                    // way (the tree is padded to a power of two); the left
                    // half always does.
                    if bits[node] == 1 && low + width < ways {
                        low += width;
                        node = 2 * node + 1;
                    } else {
                        node *= 2;
                    }
                }
                low
            }
            Policy::Random(rng) => rng.below(ways as u64) as usize,
            Policy::Srrip { rrpv } => {
                let set_rrpv = &mut rrpv[set * ways..(set + 1) * ways];
                // Ageing every way by the gap to "distant" at once is the
                // same as ageing one step at a time until one gets there.
                let oldest = *set_rrpv.iter().max().expect("at least one way");
                let gap = RRPV_MAX - oldest;
                if gap > 0 {
                    set_rrpv.iter_mut().for_each(|value| *value += gap);
                }
                set_rrpv.iter().position(|&value| value == RRPV_MAX).expect("a way is distant")
            }
        }
    }
}

/// Points every tree node on `way`'s path away from it.
fn point_away(bits: &mut [u8], leaves: usize, way: usize) {
    let (mut node, mut low, mut width) = (1, 0, leaves);
    while width > 1 {
        width /= 2;
        if way < low + width {
            bits[node] = 1;
            node *= 2;
        } else {
            bits[node] = 0;
            low += width;
            node = 2 * node + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SRRIP by hand, one set of 4 ways: fill A B C D (all "long", 2); hit
    /// A (0); a fifth fill ages all by one (A 1, B C D 3) and evicts B, the
    /// first distant way.
    #[test]
    fn srrip_evicts_the_first_distant_way_after_ageing() {
        let mut policy = Policy::new(Replacement::Srrip, 1, 4, 0, 0);
        for way in 0..4 {
            policy.fill(0, way, 4);
        }
        policy.hit(0, 0, 4);
        assert_eq!(policy.victim(0, 4), 1);
        let Policy::Srrip { rrpv } = &policy else { unreachable!() };
        assert_eq!(rrpv, &[1, 3, 3, 3]);
    }

    /// The contract, checked against the state itself: for the policies
    /// that claim it, a repeated hit on the way used last leaves the victim
    /// choices of every later event the same; for SRRIP it can change them.
    #[test]
    fn mru_hits_are_noops_exactly_where_the_policy_says() {
        for replacement in [Replacement::Lru, Replacement::Fifo, Replacement::TreePlru, Replacement::Srrip] {
            let mut with_hit = Policy::new(replacement, 1, 4, 7, 7);
            for way in 0..4 {
                with_hit.fill(0, way, 4);
            }
            let mut without_hit = with_hit.clone();
            with_hit.hit(0, 3, 4);
            let victims = |policy: &mut Policy| -> Vec<usize> {
                (0..6)
                    .map(|_| {
                        let victim = policy.victim(0, 4);
                        policy.fill(0, victim, 4);
                        victim
                    })
                    .collect()
            };
            let same = victims(&mut with_hit) == victims(&mut without_hit);
            assert_eq!(same, with_hit.mru_hit_is_noop(), "{replacement:?}");
        }
    }
}
