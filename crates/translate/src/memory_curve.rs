//! The LRU memory curve (`memory.curve`): what paging under LRU does at each
//! of several resident limits, answered in one pass over the references
//! by stack distances over pages (Mattson et al.'s inclusion property: the
//! pages LRU keeps in a memory of k pages are the k most recently used, so
//! a reference faults in exactly the memories smaller than its stack
//! distance).
//!
//! The stack is a recency list with a marker at the depth of each limit.
//! A reference moves its page to the top, and every page sitting on a
//! marker above the page's old depth crosses it: in that memory the page
//! is evicted, at the moment a separate run evicts it, and goes to swap if
//! it was written since it last became resident there. Whether it was is
//! one number per page: the smallest limit at which it is dirty (it is
//! dirty at every larger one, whose residency periods are longer).
//!
//! The paging counters this gives equal those of separate runs at each
//! limit under `memory.replacement = "lru"` (the tests check it). The TLB
//! metrics of those runs differ by limit (every eviction invalidates the
//! page's translations and the page-walk caches), and one pass does not
//! give them: the curve reports paging only.

use mmusim_trace::Access;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::config::PagingCosts;
use crate::ByteSize;

/// A node index; `NONE` is no node.
type NodeId = u32;
const NONE: NodeId = u32::MAX;

/// A page of one address space: its VM, its address space within the VM,
/// its page number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PageId {
    vm: u16,
    context: u16,
    page: u64,
}

#[derive(Clone, Debug)]
struct Node {
    page: PageId,
    /// Towards the top (more recent).
    prev: NodeId,
    /// Towards the bottom.
    next: NodeId,
    /// Which limits hold the page: it is resident in every memory of index
    /// `bucket` or more (`bucket == sizes.len()`: in none).
    bucket: u8,
    /// The smallest limit (by index) at which the page was written since
    /// it last became resident; `sizes.len()` when at none.
    dirty_from: u8,
}

/// The recency stack of one memory: the machine's, or one VM's guest.
#[derive(Clone, Debug, Default)]
struct PageStack {
    index: FxHashMap<PageId, NodeId>,
    nodes: Vec<Node>,
    head: NodeId,
    /// The node at depth `sizes[i]` (1 is the top), once the stack is that
    /// deep.
    markers: Vec<NodeId>,
    /// The top two pages are in the opposite order to the list's.
    swapped: bool,
}

/// Per limit: what separate runs count one by one.
#[derive(Clone, Debug, Default)]
struct LimitCounts {
    evictions: u64,
    swap_outs: u64,
}

/// The curve under construction: one pass over every reference.
#[derive(Clone, Debug)]
pub struct MemoryCurve {
    limits: Vec<ByteSize>,
    /// The limits in pages, ascending.
    sizes: Vec<u64>,
    page_shift: u32,
    /// Swap traffic is priced per smallest page.
    units: u64,
    costs: PagingCosts,
    /// One memory per VM when virtualized (each guest's limit is its own).
    per_vm: bool,
    stacks: Vec<PageStack>,
    first_touches: u64,
    counts: Vec<LimitCounts>,
    /// References to a page seen before, by the page's bucket then: one in
    /// bucket b faults at the limits below index b.
    refaults: Vec<u64>,
}

/// Paging at one resident limit, as a run with that limit under LRU
/// reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CurvePoint {
    pub resident: ByteSize,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub evictions: u64,
    pub swap_outs: u64,
    pub swap_ins: u64,
    pub invalidations: u64,
    pub resident_peak: u64,
    pub paging_cycles: u64,
}

impl MemoryCurve {
    /// A curve over `limits` (ascending, distinct, each a whole number of
    /// pages of `1 << page_shift` bytes: resolution checks it), with pages
    /// of that size, swap priced per page of `1 << smallest_shift` bytes.
    pub fn new(limits: &[ByteSize], page_shift: u32, smallest_shift: u32, costs: PagingCosts, per_vm: bool) -> Self {
        assert!(limits.len() < usize::from(u8::MAX), "resolution bounds the number of limits");
        let sizes: Vec<u64> = limits.iter().map(|l| l.0 >> page_shift).collect();
        assert!(sizes.windows(2).all(|w| w[0] < w[1]) && sizes[0] >= 1, "resolution sorts the limits");
        MemoryCurve {
            limits: limits.to_vec(),
            counts: vec![LimitCounts::default(); sizes.len()],
            refaults: vec![0; sizes.len() + 1],
            sizes,
            page_shift,
            units: 1 << (page_shift - smallest_shift),
            costs,
            per_vm,
            stacks: Vec::new(),
            first_touches: 0,
        }
    }

