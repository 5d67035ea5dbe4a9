//! Physical frames for data pages and page-table nodes, handed out
//! deterministically.
//!
//! Physical memory is carved hierarchically: the largest block size the page
//! table needs (1 GiB on x86-64) is split into blocks of the next size down
//! (2 MiB), and those into the smallest (4 KiB frames). Every allocation of a
//! size takes the next child of the block currently open at the size above,
//! opening a new one when it is used up. The `sequential` allocator takes
//! children in address order; `shuffled` takes them in a seeded random
//! order at every level, so physical addresses carry no trace of virtual
//! ones, as on a long-running machine. Either way a large page is always
//! aligned and contiguous, and the same seed gives the same addresses.
//!
//! Top-level blocks come from a pool of `memory.size` bytes (in shuffled
//! order, for `shuffled`); a run that exhausts it continues in the next
//! pool-sized stretch of addresses, so allocation never fails.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use crate::addr::Address;
use crate::config::{Allocator, TableShape};
use crate::rng::SplitMix64;

/// The block sizes (as shifts, ascending) a table of this shape allocates:
/// its frame size, its page sizes, and its node sizes rounded up to a power
/// of two of at least a frame.
pub fn block_shifts(shape: &TableShape) -> Vec<u32> {
    let mut shifts = vec![shape.offset_bits];
    shifts.extend(&shape.page_shifts);
    for &bits in &shape.index_bits {
        shifts.push(node_block_shift(shape, bits));
    }
    shifts.sort_unstable();
    shifts.dedup();
    shifts
}

/// Shift of the block a node with `index_bits` bits of index occupies.
pub fn node_block_shift(shape: &TableShape, index_bits: u32) -> u32 {
    let node_bytes = u64::from(shape.entry_bytes) << index_bits;
    node_bytes.next_power_of_two().trailing_zeros().max(shape.offset_bits)
}

/// The largest block a table of this shape allocates.
pub fn largest_block(shape: &TableShape) -> u64 {
    1 << block_shifts(shape).last().expect("at least the frame size")
}

/// The order in which a block's children are handed out.
#[derive(Clone, Debug)]
enum Order {
    /// Address order, of this many children (the sequential allocator):
    /// nothing to store.
    Address(u64),
    /// Child indices in a seeded random order.
    Shuffled(Arc<[u32]>),
}

impl Order {
    fn len(&self) -> usize {
        match self {
            Order::Address(children) => *children as usize,
            Order::Shuffled(order) => order.len(),
        }
    }

    fn child(&self, at: usize) -> u64 {
        match self {
            Order::Address(_) => at as u64,
            Order::Shuffled(order) => u64::from(order[at]),
        }
    }
}

/// The block currently being split at one size.
#[derive(Clone, Debug)]
struct OpenBlock {
    base: u64,
    order: Order,
    next: usize,
}

/// Pools of at least this many top-level blocks share their shuffle (see
/// `shared_pool_order`); smaller ones are cheaper to shuffle than to look up.
const SHARED_POOL_BLOCKS: u64 = 4096;

/// The last large pool order shuffled in this process, with the generator
/// it was drawn from (before the draws).
static LAST_POOL_ORDER: Mutex<Option<(SplitMix64, Arc<[u32]>)>> = Mutex::new(None);

/// `blocks` indices shuffled by `rng`, as `order` would shuffle them,
/// leaving `rng` where that shuffle would. A pool of small blocks in a large
/// memory (up to 2^24 of them) costs tens of milliseconds and megabytes to
/// shuffle, and every simulator of a sweep, a test or a nested machine's
/// allocators with the same seed and size draws the very same one: the last
/// one drawn is kept and shared, and a generator in the same state skips
/// the draws instead of making them.
fn shared_pool_order(rng: &mut SplitMix64, blocks: u64) -> Arc<[u32]> {
    if blocks < SHARED_POOL_BLOCKS {
        return shuffled(rng, blocks).into();
    }
    // A poisoned lock holds a whole entry or none: entries are written
    // in one assignment.
    let mut last = LAST_POOL_ORDER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((drawn_from, order)) = last.as_ref() {
        if drawn_from == rng && order.len() as u64 == blocks {
            rng.skip(blocks - 1);
            return Arc::clone(order);
        }
    }
    let drawn_from = rng.clone();
    let order: Arc<[u32]> = shuffled(rng, blocks).into();
    *last = Some((drawn_from, Arc::clone(&order)));
    order
}

