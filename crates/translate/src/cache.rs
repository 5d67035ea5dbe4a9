//! A set-associative store of tags with a replacement policy: the one
//! structure behind TLB arrays, page-walk caches and the page-table line
//! cache.
//!
//! A slot holds a 64-bit key and a 32-bit space tag (the address-space id an
//! entry belongs to, 0 where entries are not tagged). Sets and ways need not
//! be powers of two: the set of a key is `index % sets`, a mask when `sets`
//! is a power of two. Invalid ways are always filled first; otherwise the
//! victim is the policy's.

use crate::config::Replacement;
use crate::replacement::Policy;

/// Key of an empty slot.
const EMPTY: u64 = u64::MAX;

#[derive(Clone, Debug)]
pub struct SetAssoc {
    sets: usize,
    ways: usize,
    /// `sets - 1` when `sets` is a power of two.
    mask: Option<u64>,
    keys: Vec<u64>,
    spaces: Vec<u32>,
    /// Per set, the slot used last (hit or filled): the most recently used
    /// of its set, unless it has since been emptied. Where the policy says
    /// a hit on it changes nothing (`mru_hits_are_noops`), callers may
    /// answer it without recording a use.
    mru: Vec<u32>,
    /// Valid slots per set: a full set needs no search for an empty way.
    filled: Vec<u32>,
    policy: Policy,
}

/// A read-only view of a store for finding hits on the most recently used
/// slot of a set without recording a use (see `SetAssoc::mru`).
#[derive(Clone, Copy, Debug)]
pub struct MruView<'a> {
    keys: &'a [u64],
    spaces: &'a [u32],
    mru: &'a [u32],
    sets: u64,
    mask: Option<u64>,
}

impl MruView<'_> {
    /// A view in which nothing hits (no key equals an empty slot's): what
    /// a path without a fast path offers, so that its references end a run
    /// without a check of their own.
    pub fn never() -> MruView<'static> {
        MruView { keys: &[EMPTY], spaces: &[0], mru: &[0], sets: 1, mask: Some(0) }
    }

    /// The slot holding `key` for `space` if it is the most recently used
    /// of the set `index` selects.
    #[inline(always)]
    pub fn hit(&self, index: u64, key: u64, space: u32) -> Option<usize> {
        let set = match self.mask {
            Some(mask) => index & mask,
            None => index % self.sets,
        };
        let slot = self.mru[set as usize] as usize;
        (self.keys[slot] == key && self.spaces[slot] == space).then_some(slot)
    }
}

/// Where a key was found or placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(pub usize);

impl SetAssoc {
    /// `entries / ways` sets (checked by config validation to divide).
    pub fn new(entries: usize, ways: usize, replacement: Replacement, rng_seed: u64, rng_stream: u64) -> SetAssoc {
        assert!(ways > 0 && entries >= ways && entries.is_multiple_of(ways), "validated geometry");
        let sets = entries / ways;
        let policy = Policy::new(replacement, sets, ways, rng_seed, rng_stream);
        SetAssoc {
            sets,
            ways,
            mask: sets.is_power_of_two().then_some(sets as u64 - 1),
            keys: vec![EMPTY; entries],
            spaces: vec![0; entries],
            mru: (0..sets).map(|set| (set * ways) as u32).collect(),
            filled: vec![0; sets],
            policy,
        }
    }

