//! One TLB array answered for several sizes at once: LRU stack distances
//! (Mattson, Gecsei, Slutz and Traiger, "Evaluation techniques for storage
//! hierarchies", IBM Systems Journal, 1970).
//!
//! Under LRU, an array of `w` ways per set holds exactly the `w` most
//! recently used entries of each set, whatever `w` is, so one recency stack
//! per set tells every size's contents at once: an entry at depth `d` is
//! held by every size with more than `d` ways. The sizes ("lanes") differ
//! only in ways; the number of sets is the same for all.
//!
//! Invalidations (flushes, id recycles, THP promotions) leave holes: an
//! invalidated entry's place stays in the stack as a hole, which is what an
//! invalid way is in a real array. A use of an entry, or an insertion,
//! moves it to the top, and the entries above it shift down by one, until
//! the first hole above it, which they fill; with no hole above, they shift
//! down into the place it left. (For a size that missed, this is filling an
//! invalid way when it has one in reach, else evicting its least recently
//! used entry; for a size that hit, a reordering that keeps its contents.)
//! Neither operation ever makes an entry shallower, so entries (and holes)
//! deeper than the largest size are dropped.
//!
//! Depths come from a Fenwick tree over per-set use times, so each
//! operation costs O(log ways) beside a hash lookup.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

/// Most lanes a stack answers for (one bit each in a `u64` mask).
pub const MAX_LANES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Empty,
    Hole,
    Entry { key: u64, space: u32, dirty: u64, size_index: u8 },
}

/// One set's recency stack, by use time: the larger the time, the more
/// recent. `places[t]` is what was used at time `t` (an entry still there, or
/// a hole left by an invalidated one), or nothing.
#[derive(Clone, Debug)]
struct SetStack {
    places: Vec<Place>,
    /// Occupied places (entries and holes) by time.
    occupied: Fenwick,
    /// Times of the holes.
    holes: BTreeSet<usize>,
    /// The next use time; `places.len()` bounds it, and reaching it
    /// compacts the times.
    next: usize,
    /// No place before this time is occupied.
    oldest: usize,
    count: usize,
}

/// What a lookup found: the entry's depth in its set (places above it), its
/// dirty bits by lane, and its page size's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub depth: usize,
    pub dirty: u64,
    pub size_index: u8,
}

/// The stack of one TLB array, for lanes of `ways[lane]` ways each.
#[derive(Clone, Debug)]
pub struct StackArray {
    sets: usize,
    mask: Option<u64>,
    ways: Vec<usize>,
    /// The largest lane's ways: nothing deeper matters.
    depth_limit: usize,
    stacks: Vec<SetStack>,
    /// (key, space) -> (set, time).
    index: FxHashMap<(u64, u32), (usize, usize)>,
}

impl StackArray {
    /// A stack for `sets` sets and one lane per entry of `ways` (at most
    /// `MAX_LANES`).
    pub fn new(sets: usize, ways: Vec<usize>) -> StackArray {
        assert!(!ways.is_empty() && ways.len() <= MAX_LANES && sets > 0, "validated by the sweep");
        let depth_limit = *ways.iter().max().expect("at least one lane");
        // Times run to twice the stack's size before compacting: amortized,
        // one move per use.
        let capacity = 2 * depth_limit + 2;
        let stack = SetStack {
            places: vec![Place::Empty; capacity],
            occupied: Fenwick::new(capacity),
            holes: BTreeSet::new(),
            next: 0,
            oldest: 0,
            count: 0,
        };
        StackArray {
            sets,
            mask: sets.is_power_of_two().then_some(sets as u64 - 1),
            ways,
            depth_limit,
            stacks: vec![stack; sets],
            index: FxHashMap::default(),
        }
    }

    pub fn lanes(&self) -> usize {
        self.ways.len()
    }

    pub fn ways(&self) -> &[usize] {
        &self.ways
    }

    fn set_of(&self, index: u64) -> usize {
        match self.mask {
            Some(mask) => (index & mask) as usize,
            None => (index % self.sets as u64) as usize,
        }
    }