/// `children` indices in the order `rng` shuffles them into.
fn shuffled(rng: &mut SplitMix64, children: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..children as u32).collect();
    rng.shuffle(&mut order);
    order
}

/// The frames of one physical space (`Out`: guest-physical for a guest's
/// memory, host-physical for the host's or a native machine's).
#[derive(Clone, Debug)]
pub struct FrameAllocator<Out: Address> {
    shifts: Vec<u32>,
    /// One per size except the largest: the parent block being split.
    open: Vec<Option<OpenBlock>>,
    /// Top-level blocks of the current pool, in hand-out order.
    pool: OpenBlock,
    pool_blocks: u64,
    pools_used: u64,
    rng: Option<SplitMix64>,
    allocated_bytes: u64,
    /// Per size (as `shifts`): blocks given back (pages evicted under a
    /// resident limit), handed out again before any new block, most
    /// recently freed first. Empty without a limit, so that nothing is
    /// reused and addresses are what they always were.
    released: Vec<Vec<u64>>,
    space: PhantomData<Out>,
}

/// The random stream the allocator draws from (see `SplitMix64::new`).
const FRAME_STREAM: u64 = 0x6672_616d_6573; // "frames"

impl<Out: Address> FrameAllocator<Out> {
    pub fn new(shape: &TableShape, memory_bytes: u64, allocator: Allocator, seed: u64) -> FrameAllocator<Out> {
        FrameAllocator::new_for(&[shape], memory_bytes, allocator, seed)
    }

    /// An allocator for the blocks of several tables at once (the host's
    /// pages and the shadow tables' nodes share host memory).
    pub fn new_for(shapes: &[&TableShape], memory_bytes: u64, allocator: Allocator, seed: u64) -> FrameAllocator<Out> {
        let mut shifts: Vec<u32> = shapes.iter().flat_map(|shape| block_shifts(shape)).collect();
        shifts.sort_unstable();
        shifts.dedup();
        let top = *shifts.last().expect("at least one size");
        let pool_blocks = memory_bytes >> top;
        assert!(pool_blocks > 0, "memory size validated against the largest block");
        let rng = match allocator {
            Allocator::Sequential => None,
            Allocator::Shuffled => Some(SplitMix64::new(seed, FRAME_STREAM)),
        };
        let mut allocator = FrameAllocator {
            open: vec![None; shifts.len() - 1],
            shifts,
            pool: OpenBlock { base: 0, order: Order::Address(0), next: 0 },
            pool_blocks,
            pools_used: 0,
            rng,
            allocated_bytes: 0,
            released: Vec::new(),
            space: PhantomData,
        };
        allocator.pool = allocator.new_pool();
        allocator
    }

    fn order(&mut self, children: u64) -> Order {
        match &mut self.rng {
            None => Order::Address(children),
            Some(rng) => Order::Shuffled(shuffled(rng, children).into()),
        }
    }

    fn new_pool(&mut self) -> OpenBlock {
        let top = *self.shifts.last().expect("sizes");
        let base = self.pools_used * (self.pool_blocks << top);
        self.pools_used += 1;
        let order = match &mut self.rng {
            None => Order::Address(self.pool_blocks),
            Some(rng) => Order::Shuffled(shared_pool_order(rng, self.pool_blocks)),
        };
        OpenBlock { base, order, next: 0 }
    }

    /// Physical base address of a new, aligned block of `1 << shift` bytes.
    /// `shift` must be one of the table's block sizes.
    pub fn allocate(&mut self, shift: u32) -> Out {
        let index = self.shifts.iter().position(|&s| s == shift).expect("a block size of this table");
        self.allocated_bytes += 1 << shift;
        if let Some(base) = self.released.get_mut(index).and_then(Vec::pop) {
            return Out::from_raw(base);
        }
        Out::from_raw(self.allocate_at(index))
    }