    pub fn entries(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is one set (fully associative).
    pub fn is_fully_associative(&self) -> bool {
        self.sets == 1
    }

    /// The set `index` selects.
    #[inline(always)]
    pub fn set_of(&self, index: u64) -> usize {
        match self.mask {
            Some(mask) => (index & mask) as usize,
            None => (index % self.sets as u64) as usize,
        }
    }

    /// Looks `key` up in the set `index` selects; a hit counts as a use.
    #[inline(always)]
    pub fn lookup(&mut self, index: u64, key: u64, space: u32) -> Option<Slot> {
        let set = self.set_of(index);
        let first = set * self.ways;
        let slots = first..first + self.ways;
        let way =
            self.keys[slots.clone()].iter().zip(&self.spaces[slots]).position(|(&k, &s)| k == key && s == space)?;
        self.touch(set, way);
        Some(Slot(first + way))
    }

    /// `lookup`, trying the set's most recently used slot first and, where
    /// the policy says a hit there changes nothing (`mru_hits_are_noops`),
    /// answering it without recording a use: for stores whose hits mostly
    /// repeat the last one (the upper levels' page-walk caches).
    #[inline(always)]
    pub fn lookup_mru_first(&mut self, index: u64, key: u64, space: u32) -> Option<Slot> {
        let set = self.set_of(index);
        let mru = self.mru[set] as usize;
        if self.keys[mru] == key && self.spaces[mru] == space && self.policy.mru_hit_is_noop() {
            return Some(Slot(mru));
        }
        self.lookup(index, key, space)
    }

    /// The view for finding hits on most recently used slots.
    #[inline(always)]
    pub fn mru_view(&self) -> MruView<'_> {
        MruView { keys: &self.keys, spaces: &self.spaces, mru: &self.mru, sets: self.sets as u64, mask: self.mask }
    }

    /// Whether `slot` holds `key` for `space`.
    #[inline(always)]
    pub fn holds_at(&self, slot: usize, key: u64, space: u32) -> bool {
        self.keys[slot] == key && self.spaces[slot] == space
    }

    /// Records a use of `slot`, which holds a key of the set `index`
    /// selects: what a hit found by `lookup` records.
    #[inline(always)]
    pub fn touch_slot(&mut self, index: u64, slot: usize) {
        let set = self.set_of(index);
        self.touch(set, slot - set * self.ways);
    }

    /// Fully associative only: the first valid slot of `space` whose key
    /// `matches` accepts, found in one pass (a TLB array holding several
    /// page sizes would otherwise scan once per size); a hit counts as a use.
    #[inline]
    pub fn lookup_matching(&mut self, space: u32, matches: impl Fn(u64) -> bool) -> Option<Slot> {
        debug_assert!(self.is_fully_associative());
        let way = self.keys.iter().zip(&self.spaces).position(|(&k, &s)| k != EMPTY && s == space && matches(k))?;
        self.touch(0, way);
        Some(Slot(way))
    }

    /// Whether `key` is present, without counting a use.
    pub fn contains(&self, index: u64, key: u64, space: u32) -> bool {
        let first = self.set_of(index) * self.ways;
        (first..first + self.ways).any(|slot| self.keys[slot] == key && self.spaces[slot] == space)
    }

    /// Inserts `key` (not present) in the set `index` selects, in an empty
    /// way or else the policy's victim's; returns the slot and the key
    /// evicted, if any.
    #[inline(always)]
    pub fn insert(&mut self, index: u64, key: u64, space: u32) -> (Slot, Option<u64>) {
        let set = self.set_of(index);
        let first = set * self.ways;
        let empty_way = if self.filled[set] as usize == self.ways {
            None
        } else {
            self.keys[first..first + self.ways].iter().position(|&k| k == EMPTY)
        };
        let way = match empty_way {
            Some(way) => {
                self.filled[set] += 1;
                way
            }
            None => self.victim(set),
        };
        let evicted = Some(self.keys[first + way]).filter(|&k| k != EMPTY);
        self.keys[first + way] = key;
        self.spaces[first + way] = space;
        self.fill(set, way);
        (Slot(first + way), evicted)
    }

    #[inline(always)]
    fn touch(&mut self, set: usize, way: usize) {
        self.mru[set] = (set * self.ways + way) as u32;
        self.policy.hit(set, way, self.ways);
    }

    #[inline(always)]
    fn fill(&mut self, set: usize, way: usize) {
        self.mru[set] = (set * self.ways + way) as u32;
        self.policy.fill(set, way, self.ways);
    }

    #[inline(always)]
    fn victim(&mut self, set: usize) -> usize {
        self.policy.victim(set, self.ways)
    }

    /// Whether a hit on a set's most recently used slot may go unrecorded
    /// (see `replacement::Policy::mru_hit_is_noop`): what the fast paths
    /// ask before they answer one through `mru_view`.
    #[inline(always)]
    pub fn mru_hits_are_noops(&self) -> bool {
        self.policy.mru_hit_is_noop()
    }