    /// The lanes (bits) whose arrays hold an entry at `depth`.
    pub fn lanes_holding(&self, depth: usize) -> u64 {
        self.ways.iter().enumerate().filter(|(_, &w)| depth < w).fold(0, |mask, (lane, _)| mask | 1 << lane)
    }

    /// Finds `key` of `space` (set by `index`), without using it.
    pub fn find(&self, key: u64, space: u32) -> Option<Found> {
        let &(set, time) = self.index.get(&(key, space))?;
        let stack = &self.stacks[set];
        let Place::Entry { dirty, size_index, .. } = stack.places[time] else { unreachable!("indexed entries exist") };
        Some(Found { depth: stack.above(time), dirty, size_index })
    }

    /// The lanes in which inserting into the set `index` selects evicts a
    /// valid entry: those with no hole within reach and a full set. `key`,
    /// if present deeper than a lane reaches, counts toward that lane's set
    /// being full, as it should: it is not in that lane's array.
    pub fn lanes_evicting(&self, index: u64) -> u64 {
        let stack = &self.stacks[self.set_of(index)];
        let first_hole = stack.holes.last().map_or(usize::MAX, |&time| stack.above(time));
        self.ways
            .iter()
            .enumerate()
            .filter(|(_, &w)| first_hole >= w && stack.count >= w)
            .fold(0, |mask, (lane, _)| mask | 1 << lane)
    }

    /// Uses `key` (set by `index`): moves it to the top of its set's stack,
    /// inserting it if absent, with `dirty` as its lanes' dirty bits.
    pub fn use_entry(&mut self, index: u64, key: u64, space: u32, dirty: u64, size_index: u8) {
        let set = self.set_of(index);
        let limit = self.depth_limit;
        if self.stacks[set].next == self.stacks[set].places.len() {
            self.stacks[set].compact(&mut self.index, set);
        }
        let old = self.index.get(&(key, space)).map(|&(_, time)| time);
        let stack = &mut self.stacks[set];
        // The newest hole above the entry (any hole, for an insertion) is
        // what the entries above shift into.
        let consumed = match old {
            Some(time) => stack.holes.range(time + 1..).next_back().copied(),
            None => stack.holes.last().copied(),
        };
        if let Some(hole) = consumed {
            stack.holes.remove(&hole);
            stack.places[hole] = Place::Empty;
            stack.occupied.add(hole, -1);
            stack.count -= 1;
        }
        if let Some(time) = old {
            if consumed.is_some() {
                // Its place becomes the hole.
                stack.places[time] = Place::Hole;
                stack.holes.insert(time);
            } else {
                stack.places[time] = Place::Empty;
                stack.occupied.add(time, -1);
                stack.count -= 1;
            }
        }
        let time = stack.next;
        stack.next += 1;
        stack.places[time] = Place::Entry { key, space, dirty, size_index };
        stack.occupied.add(time, 1);
        stack.count += 1;
        self.index.insert((key, space), (set, time));
        // Nothing deeper than the largest lane matters.
        while stack.count > limit {
            stack.drop_oldest(&mut self.index);
        }
    }

    /// Sets the dirty bits `lanes` of `key`'s entry, if present.
    pub fn mark_dirty(&mut self, key: u64, space: u32, lanes: u64) {
        if let Some(&(set, time)) = self.index.get(&(key, space)) {
            if let Place::Entry { dirty, .. } = &mut self.stacks[set].places[time] {
                *dirty |= lanes;
            }
        }
    }