    /// Gives back the block of `1 << shift` bytes at `base` (a page evicted
    /// under a resident limit): the next allocation of that size takes it.
    pub fn release(&mut self, base: Out, shift: u32) {
        let index = self.shifts.iter().position(|&s| s == shift).expect("a block size of this table");
        if self.released.is_empty() {
            self.released = vec![Vec::new(); self.shifts.len()];
        }
        self.released[index].push(base.raw());
        self.allocated_bytes -= 1 << shift;
    }

    fn allocate_at(&mut self, index: usize) -> u64 {
        let shift = self.shifts[index];
        if index + 1 == self.shifts.len() {
            if self.pool.next == self.pool.order.len() {
                self.pool = self.new_pool();
            }
            let child = self.pool.order.child(self.pool.next);
            self.pool.next += 1;
            return self.pool.base + (child << shift);
        }
        let exhausted = self.open[index].as_ref().is_none_or(|block| block.next == block.order.len());
        if exhausted {
            let parent_shift = self.shifts[index + 1];
            let base = self.allocate_at(index + 1);
            let order = self.order(1 << (parent_shift - shift));
            self.open[index] = Some(OpenBlock { base, order, next: 0 });
        }
        let block = self.open[index].as_mut().expect("opened above");
        let child = block.order.child(block.next);
        block.next += 1;
        block.base + (child << shift)
    }

    /// Bytes handed out and not given back (data pages and table nodes).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Hpa;
    use std::collections::HashSet;

    /// Allocators of host-physical memory, which hand out bare integers
    /// for these tests.
    struct Frames(FrameAllocator<Hpa>);

    impl Frames {
        fn new(shape: &TableShape, memory_bytes: u64, allocator: Allocator, seed: u64) -> Frames {
            Frames(FrameAllocator::new(shape, memory_bytes, allocator, seed))
        }

        fn allocate(&mut self, shift: u32) -> u64 {
            self.0.allocate(shift).raw()
        }

        fn allocated_bytes(&self) -> u64 {
            self.0.allocated_bytes()
        }
    }

    fn x86_64() -> TableShape {
        TableShape { index_bits: vec![9; 4], offset_bits: 12, entry_bytes: 8, page_shifts: vec![12, 21, 30] }
    }

    #[test]
    fn block_sizes_follow_the_table() {
        assert_eq!(block_shifts(&x86_64()), vec![12, 21, 30]);
        let flat = TableShape { index_bits: vec![20], offset_bits: 12, entry_bytes: 4, page_shifts: vec![12] };
        // The single 2^20 x 4-byte node is 4 MiB.
        assert_eq!(block_shifts(&flat), vec![12, 22]);
        let x86_32 =
            TableShape { index_bits: vec![10, 10], offset_bits: 12, entry_bytes: 4, page_shifts: vec![12, 22] };
        assert_eq!(block_shifts(&x86_32), vec![12, 22]);
    }

    #[test]
    fn sequential_frames_come_in_address_order() {
        let mut frames = Frames::new(&x86_64(), 1 << 34, Allocator::Sequential, 0);
        assert_eq!(frames.allocate(12), 0);
        assert_eq!(frames.allocate(12), 4096);
        // The first 2 MiB block is being split into frames; the next 2 MiB
        // page is the next block.
        assert_eq!(frames.allocate(21), 2 << 20);
        assert_eq!(frames.allocate(12), 8192);
        assert_eq!(frames.allocate(30), 1 << 30);
        assert_eq!(frames.allocated_bytes(), 3 * 4096 + (2 << 20) + (1 << 30));
    }

