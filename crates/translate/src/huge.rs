//! Whether the frame allocator can give a large page: a 2 MiB page needs a
//! free, aligned block of 512 frames, which a fragmented machine, or one
//! whose memory is full of small pages, may not have; a hugetlbfs-like pool
//! of large pages reserved up front is the other way to get them.
//!
//! The model counts blocks, not positions (ARCHITECTURE.md, "Modelling
//! choices: finite memory"). Physical memory for data pages is `blocks`
//! blocks of the large size; `fragmented` of them each hold one unmovable
//! small page. The allocator is idealised: it puts small pages first into
//! the fragmented blocks (already broken, so their other frames are free),
//! then fills whole blocks one at a time; a large page takes a block no
//! small page uses. So a request is granted when
//! `blocks - fragmented - blocks held by large pages - blocks small pages
//! spilled into` is at least the blocks the page spans. A page larger than
//! a block (1 GiB) spans several (contiguity beyond the count is not
//! modelled); a size between the smallest and the block counts as a block.

use serde::Serialize;

/// How a large page was had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// From the reserved pool: pinned, never evicted, never given back.
    Pool,
    /// A free block of general memory.
    Block,
    /// No free block: the caller falls back to small pages.
    Denied,
}

/// Large pages granted and denied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HugeCounters {
    /// Large pages mapped (pool pages included).
    pub granted: u64,
    /// Of those, pages from the pool.
    pub from_pool: u64,
    /// Requests for a large page that found no free block (the region was
    /// mapped with small pages, or a promotion did not happen).
    pub denied: u64,
}

#[derive(Clone, Debug)]
pub struct LargeBlocks {
    small_shift: u32,
    block_shift: u32,
    /// Blocks of general memory (the pool's excluded).
    blocks: u64,
    fragmented: u64,
    pool_free: u64,
    /// Blocks held by large pages of general memory.
    large_blocks: u64,
    /// Small pages mapped.
    small_pages: u64,
    pub counters: HugeCounters,
}

impl LargeBlocks {
    /// `memory_bytes` of physical memory for data pages (the resident limit,
    /// or the memory size), of which `pool` blocks are reserved as large
    /// pages and a `fragmentation` fraction of the rest broken.
    pub fn new(small_shift: u32, block_shift: u32, memory_bytes: u64, pool: u64, fragmentation: f64) -> LargeBlocks {
        let blocks = (memory_bytes >> block_shift).saturating_sub(pool);
        LargeBlocks {
            small_shift,
            block_shift,
            blocks,
            // Rounded to the nearest block: 1.0 breaks them all, 0.0 none.
            fragmented: (fragmentation * blocks as f64).round() as u64,
            pool_free: pool,
            large_blocks: 0,
            small_pages: 0,
            counters: HugeCounters::default(),
        }
    }

    /// Blocks a page of `shift` spans.
    fn span(&self, shift: u32) -> u64 {
        1 << shift.saturating_sub(self.block_shift)
    }

    /// Blocks no page uses.
    pub fn free_blocks(&self) -> u64 {
        let per_block = 1u64 << (self.block_shift - self.small_shift);
        let room_in_broken = self.fragmented * (per_block - 1);
        let spilled = self.small_pages.saturating_sub(room_in_broken).div_ceil(per_block);
        (self.blocks - self.fragmented).saturating_sub(self.large_blocks + spilled)
    }

    /// A fault (or a promotion) asks for a page of `shift`, larger than the
    /// smallest.
    pub fn request(&mut self, shift: u32) -> Grant {
        if shift == self.block_shift && self.pool_free > 0 {
            self.pool_free -= 1;
            self.counters.granted += 1;
            self.counters.from_pool += 1;
            return Grant::Pool;
        }
        if self.free_blocks() >= self.span(shift) {
            self.large_blocks += self.span(shift);
            self.counters.granted += 1;
            Grant::Block
        } else {
            self.counters.denied += 1;
            Grant::Denied
        }
    }

    /// A large page of general memory is mapped without a request (an
    /// evicted one swapped back in: the kernel finds it a block by
    /// compaction, which is not modelled).
    pub fn take(&mut self, shift: u32) {
        self.large_blocks += self.span(shift);
    }

    /// A page of `shift` was mapped (small) or left memory (either size;
    /// never a pool page).
    pub fn small_mapped(&mut self) {
        self.small_pages += 1;
    }

    pub fn released(&mut self, shift: u32, count: u64) {
        if shift == self.small_shift {
            self.small_pages -= count;
        } else {
            self.large_blocks -= self.span(shift) * count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn small_pages_fill_broken_blocks_first_then_whole_ones() {
        // 8 blocks of 2 MiB, a quarter broken: 6 whole, and 2 x 511 frames
        // of room for small pages before any whole block is touched.
        let mut blocks = LargeBlocks::new(12, 21, 16 * MIB, 0, 0.25);
        assert_eq!(blocks.free_blocks(), 6);
        for _ in 0..1022 {
            blocks.small_mapped();
        }
        assert_eq!(blocks.free_blocks(), 6);
        blocks.small_mapped();
        assert_eq!(blocks.free_blocks(), 5, "the 1023rd small page breaks a whole block");
        assert_eq!(blocks.request(21), Grant::Block);
        assert_eq!(blocks.free_blocks(), 4);
        assert_eq!(blocks.request(30), Grant::Denied, "a 1 GiB page spans 512 blocks");
        blocks.released(21, 1);
        blocks.released(12, 1);
        assert_eq!(blocks.free_blocks(), 6);
        assert_eq!(blocks.counters, HugeCounters { granted: 1, from_pool: 0, denied: 1 });
    }

    #[test]
    fn the_pool_serves_first_and_fragmentation_one_denies_the_rest() {
        let mut blocks = LargeBlocks::new(12, 21, 16 * MIB, 2, 1.0);
        assert_eq!(blocks.free_blocks(), 0);
        assert_eq!(blocks.request(21), Grant::Pool);
        assert_eq!(blocks.request(21), Grant::Pool);
        assert_eq!(blocks.request(21), Grant::Denied);
        assert_eq!(blocks.counters, HugeCounters { granted: 2, from_pool: 2, denied: 1 });
        // Unfragmented, the six blocks outside the pool all serve.
        let mut whole = LargeBlocks::new(12, 21, 16 * MIB, 2, 0.0);
        assert_eq!((0..8).map(|_| whole.request(21)).filter(|g| *g == Grant::Block).count(), 6);
    }
}
