//! Which pages are resident under a resident limit, and which one a fault
//! evicts when the limit is reached (`memory.replacement`).
//!
//! The set knows pages by `PageKey` and their order; it never touches a
//! page table. The caller (the OS's side of the walker, `walker::paging`)
//! admits each page a fault maps, asks for victims while the set is over
//! its limit, and does the eviction itself: clearing the entry, writing
//! the page to swap, invalidating its translations. The one thing a policy
//! needs from the table, the accessed bit, it asks through a closure.
//!
//! Every policy keeps the resident pages in one list in order of admission,
//! oldest first:
//! - `lru`: every reference stamps its page with the time (`touch`); the
//!   victim is the page with the oldest stamp. Exact recency over every
//!   reference. (A reference costs one store, not a move in a list: the
//!   victim is found through a heap of stamps kept lazily, each page's
//!   entry refreshed only when it reaches the top; a small table from
//!   addresses to pages spares most references a page-table lookup.)
//! - `fifo`: the victim is the oldest; references change nothing.
//! - `clock`: the oldest page is under the hand. If its accessed bit is
//!   set, the hand clears it and the page goes to the newest end (its
//!   second chance); the first page found with the bit clear is the victim.
//!   Only walks set the bit, so a page whose translation stays cached looks
//!   unused.
//! - `random`: a resident page drawn with the seed, never the page being
//!   admitted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::config::PageReplacement;
use crate::rng::SplitMix64;

/// A mapped page: address space (numbered as the table numbers them), base
/// address, and size as a shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub space: usize,
    pub base: u64,
    pub shift: u32,
}

impl PageKey {
    pub fn bytes(self) -> u64 {
        1 << self.shift
    }

    /// The last address of the page.
    pub fn last(self) -> u64 {
        self.base + (self.bytes() - 1)
    }
}

/// "No node".
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    key: PageKey,
    older: u32,
    newer: u32,
    /// Position in `dense` (random only).
    dense: u32,
}

/// A page no node holds (the key of a freed node).
const NO_PAGE: PageKey = PageKey { space: usize::MAX, base: 0, shift: 0 };

/// Slots of the LRU's table from addresses to pages (a power of two).
const MEMO_SLOTS: usize = 1 << 12;

/// Why a policy chose a victim, where it has a reason to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VictimReason {
    /// Clock: the hand found the accessed bit clear on its first look.
    Unreferenced,
    /// Clock: the hand had cleared the bit on an earlier pass and found it
    /// still clear (the page's second chance ran out).
    SecondChanceSpent,
    /// Any other policy's choice.
    Policy,
}

/// The resident pages of one memory, in the policy's order.
#[derive(Clone, Debug)]
pub struct Residency {
    limit: u64,
    policy: PageReplacement,
    resident_bytes: u64,
    /// Bytes the limit also holds that are never evicted (the host's page
    /// tables, under a host limit).
    pinned_bytes: u64,
    index: FxHashMap<PageKey, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    oldest: u32,
    newest: u32,
    /// Random: every resident node, for drawing one.
    dense: Vec<u32>,
    rng: SplitMix64,
    /// Clock: nodes whose accessed bit the hand has cleared (they are on
    /// their second chance), by node.
    passed: Vec<bool>,
    peak_pages: u64,
    /// LRU: per node its last reference's time, and its incarnation (a
    /// node freed and reused is a new one).
    stamps: Vec<u64>,
    generations: Vec<u32>,
    /// The latest stamp given: a page admitted is stamped after it.
    now: u64,
    /// LRU: (stamp, node, incarnation), at most one entry per resident
    /// page, whose stamp may be older than the page's.
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// LRU: per slot of smallest-page numbers, the node last touched there.
    memo: Vec<u32>,
    memo_shift: u32,
}

/// The random stream of the `random` policy (see `SplitMix64::new`).
const RANDOM_STREAM: u64 = 0x7265_7369_6465_6e74; // "resident"

impl Residency {
    pub fn new(limit: u64, policy: PageReplacement, seed: u64) -> Residency {
        Residency {
            limit,
            policy,
            resident_bytes: 0,
            pinned_bytes: 0,
            index: FxHashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            oldest: NIL,
            newest: NIL,
            dense: Vec::new(),
            rng: SplitMix64::new(seed, RANDOM_STREAM),
            passed: Vec::new(),
            peak_pages: 0,
            stamps: Vec::new(),
            generations: Vec::new(),
            now: 0,
            heap: BinaryHeap::new(),
            memo: if policy == PageReplacement::Lru { vec![NIL; MEMO_SLOTS] } else { Vec::new() },
            memo_shift: 12,
        }
    }