    /// Empties every valid slot whose (key, space) `drop` accepts; returns
    /// how many went.
    pub fn invalidate_where(&mut self, mut drop: impl FnMut(u64, u32) -> bool) -> u64 {
        let mut dropped = 0;
        for slot in 0..self.keys.len() {
            if self.keys[slot] != EMPTY && drop(self.keys[slot], self.spaces[slot]) {
                self.keys[slot] = EMPTY;
                self.filled[slot / self.ways] -= 1;
                dropped += 1;
            }
        }
        dropped
    }

    /// Empties the slot holding `key` for `space` in the set `index`
    /// selects, if any; returns whether one was.
    pub fn remove(&mut self, index: u64, key: u64, space: u32) -> bool {
        let first = self.set_of(index) * self.ways;
        match (first..first + self.ways).find(|&slot| self.keys[slot] == key && self.spaces[slot] == space) {
            Some(slot) => {
                self.invalidate(Slot(slot));
                true
            }
            None => false,
        }
    }

    /// The key in a slot.
    pub fn key_at(&self, slot: Slot) -> u64 {
        self.keys[slot.0]
    }

    /// Empties the slot.
    pub fn invalidate(&mut self, slot: Slot) {
        if self.keys[slot.0] != EMPTY {
            self.keys[slot.0] = EMPTY;
            self.filled[slot.0 / self.ways] -= 1;
        }
    }