    /// Takes in a batch of references, in order: each page every reference
    /// touches (a reference across a page boundary touches each).
    pub fn observe(&mut self, accesses: &[Access]) {
        for access in accesses {
            let write = access.kind.writes();
            let first = access.addr >> self.page_shift;
            let last = access.last_byte() >> self.page_shift;
            for page in first..=last {
                self.reference(PageId { vm: access.vm, context: access.context, page }, write);
            }
        }
    }

    fn reference(&mut self, page: PageId, write: bool) {
        let memory = if self.per_vm { usize::from(page.vm) } else { 0 };
        if self.stacks.len() <= memory {
            let markers = vec![NONE; self.sizes.len()];
            self.stacks.resize_with(memory + 1, || PageStack {
                head: NONE,
                markers: markers.clone(),
                ..Default::default()
            });
        }
        let limits = self.sizes.len() as u8;
        let stack = &mut self.stacks[memory];
        let mut found = None;
        if stack.head != NONE {
            // The common cases, found without hashing: the top page again,
            // or the page under it (fetches and data references alternate
            // between two pages). Under the smallest limit, at least 3
            // pages, the two swap places with nothing else moving, so the
            // list is only put in order when another page comes
            // (`swapped`).
            let (first, second) = stack.top_two();
            if stack.nodes[first as usize].page == page {
                if write {
                    stack.nodes[first as usize].dirty_from = 0;
                }
                return;
            }
            if second != NONE && stack.nodes[second as usize].page == page {
                if self.sizes[0] >= 3 {
                    stack.swapped = !stack.swapped;
                    if write {
                        stack.nodes[second as usize].dirty_from = 0;
                    }
                    return;
                }
                found = Some(second);
            }
            stack.settle();
        }
        let found = found.or_else(|| stack.index.get(&page).copied());
        match found {
            Some(node) => {
                let bucket = stack.nodes[node as usize].bucket;
                self.refaults[usize::from(bucket)] += 1;
                stack.lift(node, usize::from(bucket), &mut self.counts);
                let n = &mut stack.nodes[node as usize];
                n.dirty_from = if write { 0 } else { n.dirty_from.max(bucket) };
            }
            None => {
                self.first_touches += 1;
                let node = stack.nodes.len() as NodeId;
                let dirty_from = if write { 0 } else { limits };
                stack.nodes.push(Node { page, prev: NONE, next: NONE, bucket: 0, dirty_from });
                stack.index.insert(page, node);
                stack.push_new(node, &self.sizes, &mut self.counts);
            }
        }
    }

    /// The curve: one point per limit, ascending.
    pub fn points(&self) -> Vec<CurvePoint> {
        let costs = self.costs;
        (0..self.sizes.len())
            .map(|i| {
                let counts = &self.counts[i];
                // A reference faults at limit i when its page was resident
                // at larger limits only, or at none.
                let major_faults: u64 = self.refaults_above(i);
                let resident_peak: u64 = self.stacks.iter().map(|s| (s.nodes.len() as u64).min(self.sizes[i])).sum();
                let cycles = u128::from(costs.minor_fault) * u128::from(self.first_touches)
                    + u128::from(costs.major_fault) * u128::from(self.units) * u128::from(major_faults)
                    + u128::from(costs.swap_out) * u128::from(self.units) * u128::from(counts.swap_outs)
                    + u128::from(costs.invalidation) * u128::from(counts.evictions);
                CurvePoint {
                    resident: self.limits[i],
                    minor_faults: self.first_touches,
                    major_faults,
                    evictions: counts.evictions,
                    swap_outs: counts.swap_outs,
                    swap_ins: major_faults,
                    invalidations: counts.evictions,
                    resident_peak,
                    paging_cycles: u64::try_from(cycles).unwrap_or(u64::MAX),
                }
            })
            .collect()
    }