    /// Addresses are looked up in the LRU's table by pages of `shift` (the
    /// smallest).
    pub fn with_smallest_page(mut self, shift: u32) -> Residency {
        self.memo_shift = shift;
        self
    }

    pub fn policy(&self) -> PageReplacement {
        self.policy
    }

    /// Whether references (not only faults) change the order: the
    /// simulator then reports every reference's page (`touch`).
    pub fn tracks_every_reference(&self) -> bool {
        self.policy == PageReplacement::Lru
    }

    pub fn resident_pages(&self) -> u64 {
        self.index.len() as u64
    }

    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes
    }

    /// The most pages resident at once.
    pub fn peak_pages(&self) -> u64 {
        self.peak_pages
    }

    pub fn contains(&self, key: PageKey) -> bool {
        self.index.contains_key(&key)
    }

    /// Whether the resident pages (and the pinned bytes) exceed the limit.
    pub fn over_limit(&self) -> bool {
        self.resident_bytes + self.pinned_bytes > self.limit
    }

    /// Changes the limit (a balloon inflating or deflating); the caller
    /// evicts what no longer fits.
    pub fn set_limit(&mut self, bytes: u64) {
        self.limit = bytes;
    }

    /// The page no key is: what eviction keeps when no page is being
    /// admitted.
    pub const NOTHING: PageKey = NO_PAGE;

    /// Sets the bytes the limit holds besides the resident pages, which
    /// are never evicted.
    pub fn set_pinned_bytes(&mut self, bytes: u64) {
        self.pinned_bytes = bytes;
    }

    /// A page became resident (newest in every order).
    pub fn admit(&mut self, key: PageKey) {
        debug_assert!(!self.index.contains_key(&key), "{key:?} is resident already");
        let node = Node { key, older: self.newest, newer: NIL, dense: self.dense.len() as u32 };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                self.passed[id as usize] = false;
                self.generations[id as usize] += 1;
                id
            }
            None => {
                self.nodes.push(node);
                self.passed.push(false);
                self.stamps.push(0);
                self.generations.push(0);
                (self.nodes.len() - 1) as u32
            }
        };
        if self.policy == PageReplacement::Lru {
            self.now += 1;
            self.stamps[id as usize] = self.now;
            self.heap.push(Reverse((self.now, id, self.generations[id as usize])));
        }
        self.link_newest(id);
        if self.policy == PageReplacement::Random {
            self.dense.push(id);
        }
        self.index.insert(key, id);
        self.resident_bytes += key.bytes();
    }

    /// Records the pages resident now toward the peak (once a fault's
    /// evictions are done: the set may exceed the limit in between).
    pub fn record_peak(&mut self) {
        self.peak_pages = self.peak_pages.max(self.index.len() as u64);
    }

    /// The last reference to `va` of `space` was at time `stamp` (times
    /// only grow): if the LRU's table knows its page, stamps it and returns
    /// true; else the caller finds the page and calls `touch`. (The other
    /// policies' orders are of admission, which references do not change:
    /// always true.)
    #[inline]
    pub fn touch_address(&mut self, space: usize, va: u64, stamp: u64) -> bool {
        if self.policy != PageReplacement::Lru {
            return true;
        }
        let id = self.memo[self.memo_slot(space, va)];
        match self.nodes.get(id as usize) {
            Some(node) if node.key.space == space && node.key.base <= va && va <= node.key.last() => {
                self.stamp(id, stamp);
                true
            }
            _ => false,
        }
    }

    /// A stamp newer than every one given so far (and older than the next
    /// reference's, whose stamps leave room between references): for
    /// references the caller makes between the trace's (a walk's reads of
    /// table pages).
    pub fn next_stamp(&mut self) -> u64 {
        self.now += 1;
        self.now
    }

    #[inline]
    fn stamp(&mut self, id: u32, stamp: u64) {
        self.stamps[id as usize] = stamp;
        self.now = self.now.max(stamp);
    }

    fn memo_slot(&self, space: usize, va: u64) -> usize {
        ((va >> self.memo_shift) as usize ^ space.wrapping_mul(0x9e37_79b9)) & (MEMO_SLOTS - 1)
    }

    /// The last reference to `va`, in the resident page `key`, was at time
    /// `stamp` (LRU's recency).
    pub fn touch(&mut self, key: PageKey, va: u64, stamp: u64) {
        if self.policy != PageReplacement::Lru {
            return;
        }
        if let Some(&id) = self.index.get(&key) {
            self.stamp(id, stamp);
            let slot = self.memo_slot(key.space, va);
            self.memo[slot] = id;
        }
    }

    /// LRU: the resident node with the oldest stamp (not `keep`'s, which
    /// is the newest).
    fn least_recently_used(&mut self) -> u32 {
        loop {
            let Reverse((stamp, id, generation)) = self.heap.pop().expect("every resident page has an entry");
            if self.generations[id as usize] != generation || self.nodes[id as usize].key == NO_PAGE {
                continue; // the page left; its node may be another's now
            }
            let current = self.stamps[id as usize];
            if current == stamp {
                return id;
            }
            self.heap.push(Reverse((current, id, generation)));
        }
    }

    /// The page left residency some other way (a THP promotion replaced
    /// it); false if it was not resident.
    pub fn remove(&mut self, key: PageKey) -> bool {
        let Some(id) = self.index.remove(&key) else { return false };
        self.unlink(id);
        if self.policy == PageReplacement::Random {
            let at = self.nodes[id as usize].dense as usize;
            self.dense.swap_remove(at);
            if let Some(&moved) = self.dense.get(at) {
                self.nodes[moved as usize].dense = at as u32;
            }
        }
        self.nodes[id as usize].key = NO_PAGE;
        self.free.push(id);
        self.resident_bytes -= key.bytes();
        true
    }

    /// Chooses the next victim (never `keep`, the page being admitted) and
    /// removes it from the set. `test_and_clear_accessed` (clock) reads a
    /// page's accessed bit and clears it. `None` only if `keep` is the one
    /// page resident.
    pub fn evict_one(
        &mut self,
        keep: PageKey,
        mut test_and_clear_accessed: impl FnMut(PageKey) -> bool,
    ) -> Option<(PageKey, VictimReason)> {
        if self.index.len() < 2 {
            return None;
        }
        let (victim, reason) = match self.policy {
            PageReplacement::Lru => {
                let id = self.least_recently_used();
                (self.nodes[id as usize].key, VictimReason::Policy)
            }
            PageReplacement::Fifo => {
                let id = if self.nodes[self.oldest as usize].key == keep {
                    self.nodes[self.oldest as usize].newer
                } else {
                    self.oldest
                };
                (self.nodes[id as usize].key, VictimReason::Policy)
            }
            PageReplacement::Random => {
                let id = match self.index.get(&keep) {
                    Some(&keep_id) => {
                        let last = self.dense.len() - 1;
                        let drawn = self.dense[self.rng.below(last as u64) as usize];
                        // Drawn among all but one position: the page being
                        // admitted stands in for the last one if drawn.
                        if drawn == keep_id {
                            self.dense[last]
                        } else {
                            drawn
                        }
                    }
                    // Nothing to keep (a balloon inflating): any page.
                    None => self.dense[self.rng.below(self.dense.len() as u64) as usize],
                };
                (self.nodes[id as usize].key, VictimReason::Policy)
            }
            PageReplacement::Clock => loop {
                let id = self.oldest;
                let key = self.nodes[id as usize].key;
                // The hand always finds a victim within two laps: the first
                // clears every bit it passes.
                if key != keep && !test_and_clear_accessed(key) {
                    let reason = if self.passed[id as usize] {
                        VictimReason::SecondChanceSpent
                    } else {
                        VictimReason::Unreferenced
                    };
                    break (key, reason);
                }
                if key != keep {
                    self.passed[id as usize] = true;
                }
                self.unlink(id);
                self.link_newest(id);
            },
        };
        self.remove(victim);
        Some((victim, reason))
    }

    fn unlink(&mut self, id: u32) {
        let Node { older, newer, .. } = self.nodes[id as usize];
        match older {
            NIL => self.oldest = newer,
            older => self.nodes[older as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            newer => self.nodes[newer as usize].older = older,
        }
    }

    fn link_newest(&mut self, id: u32) {
        let node = &mut self.nodes[id as usize];
        node.older = self.newest;
        node.newer = NIL;
        match self.newest {
            NIL => self.oldest = id,
            newest => self.nodes[newest as usize].newer = id,
        }
        self.newest = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u64) -> PageKey {
        PageKey { space: 0, base: n << 12, shift: 12 }
    }

    /// Admits pages one by one into a limit of `frames` 4 KiB pages,
    /// evicting as needed; returns the victims in order.
    fn run(policy: PageReplacement, frames: u64, refs: &[u64], accessed: &mut Vec<u64>) -> Vec<u64> {
        let mut set = Residency::new(frames << 12, policy, 1);
        let mut victims = Vec::new();
        for (time, &n) in (1..).zip(refs) {
            if set.contains(page(n)) {
                if !set.touch_address(0, n << 12, time) {
                    set.touch(page(n), n << 12, time);
                }
                continue;
            }
            set.admit(page(n));
            while set.over_limit() {
                let (victim, _) = set
                    .evict_one(page(n), |key| {
                        let was = accessed.contains(&(key.base >> 12));
                        accessed.retain(|&a| a != key.base >> 12);
                        was
                    })
                    .expect("a victim");
                victims.push(victim.base >> 12);
            }
        }
        victims
    }

    #[test]
    fn lru_evicts_the_least_recently_touched_and_fifo_the_oldest() {
        // Three frames; 1 is touched again before 4 arrives.
        let refs = [1, 2, 3, 1, 4, 5];
        assert_eq!(run(PageReplacement::Lru, 3, &refs, &mut Vec::new()), vec![2, 3]);
        assert_eq!(run(PageReplacement::Fifo, 3, &refs, &mut Vec::new()), vec![1, 2]);
    }

    #[test]
    fn clock_gives_pages_with_the_accessed_bit_a_second_chance() {
        // Pages 1 and 3 have their bits set; 2 does not. Admitting 4 into
        // three frames: the hand clears 1's bit and passes it, evicts 2.
        let mut accessed = vec![1, 3];
        assert_eq!(run(PageReplacement::Clock, 3, &[1, 2, 3, 4], &mut accessed), vec![2]);
        assert_eq!(accessed, vec![3], "the hand stopped at 2: 3's bit is untouched");
        // Every bit set: a full lap clears them all, then the first page goes.
        let mut accessed = vec![1, 2, 3];
        assert_eq!(run(PageReplacement::Clock, 3, &[1, 2, 3, 4], &mut accessed), vec![1]);
    }

    #[test]
    fn clock_names_why_it_chose() {
        let mut set = Residency::new(2 << 12, PageReplacement::Clock, 0);
        set.admit(page(1));
        set.admit(page(2));
        set.admit(page(3));
        let mut bits = vec![1u64];
        let mut accessed = |key: PageKey| {
            let was = bits.contains(&(key.base >> 12));
            bits.retain(|&b| b != key.base >> 12);
            was
        };
        // 1 has its bit: passed; 2 has none: evicted unreferenced.
        assert_eq!(set.evict_one(page(3), &mut accessed), Some((page(2), VictimReason::Unreferenced)));
        set.admit(page(4));
        // Now 3 (admitted with no bit here) then 1 (already passed): 3 is
        // unreferenced and goes first.
        assert_eq!(set.evict_one(page(4), &mut accessed), Some((page(3), VictimReason::Unreferenced)));
        set.admit(page(5));
        assert_eq!(set.evict_one(page(5), &mut accessed), Some((page(1), VictimReason::SecondChanceSpent)));
    }

    #[test]
    fn random_never_evicts_the_page_being_admitted_and_is_seeded() {
        let draws = |seed| {
            let mut set = Residency::new(4 << 12, PageReplacement::Random, seed);
            let mut victims = Vec::new();
            for n in 0..200 {
                set.admit(page(n));
                while set.over_limit() {
                    let (victim, _) = set.evict_one(page(n), |_| unreachable!("random reads no bits")).unwrap();
                    assert_ne!(victim, page(n));
                    victims.push(victim.base >> 12);
                }
                assert_eq!(set.resident_pages(), (n + 1).min(4));
            }
            victims
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }

    #[test]
    fn large_pages_count_their_bytes() {
        let mut set = Residency::new(4 << 20, PageReplacement::Fifo, 0);
        let large = PageKey { space: 0, base: 2 << 20, shift: 21 };
        set.admit(page(1));
        set.admit(page(2));
        set.admit(large);
        assert!(!set.over_limit());
        set.record_peak();
        set.admit(PageKey { space: 1, base: 0, shift: 21 });
        assert!(set.over_limit());
        // The two small pages go before the limit is met again.
        let keep = PageKey { space: 1, base: 0, shift: 21 };
        assert_eq!(set.evict_one(keep, |_| false).unwrap().0, page(1));
        assert!(set.over_limit());
        assert_eq!(set.evict_one(keep, |_| false).unwrap().0, page(2));
        assert!(!set.over_limit());
        set.record_peak();
        assert_eq!(set.peak_pages(), 3);
        assert!(set.remove(large));
        assert!(!set.remove(large));
        assert_eq!(set.resident_bytes(), 2 << 20);
    }
}