    #[test]
    fn shuffled_blocks_are_aligned_distinct_and_reproducible() {
        let run = |seed| {
            let mut frames = Frames::new(&x86_64(), 4 << 30, Allocator::Shuffled, seed);
            (0..3000).map(|i| frames.allocate(if i % 100 == 0 { 21 } else { 12 })).collect::<Vec<u64>>()
        };
        let blocks = run(5);
        assert_eq!(blocks, run(5));
        assert_ne!(blocks, run(6));
        for (i, &base) in blocks.iter().enumerate() {
            let size = if i % 100 == 0 { 2 << 20 } else { 4096 };
            assert_eq!(base % size, 0, "block {i} is aligned");
        }
        // No two blocks overlap: frames are distinct and none falls inside a
        // 2 MiB page.
        let large: HashSet<u64> = blocks.iter().step_by(100).map(|b| b >> 21).collect();
        let small: Vec<u64> = blocks.iter().enumerate().filter(|(i, _)| i % 100 != 0).map(|(_, &b)| b).collect();
        assert_eq!(small.iter().collect::<HashSet<_>>().len(), small.len());
        assert!(small.iter().all(|b| !large.contains(&(b >> 21))));
        assert_ne!(small[1], small[0] + 4096, "consecutive frames are not adjacent");
    }

    #[test]
    fn released_blocks_are_handed_out_again_most_recent_first() {
        let mut frames = FrameAllocator::<Hpa>::new(&x86_64(), 1 << 34, Allocator::Sequential, 0);
        let first: Vec<u64> = (0..3).map(|_| frames.allocate(12).raw()).collect();
        frames.release(Hpa(first[0]), 12);
        frames.release(Hpa(first[2]), 12);
        assert_eq!(frames.allocated_bytes(), 4096);
        assert_eq!(frames.allocate(12).raw(), first[2]);
        assert_eq!(frames.allocate(12).raw(), first[0]);
        assert_eq!(frames.allocate(12).raw(), 3 * 4096, "then new frames, where they would have been");
        assert_eq!(frames.allocate(21).raw(), 2 << 20, "a size nothing was given back of is unaffected");
    }

    /// A shared pool order is the order a shuffle of its own would give,
    /// and leaves the generator where that shuffle would, whether the call
    /// drew it or found it drawn. Then allocators alike hand out the same
    /// addresses when the second reuses the first's pool order, at every
    /// size (the sizes below the pool draw from the generator after the
    /// pool's shuffle), and so does one built after another seed's
    /// allocator took the place of the shared order. One test, so that its
    /// parts do not replace each other's shared order while they run.
    #[test]
    fn a_shared_pool_order_is_the_one_a_shuffle_of_its_own_gives() {
        let blocks = SHARED_POOL_BLOCKS + 3;
        let mut own = SplitMix64::new(11, FRAME_STREAM);
        let expected = shuffled(&mut own, blocks);
        for _ in 0..2 {
            let mut rng = SplitMix64::new(11, FRAME_STREAM);
            assert_eq!(*shared_pool_order(&mut rng, blocks), *expected);
            assert_eq!(rng, own, "the generator moved on as a shuffle moves it");
        }
        // A two-level table of 4 KiB and 2 MiB pages in 16 GiB: a pool of
        // 8,192 blocks of 2 MiB, enough to be shared.
        let shape = TableShape { index_bits: vec![9, 9], offset_bits: 12, entry_bytes: 8, page_shifts: vec![12, 21] };
        let addresses = |seed| {
            let mut frames = Frames::new(&shape, 1 << 34, Allocator::Shuffled, seed);
            (0..5000).map(|i| frames.allocate(if i % 7 == 0 { 21 } else { 12 })).collect::<Vec<u64>>()
        };
        let first = addresses(5);
        assert_eq!(addresses(5), first);
        assert_ne!(addresses(6), first);
        assert_eq!(addresses(5), first);
    }

    #[test]
    fn sequential_pools_store_no_order() {
        let frames = Frames::new(&x86_64(), 1 << 40, Allocator::Sequential, 0);
        assert!(matches!(frames.0.pool.order, Order::Address(1024)));
    }

    #[test]
    fn exhausting_the_pool_moves_on_to_the_next() {
        let mut frames = Frames::new(&x86_64(), 2 << 30, Allocator::Shuffled, 1);
        let bases: Vec<u64> = (0..3).map(|_| frames.allocate(30)).collect();
        let mut first_pool = bases[..2].to_vec();
        first_pool.sort_unstable();
        assert_eq!(first_pool, vec![0, 1 << 30]);
        assert!(bases[2] >= 2 << 30);
    }
}