    /// Invalidates every entry `drop` accepts (by key and space), leaving
    /// holes; returns, per lane, how many of its valid entries went.
    pub fn invalidate_where(&mut self, mut drop: impl FnMut(u64, u32) -> bool) -> Vec<u64> {
        let mut lost = vec![0u64; self.ways.len()];
        let ways = &self.ways;
        for stack in &mut self.stacks {
            let mut depth = 0;
            for time in (stack.oldest..stack.next).rev() {
                match stack.places[time] {
                    Place::Empty => continue,
                    Place::Hole => {}
                    Place::Entry { key, space, .. } => {
                        if drop(key, space) {
                            for (lane, &w) in ways.iter().enumerate() {
                                lost[lane] += u64::from(depth < w);
                            }
                            stack.places[time] = Place::Hole;
                            stack.holes.insert(time);
                            self.index.remove(&(key, space));
                        }
                    }
                }
                depth += 1;
            }
        }
        lost
    }

    /// Valid entries per lane.
    pub fn occupancy(&self) -> Vec<u64> {
        let mut held = vec![0u64; self.ways.len()];
        for stack in &self.stacks {
            let mut depth = 0;
            for time in (stack.oldest..stack.next).rev() {
                match stack.places[time] {
                    Place::Empty => continue,
                    Place::Hole => {}
                    Place::Entry { .. } => {
                        for (lane, &w) in self.ways.iter().enumerate() {
                            held[lane] += u64::from(depth < w);
                        }
                    }
                }
                depth += 1;
            }
        }
        held
    }
}

impl SetStack {
    /// Occupied places more recent than `time`: the depth of what is there.
    fn above(&self, time: usize) -> usize {
        self.count - self.occupied.prefix(time + 1)
    }

    /// Drops the least recent occupied place (beyond every lane's reach).
    fn drop_oldest(&mut self, index: &mut FxHashMap<(u64, u32), (usize, usize)>) {
        while self.places[self.oldest] == Place::Empty {
            self.oldest += 1;
        }
        let time = self.oldest;
        match self.places[time] {
            Place::Hole => {
                self.holes.remove(&time);
            }
            Place::Entry { key, space, .. } => {
                index.remove(&(key, space));
            }
            Place::Empty => unreachable!("skipped"),
        }
        self.places[time] = Place::Empty;
        self.occupied.add(time, -1);
        self.count -= 1;
    }

    /// Renumbers the occupied places from time 0, keeping their order.
    fn compact(&mut self, index: &mut FxHashMap<(u64, u32), (usize, usize)>, set: usize) {
        let kept: Vec<Place> =
            self.places[self.oldest..self.next].iter().copied().filter(|p| *p != Place::Empty).collect();
        self.places.iter_mut().for_each(|p| *p = Place::Empty);
        self.occupied = Fenwick::new(self.places.len());
        self.holes.clear();
        for (time, place) in kept.into_iter().enumerate() {
            self.places[time] = place;
            self.occupied.add(time, 1);
            match place {
                Place::Hole => {
                    self.holes.insert(time);
                }
                Place::Entry { key, space, .. } => {
                    index.insert((key, space), (set, time));
                }
                Place::Empty => unreachable!("filtered"),
            }
        }
        self.oldest = 0;
        self.next = self.count;
    }
}

/// A Fenwick (binary indexed) tree of counts: point updates and prefix
/// sums in O(log n).
#[derive(Clone, Debug)]
struct Fenwick {
    tree: Vec<i64>,
}

impl Fenwick {
    fn new(len: usize) -> Fenwick {
        Fenwick { tree: vec![0; len + 1] }
    }