    fn refaults_above(&self, i: usize) -> u64 {
        self.refaults[i + 1..].iter().sum()
    }
}

impl PageStack {
    /// The top page and the one under it (`NONE` if none), in recency
    /// order; the stack is not empty.
    fn top_two(&self) -> (NodeId, NodeId) {
        let under = self.nodes[self.head as usize].next;
        if self.swapped {
            (under, self.head)
        } else {
            (self.head, under)
        }
    }

    /// Puts the list in recency order: swaps the top two if `swapped`.
    fn settle(&mut self) {
        if !std::mem::take(&mut self.swapped) {
            return;
        }
        let (top, under) = (self.head, self.nodes[self.head as usize].next);
        let below = self.nodes[under as usize].next;
        self.nodes[under as usize].prev = NONE;
        self.nodes[under as usize].next = top;
        self.nodes[top as usize].prev = under;
        self.nodes[top as usize].next = below;
        if below != NONE {
            self.nodes[below as usize].prev = top;
        }
        self.head = under;
    }

    /// The page on marker `i` moves one deeper, out of the memory of limit
    /// `i`: evicted there, and written to swap if dirty there. The marker
    /// moves up to the page above it (`new_top` when it was the top: the
    /// page being referenced is going there).
    fn cross(&mut self, i: usize, new_top: NodeId, counts: &mut [LimitCounts]) {
        let on = self.markers[i];
        let node = &mut self.nodes[on as usize];
        node.bucket = i as u8 + 1;
        counts[i].evictions += 1;
        counts[i].swap_outs += u64::from(usize::from(node.dirty_from) <= i);
        self.markers[i] = if node.prev == NONE { new_top } else { node.prev };
    }

    /// Moves `node` (in `bucket`, not the top) to the top. Every page on a
    /// marker above it crosses that marker; a marker on `node` itself
    /// passes to the page above it.
    fn lift(&mut self, node: NodeId, bucket: usize, counts: &mut [LimitCounts]) {
        for i in 0..bucket {
            self.cross(i, node, counts);
        }
        let (prev, next) = {
            let n = &self.nodes[node as usize];
            (n.prev, n.next)
        };
        if self.markers.get(bucket) == Some(&node) {
            self.markers[bucket] = prev;
        }
        // Unlink (it is not the top, so it has a page above).
        self.nodes[prev as usize].next = next;
        if next != NONE {
            self.nodes[next as usize].prev = prev;
        }
        self.push_top(node);
        self.nodes[node as usize].bucket = 0;
    }

    /// Puts a page never seen before on top: every page on a marker
    /// crosses it, and a marker the stack has just grown deep enough for
    /// starts on the bottom page.
    fn push_new(&mut self, node: NodeId, sizes: &[u64], counts: &mut [LimitCounts]) {
        let depth = self.nodes.len() as u64;
        for (i, &size) in sizes.iter().enumerate() {
            if self.markers[i] != NONE {
                self.cross(i, node, counts);
            } else {
                if depth == size {
                    // The stack is exactly this deep: its bottom is the
                    // page below the old top (or the new page, alone).
                    self.markers[i] = self.bottom_after_push(node);
                }
                // Deeper markers do not exist yet either.
                break;
            }
        }
        self.push_top(node);
    }

    /// The bottom page once `node` is pushed on top.
    fn bottom_after_push(&self, node: NodeId) -> NodeId {
        let mut bottom = self.head;
        if bottom == NONE {
            return node;
        }
        // Only on the reference that makes the stack as deep as a limit:
        // once per limit.
        while self.nodes[bottom as usize].next != NONE {
            bottom = self.nodes[bottom as usize].next;
        }
        bottom
    }

    fn push_top(&mut self, node: NodeId) {
        let head = self.head;
        let n = &mut self.nodes[node as usize];
        n.prev = NONE;
        n.next = head;
        if head != NONE {
            self.nodes[head as usize].prev = node;
        }
        self.head = node;
    }
}