    /// Bytes this store holds on the heap (for the budget's test).
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8
            + self.spaces.capacity() * 4
            + self.mru.capacity() * 4
            + self.filled.capacity() * 4
            + self.policy.heap_bytes()
    }

    /// Valid entries held.
    pub fn occupancy(&self) -> u64 {
        self.keys.iter().filter(|&&k| k != EMPTY).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mru_view_sees_only_the_last_used_slot_of_each_set() {
        // 2 sets of 2 ways; keys are their own indexes.
        let mut cache = SetAssoc::new(4, 2, Replacement::Lru, 0, 0);
        cache.insert(0, 10, 0);
        cache.insert(2, 12, 0);
        cache.insert(1, 11, 0);
        assert_eq!(cache.mru_view().hit(2, 12, 0), Some(1), "set 0's last use");
        assert_eq!(cache.mru_view().hit(0, 10, 0), None, "in set 0, but not its last use");
        assert_eq!(cache.mru_view().hit(1, 11, 0), Some(2));
        assert_eq!(cache.mru_view().hit(1, 11, 7), None, "another space");
        cache.lookup(0, 10, 0);
        assert_eq!(cache.mru_view().hit(0, 10, 0), Some(0));
        cache.invalidate_where(|key, _| key == 10);
        assert_eq!(cache.mru_view().hit(0, 10, 0), None, "emptied");
    }

    fn fill_and_access(cache: &mut SetAssoc, keys: &[u64]) -> Vec<bool> {
        keys.iter()
            .map(|&key| {
                if cache.lookup(key, key, 0).is_some() {
                    true
                } else {
                    cache.insert(key, key, 0);
                    false
                }
            })
            .collect()
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        // One set of 3 ways: A B C, touch A, insert D evicts B.
        let mut cache = SetAssoc::new(3, 3, Replacement::Lru, 0, 0);
        assert_eq!(
            fill_and_access(&mut cache, &[1, 2, 3, 1, 4, 2, 1]),
            vec![false, false, false, true, false, false, true]
        );
        // After 1 2 3 1 4: set holds 1 3 4 (2 evicted); 2 misses and evicts
        // 3 (LRU); 1 hits.
        assert!(!cache.contains(0, 3, 0));
    }

    #[test]
    fn fifo_ignores_hits() {
        let mut cache = SetAssoc::new(3, 3, Replacement::Fifo, 0, 0);
        // 1 2 3, hit 1, insert 4 evicts 1 (first in) despite the hit.
        fill_and_access(&mut cache, &[1, 2, 3, 1, 4]);
        assert!(!cache.contains(0, 1, 0));
        assert!(cache.contains(0, 2, 0) && cache.contains(0, 3, 0) && cache.contains(0, 4, 0));
    }

    #[test]
    fn tree_plru_follows_the_tree() {
        // 4 ways: fill 0..3 (ways 0,1,2,3), then the tree points at way 0;
        // touching way 0 (key 10) sends the victim to way 2's half, then to 2.
        let mut cache = SetAssoc::new(4, 4, Replacement::TreePlru, 0, 0);
        fill_and_access(&mut cache, &[10, 11, 12, 13, 10, 14]);
        assert!(!cache.contains(0, 12, 0), "way 2 (key 12) is the PLRU victim");
        assert!(cache.contains(0, 10, 0) && cache.contains(0, 11, 0) && cache.contains(0, 13, 0));
    }

    #[test]
    fn tree_plru_with_ways_not_a_power_of_two_never_picks_a_padding_way() {
        let mut cache = SetAssoc::new(12, 12, Replacement::TreePlru, 0, 0);
        for key in 0..1000u64 {
            if cache.lookup(0, key % 37, 0).is_none() {
                let (slot, _) = cache.insert(0, key % 37, 0);
                assert!(slot.0 < 12);
            }
        }
        assert_eq!(cache.occupancy(), 12);
    }

    #[test]
    fn sets_need_not_be_a_power_of_two() {
        // 6 entries, 2 ways: 3 sets; keys 0 and 3 share set 0.
        let mut cache = SetAssoc::new(6, 2, Replacement::Lru, 0, 0);
        cache.insert(0, 100, 0);
        cache.insert(3, 103, 0);
        cache.insert(6, 106, 0);
        assert!(!cache.contains(0, 100, 0), "a third key in set 0 evicts the first");
        assert!(cache.contains(3, 103, 0) && cache.contains(6, 106, 0));
    }

    #[test]
    fn space_tags_separate_entries() {
        let mut cache = SetAssoc::new(4, 4, Replacement::Lru, 0, 0);
        cache.insert(7, 7, 1);
        assert!(cache.lookup(7, 7, 2).is_none());
        assert!(cache.lookup(7, 7, 1).is_some());
        assert_eq!(cache.invalidate_where(|_, space| space == 1), 1);
        assert_eq!(cache.occupancy(), 0);
    }

    /// Trying the most recently used slot first must change nothing: two
    /// copies of a store see the same random references, one probed by
    /// `lookup`, the other by `lookup_mru_first`; every answer, every
    /// victim and the final contents agree, for every policy. Keys repeat
    /// often (the last key, or one of a few), so that hits on the most
    /// recently used slot are common.
    #[test]
    fn mru_first_lookups_find_and_evict_exactly_as_lookups_do() {
        use crate::rng::SplitMix64;
        for replacement in
            [Replacement::Lru, Replacement::TreePlru, Replacement::Fifo, Replacement::Random, Replacement::Srrip]
        {
            for (entries, ways) in [(4, 4), (32, 4), (24, 3)] {
                let mut plain = SetAssoc::new(entries, ways, replacement, 5, 9);
                let mut mru_first = plain.clone();
                let mut random = SplitMix64::new(2026, entries as u64);
                let mut last = 0;
                for step in 0..20_000 {
                    let key = match random.below(4) {
                        0 | 1 => last,
                        2 => random.below(8),
                        _ => random.below(64),
                    };
                    last = key;
                    let (a, b) = (plain.lookup(key, key, 0), mru_first.lookup_mru_first(key, key, 0));
                    assert_eq!(a, b, "{replacement:?} {entries}x{ways}, step {step}: key {key}");
                    if a.is_none() {
                        assert_eq!(plain.insert(key, key, 0), mru_first.insert(key, key, 0), "{replacement:?}");
                    }
                }
                assert_eq!(plain.keys, mru_first.keys, "{replacement:?} {entries}x{ways}");
            }
        }
    }

    #[test]
    fn random_replacement_is_seeded() {
        let run = |seed| {
            let mut cache = SetAssoc::new(8, 8, Replacement::Random, seed, 1);
            fill_and_access(&mut cache, &(0..200).map(|i| (i * 7919) % 23).collect::<Vec<u64>>())
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