    fn add(&mut self, at: usize, delta: i64) {
        let mut i = at + 1;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    /// The sum of the first `len` counts.
    fn prefix(&self, len: usize) -> usize {
        let mut i = len;
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i -= i & i.wrapping_neg();
        }
        sum as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::SetAssoc;
    use crate::config::Replacement;

    /// Drives a stack and one LRU `SetAssoc` per lane with the same
    /// operations, and checks they agree on every hit and eviction.
    struct Pair {
        stack: StackArray,
        arrays: Vec<SetAssoc>,
    }

    impl Pair {
        fn new(sets: usize, ways: &[usize]) -> Pair {
            Pair {
                stack: StackArray::new(sets, ways.to_vec()),
                arrays: ways.iter().map(|&w| SetAssoc::new(sets * w, w, Replacement::Lru, 0, 0)).collect(),
            }
        }

        fn access(&mut self, key: u64, space: u32) {
            let found = self.stack.find(key, space);
            let holding = found.map_or(0, |f| self.stack.lanes_holding(f.depth));
            let evicting = self.stack.lanes_evicting(key);
            for (lane, array) in self.arrays.iter_mut().enumerate() {
                let hit = array.lookup(key, key, space).is_some();
                assert_eq!(hit, holding & 1 << lane != 0, "lane {lane}: key {key} hit");
                if !hit {
                    let (_, evicted) = array.insert(key, key, space);
                    assert_eq!(evicted.is_some(), evicting & 1 << lane != 0, "lane {lane}: key {key} eviction");
                }
            }
            self.stack.use_entry(key, key, space, 0, 0);
        }

        fn invalidate(&mut self, doomed: impl Fn(u64, u32) -> bool + Copy) {
            let lost = self.stack.invalidate_where(doomed);
            for (lane, array) in self.arrays.iter_mut().enumerate() {
                assert_eq!(array.invalidate_where(doomed), lost[lane], "lane {lane}: invalidated");
            }
        }

        fn check_occupancy(&self) {
            let held = self.stack.occupancy();
            for (lane, array) in self.arrays.iter().enumerate() {
                assert_eq!(array.occupancy(), held[lane], "lane {lane}: occupancy");
            }
        }
    }

    /// SplitMix64, for reproducible pseudo-random streams.
    fn random(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn one_stack_agrees_with_an_lru_array_per_size() {
        for (sets, ways) in [(1, vec![1, 2, 3, 4, 8, 16]), (4, vec![2, 4, 6]), (3, vec![1, 5, 2])] {
            let mut pair = Pair::new(sets, &ways);
            let mut state = 7;
            for step in 0..20_000u64 {
                let r = random(&mut state);
                // Keys from a skewed range, in two spaces.
                let key = (r % 40) * (r >> 60) % 40;
                pair.access(key, (r >> 20) as u32 & 1);
                match step % 997 {
                    300 => pair.invalidate(|key, _| key % 3 == 0),
                    600 => pair.invalidate(|_, space| space == 1),
                    900 => pair.invalidate(|_, _| true),
                    _ => {}
                }
                if step % 1000 == 0 {
                    pair.check_occupancy();
                }
            }
            pair.check_occupancy();
        }
    }

    #[test]
    fn depths_count_holes_and_hits_by_lane() {
        let mut stack = StackArray::new(1, vec![1, 2, 3]);
        for key in [10, 11, 12] {
            stack.use_entry(0, key, 0, 0, 0);
        }
        // Top to bottom: 12 11 10.
        assert_eq!(stack.find(12, 0).unwrap().depth, 0);
        assert_eq!(stack.find(10, 0).unwrap().depth, 2);
        assert_eq!(stack.lanes_holding(2), 0b100);
        stack.invalidate_where(|key, _| key == 11);
        // 12 (hole) 10: 10 is still at depth 2, and the hole gives every
        // lane that reaches it a free way.
        assert_eq!(stack.find(10, 0).unwrap().depth, 2);
        assert_eq!(stack.lanes_evicting(0), 0b001);
        stack.use_entry(0, 13, 0, 0b101, 1);
        // 13 12 10: the insertion filled the hole.
        let found = stack.find(10, 0).unwrap();
        assert_eq!((found.depth, stack.find(13, 0).unwrap().dirty), (2, 0b101));
        stack.mark_dirty(10, 0, 0b010);
        assert_eq!(stack.find(10, 0).unwrap().dirty, 0b010);
    }

    #[test]
    fn the_fenwick_tree_sums_prefixes() {
        let mut tree = Fenwick::new(10);
        for (at, delta) in [(0, 1), (3, 2), (9, 5), (3, -1)] {
            tree.add(at, delta);
        }
        assert_eq!((tree.prefix(0), tree.prefix(1), tree.prefix(4), tree.prefix(10)), (0, 1, 2, 7));
    }
}
