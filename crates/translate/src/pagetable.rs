//! Radix page tables, one per address space, filled on demand.
//!
//! A table has levels 0 (the root) to n-1; an entry at level i either points
//! to a node of level i+1 or is a leaf mapping a page of `1 << shift[i]`
//! bytes. The first touch of an unmapped virtual page is a minor fault: the
//! missing nodes and the page's frame are allocated (each node is one block
//! of the frame allocator) and the walk then proceeds as usual. Which page
//! size backs an address is the page-size policy's choice.

use std::marker::PhantomData;

use rustc_hash::FxHashMap;

use crate::addr::Address;
use crate::config::TableShape;
use crate::frames::{node_block_shift, FrameAllocator};
use crate::huge::{Grant, HugeCounters, LargeBlocks};
use crate::residency::PageKey;

/// Most levels a table may have (5-level x86-64 uses 5).
pub const MAX_LEVELS: usize = 8;

/// An entry's flags (`Level::flags`).
const PRESENT: u8 = 1;
const LEAF: u8 = 1 << 1;
const ACCESSED: u8 = 1 << 2;
const DIRTY: u8 = 1 << 3;

/// Which page size backs each virtual page.
#[derive(Clone, Debug)]
pub enum PagePolicy {
    Fixed(u32),
    /// (start, end, shift) zones, sorted and disjoint; `default` elsewhere.
    Ranges {
        default: u32,
        ranges: Vec<(u64, u64, u32)>,
    },
    /// Small pages until `promote_after` of a large region's small pages are
    /// touched, then one large page.
    Thp {
        small: u32,
        large: u32,
        promote_after: u32,
    },
}

impl PagePolicy {
    /// The page shift for `va` under the fixed and ranges policies: the
    /// largest mappable size up to its zone's whose aligned page lies wholly
    /// in the zone.
    fn static_shift(&self, va: u64, mappable: &[u32]) -> u32 {
        match self {
            PagePolicy::Fixed(shift) => *shift,
            PagePolicy::Ranges { default, ranges } => {
                let zone = ranges.iter().find(|(start, end, _)| (*start..*end).contains(&va));
                let wanted = zone.map_or(*default, |z| z.2);
                for &shift in mappable.iter().rev().filter(|&&s| s <= wanted) {
                    let page = va >> shift << shift;
                    let page_end = page.saturating_add((1 << shift) - 1);
                    let fits = match zone {
                        Some(&(start, end, _)) => page >= start && page_end < end,
                        None => ranges.iter().all(|&(start, end, _)| page_end < start || page >= end),
                    };
                    if fits {
                        return shift;
                    }
                }
                mappable[0]
            }
            PagePolicy::Thp { small, .. } => *small,
        }
    }
}

/// The flags of a packed entry (its low bits; see `Entries::Packed`).
const FLAG_MASK: u64 = 0xf;

/// A level's entries, in one of two layouts.
///
/// - `Packed` (every level but the bottom): one word per entry, the flags in
///   its low four bits and above them a pointer's child id, or a leaf's
///   frame (aligned to at least the 1 KiB smallest page, so its low bits are
///   free). A walk reads one word per level.
/// - `Split` (the bottom level, where every present entry is a leaf): a
///   byte of flags per entry, and the frames apart. A walk reads the flags
///   only; the frame is read by those who need the physical address (nested
///   and shadow walks). On a walk-heavy trace the bottom entry is the read
///   that misses the host's caches: one byte per page instead of eight
///   keeps the leaves of a 1 GiB footprint in 256 KiB.
#[derive(Clone, Debug)]
enum Entries {
    Packed(Vec<u64>),
    Split { flags: Vec<u8>, frames: Vec<u64> },
}

/// The nodes of one level, stored flat: node `id`'s entries are at
/// `id << bits..`, so that a walk reaches an entry from its parent's pointer
/// with one load, not two.
#[derive(Clone, Debug)]
struct Level {
    bits: u32,
    /// How an address indexes this level.
    step: Step,
    entries: Entries,
    /// Physical address of each node.
    bases: Vec<u64>,
    /// Ids of freed nodes, for reuse.
    free: Vec<usize>,
    live: u64,
    /// When lanes share the tables (see `keep_lane_dirty_bits`): per entry,
    /// the lanes in which the leaf there is dirty; else empty.
    lane_dirty: Vec<u64>,
}

impl Level {
    fn new(bits: u32, step: Step, bottom: bool) -> Level {
        let entries =
            if bottom { Entries::Split { flags: Vec::new(), frames: Vec::new() } } else { Entries::Packed(Vec::new()) };
        Level { bits, step, entries, bases: Vec::new(), free: Vec::new(), live: 0, lane_dirty: Vec::new() }
    }

    /// The index of `va`'s entry in a node of this level.
    #[inline(always)]
    fn index(&self, va: u64) -> usize {
        ((va >> self.step.shift) & self.step.mask) as usize
    }

    #[inline(always)]
    fn slot(&self, id: usize, index: usize) -> usize {
        (id << self.bits) + index
    }

    /// Entries held (live or free).
    fn len(&self) -> usize {
        match &self.entries {
            Entries::Packed(words) => words.len(),
            Entries::Split { flags, .. } => flags.len(),
        }
    }

    /// The flags of entry `slot`, and its child id if it is a pointer (0
    /// otherwise: a leaf's frame is read by `frame`).
    #[inline(always)]
    fn read(&self, slot: usize) -> (u8, usize) {
        match &self.entries {
            Entries::Packed(words) => {
                let word = words[slot];
                ((word & FLAG_MASK) as u8, (word >> 4) as usize)
            }
            Entries::Split { flags, .. } => (flags[slot], 0),
        }
    }

    /// The frame of leaf entry `slot`.
    fn frame(&self, slot: usize) -> u64 {
        match &self.entries {
            Entries::Packed(words) => words[slot] & !FLAG_MASK,
            Entries::Split { frames, .. } => frames[slot],
        }
    }

    /// Writes a pointer to node `child`.
    fn set_pointer(&mut self, slot: usize, child: usize) {
        match &mut self.entries {
            Entries::Packed(words) => words[slot] = ((child as u64) << 4) | u64::from(PRESENT),
            Entries::Split { .. } => unreachable!("the bottom level holds leaves only"),
        }
    }

    /// Writes a leaf mapping `frame` with `flags`.
    fn set_leaf(&mut self, slot: usize, flags: u8, frame: u64) {
        debug_assert_eq!(frame & FLAG_MASK, 0, "frames are aligned to at least 1 KiB");
        match &mut self.entries {
            Entries::Packed(words) => words[slot] = frame | u64::from(flags),
            Entries::Split { flags: all, frames } => {
                all[slot] = flags;
                frames[slot] = frame;
            }
        }
    }

    /// Replaces the flags of entry `slot`.
    #[inline(always)]
    fn set_flags(&mut self, slot: usize, flags: u8) {
        match &mut self.entries {
            Entries::Packed(words) => words[slot] = (words[slot] & !FLAG_MASK) | u64::from(flags),
            Entries::Split { flags: all, .. } => all[slot] = flags,
        }
    }

    /// Empties entries `range`.
    fn clear(&mut self, range: std::ops::Range<usize>) {
        match &mut self.entries {
            Entries::Packed(words) => words[range].fill(0),
            Entries::Split { flags, frames } => {
                flags[range.clone()].fill(0);
                frames[range].fill(0);
            }
        }
    }

    /// Adds `count` empty entries.
    fn grow(&mut self, count: usize) {
        let len = self.len() + count;
        match &mut self.entries {
            Entries::Packed(words) => words.resize(len, 0),
            Entries::Split { flags, frames } => {
                flags.resize(len, 0);
                frames.resize(len, 0);
            }
        }
    }
}

/// Live table nodes of one level, and their size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LevelMemory {
    pub nodes: u64,
    pub node_bytes: u64,
}

/// A leaf entry's address and bits, as a walk found them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkResult<Out: Address> {
    /// Levels read, root first.
    pub levels: usize,
    pub page_shift: u32,
    /// The walk found nothing mapped and the fault handler filled it in.
    pub faulted: bool,
    /// The page filled in had been evicted: a major fault (swap-in), not a
    /// first touch.
    pub major: bool,
    /// This walk set the leaf's accessed bit (the first walk to the page).
    pub set_accessed: bool,
    /// This walk set the leaf's dirty bit (the first write to the page).
    pub set_dirty: bool,
    /// The leaf's dirty bit after the walk.
    pub dirty: bool,
    /// A THP promotion replaced small pages of this large region: every
    /// cached translation of it is stale.
    pub promoted: Option<(u64, u32)>,
    /// Where the leaf entry is: (level, slot in the level's entries).
    pub leaf: (usize, usize),
    /// The address type of the frame `PageTables::frame` reads at `leaf`
    /// (no data: the walk's result names the table it came from).
    pub frame_type: PhantomData<Out>,
}

/// Where the entries a walk read are, root first (`[..levels]`): in the
/// table's own physical space.
pub type EntryAddrs<Out> = [Out; MAX_LEVELS];

/// How one level takes its index from an address: its shift (also the
/// page shift of a leaf there) and the mask of its index bits.
#[derive(Clone, Copy, Debug, Default)]
struct Step {
    shift: u32,
    mask: u64,
}

/// The page tables of every address space, and the memory behind them.
/// They map addresses of the space `In` to pages of the space `Out`, and
/// their nodes live in `Out` too (see `addr`).
#[derive(Clone, Debug)]
pub struct PageTables<In: Address, Out: Address> {
    shape: TableShape,
    entry_bytes: u64,
    levels: Vec<Level>,
    /// Whether dirty bits are kept per lane (`lane_dirty`), not in entries.
    lanes: bool,
    /// Root node id of each address space.
    roots: Vec<usize>,
    policy: PagePolicy,
    /// THP: small pages touched per (space, large region).
    touched: FxHashMap<(usize, u64), u32>,
    /// Pages evicted (under a resident limit) and not brought back: their
    /// next fault is major.
    swapped: rustc_hash::FxHashSet<PageKey>,
    /// Whether large pages can be had, when that is limited.
    large: Option<LargeBlocks>,
    /// Pages from the huge-page pool (never evicted).
    pool_pages: rustc_hash::FxHashSet<PageKey>,
    faults: u64,
    major_faults: u64,
    promotions: u64,
    spaces: PhantomData<(In, Out)>,
}

impl<In: Address, Out: Address> PageTables<In, Out> {
    /// Empty tables of `shape`; frames come from the allocator each call
    /// that may need one is given.
    pub fn new(shape: TableShape, policy: PagePolicy) -> PageTables<In, Out> {
        PageTables {
            entry_bytes: u64::from(shape.entry_bytes),
            levels: shape
                .index_bits
                .iter()
                .enumerate()
                .map(|(level, &bits)| {
                    let step = Step { shift: shape.leaf_shift(level), mask: (1u64 << bits) - 1 };
                    Level::new(bits, step, level + 1 == shape.index_bits.len())
                })
                .collect(),
            shape,
            lanes: false,
            roots: Vec::new(),
            policy,
            touched: FxHashMap::default(),
            swapped: rustc_hash::FxHashSet::default(),
            large: None,
            pool_pages: rustc_hash::FxHashSet::default(),
            faults: 0,
            major_faults: 0,
            promotions: 0,
            spaces: PhantomData,
        }
    }

    /// Large pages are had only when `blocks` says there is room.
    pub fn limit_large_pages(&mut self, blocks: LargeBlocks) {
        self.large = Some(blocks);
    }

    /// Large pages granted and denied, when that is limited.
    pub fn huge_pages(&self) -> Option<&HugeCounters> {
        self.large.as_ref().map(|l| &l.counters)
    }

    /// Whether `page` is a huge-page pool page (pinned).
    pub fn is_pool_page(&self, page: PageKey) -> bool {
        !self.pool_pages.is_empty() && self.pool_pages.contains(&page)
    }

    pub fn shape(&self) -> &TableShape {
        &self.shape
    }

    pub fn levels(&self) -> usize {
        self.levels.len()
    }

    /// The page shift of a leaf at `level`.
    pub fn level_shift(&self, level: usize) -> u32 {
        self.levels[level].step.shift
    }

    /// A new, empty node at `level`; returns its id there.
    fn new_node(&mut self, level: usize, frames: &mut FrameAllocator<Out>) -> usize {
        let bits = self.shape.index_bits[level];
        let base = frames.allocate(node_block_shift(&self.shape, bits)).raw();
        let nodes = &mut self.levels[level];
        nodes.live += 1;
        match nodes.free.pop() {
            Some(id) => {
                nodes.bases[id] = base;
                let first = nodes.slot(id, 0);
                nodes.clear(first..first + (1 << bits));
                if !nodes.lane_dirty.is_empty() {
                    nodes.lane_dirty[first..first + (1 << bits)].fill(0);
                }
                id
            }
            None => {
                nodes.bases.push(base);
                nodes.grow(1 << bits);
                if self.lanes {
                    let len = nodes.len();
                    nodes.lane_dirty.resize(len, 0);
                }
                nodes.bases.len() - 1
            }
        }
    }

    /// Root node of `space`, creating address spaces up to it.
    fn root(&mut self, space: usize, frames: &mut FrameAllocator<Out>) -> usize {
        while self.roots.len() <= space {
            let root = self.new_node(0, frames);
            self.roots.push(root);
        }
        self.roots[space]
    }

    #[inline(always)]
    fn index(&self, level: usize, va: u64) -> usize {
        self.levels[level].index(va)
    }

    /// Walks `space`'s table for `va`, faulting in what is missing, setting
    /// the leaf's accessed bit (and dirty bit for a write).
    pub fn walk(&mut self, space: usize, va: In, write: bool, frames: &mut FrameAllocator<Out>) -> WalkResult<Out> {
        self.walk_recording::<false>(space, va.raw(), write, frames, &mut [])
    }

    /// `walk`, also writing where the entries it read are into `addrs`:
    /// for callers that price each reference by its address (page-walk
    /// caches of entries, a line cache) or translate it (nested walks). A
    /// walk that needs no addresses is spared a load of each node's base.
    pub fn walk_addressed(
        &mut self,
        space: usize,
        va: In,
        write: bool,
        frames: &mut FrameAllocator<Out>,
        addrs: &mut EntryAddrs<Out>,
    ) -> WalkResult<Out> {
        self.walk_recording::<true>(space, va.raw(), write, frames, addrs)
    }

    #[inline(always)]
    fn walk_recording<const ADDRS: bool>(
        &mut self,
        space: usize,
        va: u64,
        write: bool,
        frames: &mut FrameAllocator<Out>,
        addrs: &mut [Out],
    ) -> WalkResult<Out> {
        let mut result = self.walk_inner::<ADDRS>(space, va, write, frames, addrs);
        if result.faulted {
            self.after_fault::<ADDRS>(space, va, write, frames, &mut result, addrs);
        }
        result
    }

    /// Counts the fault a walk took, and under THP promotes the region if
    /// this first touch completes it (walking again, in the large page).
    #[cold]
    #[inline(never)]
    fn after_fault<const ADDRS: bool>(
        &mut self,
        space: usize,
        va: u64,
        write: bool,
        frames: &mut FrameAllocator<Out>,
        result: &mut WalkResult<Out>,
        addrs: &mut [Out],
    ) {
        if result.major {
            self.major_faults += 1;
        } else {
            self.faults += 1;
        }
        if let PagePolicy::Thp { small, large, promote_after } = self.policy {
            if !result.major && result.page_shift == small && promote_after > 1 {
                let region = va >> large;
                let touched = self.touched.entry((space, region)).or_insert(0);
                *touched += 1;
                let grant = match (*touched >= promote_after, &mut self.large) {
                    (false, _) => Grant::Denied,
                    (true, None) => Grant::Block,
                    (true, Some(blocks)) => blocks.request(large),
                };
                if grant != Grant::Denied {
                    self.touched.remove(&(space, region));
                    self.promote(space, va, large, frames);
                    if grant == Grant::Pool {
                        self.pool_pages.insert(PageKey { space, base: region << large, shift: large });
                    }
                    let promoted = self.walk_inner::<ADDRS>(space, va, write, frames, addrs);
                    *result = WalkResult { faulted: true, promoted: Some((region << large, large)), ..promoted };
                }
            }
        }
    }

    #[inline(always)]
    fn walk_inner<const ADDRS: bool>(
        &mut self,
        space: usize,
        va: u64,
        write: bool,
        frames: &mut FrameAllocator<Out>,
        addrs: &mut [Out],
    ) -> WalkResult<Out> {
        let mut node = self.root(space, frames);
        let (mut faulted, mut major) = (false, false);
        // The last level holds leaves only: the loop ends there at the
        // latest.
        let mut level = 0;
        loop {
            let nodes = &self.levels[level];
            let index = nodes.index(va);
            if ADDRS {
                addrs[level] = Out::from_raw(nodes.bases[node] + index as u64 * self.entry_bytes);
            }
            let slot = nodes.slot(node, index);
            let (mut flags, mut child) = nodes.read(slot);
            if flags & PRESENT == 0 {
                faulted = true;
                let brought_back;
                (flags, child, brought_back) = self.fill(level, slot, space, va, frames);
                major |= brought_back;
            }
            if flags & LEAF != 0 {
                let mut updated = flags | ACCESSED;
                if write {
                    updated |= DIRTY;
                }
                let nodes = &mut self.levels[level];
                if updated != flags {
                    nodes.set_flags(slot, updated);
                }
                return WalkResult {
                    levels: level + 1,
                    page_shift: nodes.step.shift,
                    faulted,
                    major,
                    set_accessed: flags & ACCESSED == 0,
                    set_dirty: write && flags & DIRTY == 0,
                    dirty: updated & DIRTY != 0,
                    promoted: None,
                    leaf: (level, slot),
                    frame_type: PhantomData,
                };
            }
            node = child;
            level += 1;
        }
    }

    /// The physical base of the page whose leaf entry a walk found at `leaf`.
    pub fn frame(&self, leaf: (usize, usize)) -> Out {
        Out::from_raw(self.levels[leaf.0].frame(leaf.1))
    }

    /// Writes the entry a fault handler writes at `slot` of `level` for
    /// `va` of `space`: a leaf if the page size for `va` is this level's
    /// (the evicted page's, if `va` is in one; else the policy's), else a
    /// new node below; returns its flags, the new node's id (0 for a leaf)
    /// and whether the leaf brings an evicted page back.
    #[cold]
    #[inline(never)]
    fn fill(
        &mut self,
        level: usize,
        slot: usize,
        space: usize,
        va: u64,
        frames: &mut FrameAllocator<Out>,
    ) -> (u8, usize, bool) {
        let swapped = if self.swapped.is_empty() { None } else { self.swapped_page(space, va) };
        let here = self.level_shift(level);
        let wanted = match (swapped, &self.policy) {
            (Some(page), _) => page.shift,
            (None, &PagePolicy::Thp { small, large, promote_after }) => {
                if promote_after == 1 {
                    large
                } else {
                    small
                }
            }
            (None, policy) => policy.static_shift(va, &self.shape.page_shifts),
        };
        // Below the wanted size only if a larger page was denied here (now
        // or on an earlier fault in the region): the entry above is a node.
        let mut leaf = here <= wanted;
        let mut grant = Grant::Block;
        if let Some(blocks) = &mut self.large {
            let smallest = self.shape.offset_bits;
            if leaf && here > smallest {
                if swapped.is_some() {
                    blocks.take(here);
                } else {
                    grant = blocks.request(here);
                    leaf = grant != Grant::Denied;
                }
            } else if leaf {
                blocks.small_mapped();
            }
        }
        if leaf {
            let frame = frames.allocate(here).raw();
            self.levels[level].set_leaf(slot, LEAF | PRESENT, frame);
            if let Some(page) = swapped {
                self.swapped.remove(&page);
            }
            if grant == Grant::Pool {
                self.pool_pages.insert(PageKey { space, base: va >> here << here, shift: here });
            }
            (LEAF | PRESENT, 0, swapped.is_some())
        } else {
            let child = self.new_node(level + 1, frames);
            self.levels[level].set_pointer(slot, child);
            (PRESENT, child, false)
        }
    }

    /// The evicted page of `space` that `va` lies in, if any.
    fn swapped_page(&self, space: usize, va: u64) -> Option<PageKey> {
        self.shape
            .page_shifts
            .iter()
            .map(|&shift| PageKey { space, base: va >> shift << shift, shift })
            .find(|page| self.swapped.contains(page))
    }

    /// The page mapping `va` in `space`, if one is mapped.
    pub fn page_of(&self, space: usize, va: In) -> Option<PageKey> {
        let (level, _) = self.mapped_leaf(space, va.raw())?;
        let shift = self.level_shift(level);
        Some(PageKey { space, base: va.raw() >> shift << shift, shift })
    }

    /// Evicts a mapped page: its entry becomes not present and its next
    /// fault is major. Returns its frame and whether it was dirty.
    pub fn evict(&mut self, page: PageKey) -> (Out, bool) {
        let (level, slot) = self.mapped_leaf(page.space, page.base).expect("an evicted page is mapped");
        debug_assert_eq!(self.level_shift(level), page.shift, "{page:?} is mapped at its size");
        let (flags, _) = self.levels[level].read(slot);
        let frame = self.levels[level].frame(slot);
        self.levels[level].set_leaf(slot, 0, 0);
        self.swapped.insert(page);
        if let Some(blocks) = &mut self.large {
            blocks.released(page.shift, 1);
        }
        (Out::from_raw(frame), flags & DIRTY != 0)
    }

    /// Drops a page and its content (the host freeing a ballooned frame's
    /// backing): a mapped page's entry becomes not present and its frame
    /// is returned; a swapped-out page's swap copy is forgotten. Its next
    /// fault is a first touch. Only a page mapped at exactly `page`'s size
    /// goes.
    pub fn discard(&mut self, page: PageKey) -> Option<Out> {
        self.swapped.remove(&page);
        let (level, slot) = self.mapped_leaf(page.space, page.base)?;
        if self.level_shift(level) != page.shift {
            return None;
        }
        let frame = self.levels[level].frame(slot);
        self.levels[level].set_leaf(slot, 0, 0);
        if let Some(blocks) = &mut self.large {
            blocks.released(page.shift, 1);
        }
        Some(Out::from_raw(frame))
    }

    /// Reads a mapped page's accessed bit and clears it; returns what it
    /// was (what a clock hand does).
    pub fn test_and_clear_accessed(&mut self, page: PageKey) -> bool {
        let (level, slot) = self.mapped_leaf(page.space, page.base).expect("a resident page is mapped");
        let (flags, _) = self.levels[level].read(slot);
        self.levels[level].set_flags(slot, flags & !ACCESSED);
        flags & ACCESSED != 0
    }

    /// Removes every leaf of `space` within `page` (the shadow entries of
    /// a guest page the guest evicted); returns how many went.
    pub fn unmap_within(&mut self, page: PageKey) -> u64 {
        let mut removed = 0;
        let mut va = page.base;
        let smallest = 1u64 << self.shape.offset_bits;
        while va <= page.last() {
            match self.mapped_leaf(page.space, va) {
                Some((level, slot)) => {
                    self.levels[level].set_leaf(slot, 0, 0);
                    removed += 1;
                    va += 1 << self.level_shift(level);
                }
                None => va += smallest,
            }
        }
        removed
    }

    /// Maps `va`'s page of `shift` to `frame` in `space` unless something
    /// is mapped there already, allocating the nodes on the way; returns
    /// whether it mapped. (Shadow tables: the hypervisor decides the page
    /// size and the frame.)
    pub fn map(&mut self, space: usize, va: In, shift: u32, frame: Out, frames: &mut FrameAllocator<Out>) -> bool {
        let (va, frame) = (va.raw(), frame.raw());
        let mut node = self.root(space, frames);
        for level in 0..self.levels() {
            let slot = self.levels[level].slot(node, self.index(level, va));
            let (flags, child) = self.levels[level].read(slot);
            if self.level_shift(level) == shift {
                if flags & PRESENT != 0 {
                    return false;
                }
                self.levels[level].set_leaf(slot, LEAF | PRESENT, frame >> shift << shift);
                return true;
            }
            if flags & PRESENT == 0 {
                let child = self.new_node(level + 1, frames);
                self.levels[level].set_pointer(slot, child);
                node = child;
            } else if flags & LEAF != 0 {
                return false;
            } else {
                node = child;
            }
        }
        false
    }

    /// Whether `space` maps `va`. Reads only flags and the upper levels'
    /// pointers: no frame, no fault, no accessed bit.
    pub fn is_mapped(&self, space: usize, va: In) -> bool {
        self.mapped_leaf(space, va.raw()).is_some()
    }

    /// What `space` maps `va` to, if anything: the physical address and
    /// the page shift. No fault, no accessed bit: a lookup, not a walk.
    pub fn translate(&self, space: usize, va: In) -> Option<(Out, u32)> {
        let (level, slot) = self.mapped_leaf(space, va.raw())?;
        let shift = self.level_shift(level);
        Some((Out::from_raw(self.levels[level].frame(slot)).plus(va.page_offset(shift)), shift))
    }

    /// Replaces the subtree under the `large`-page entry covering `va` with
    /// one large leaf.
    fn promote(&mut self, space: usize, va: u64, large: u32, frames: &mut FrameAllocator<Out>) {
        let level = (0..self.levels()).find(|&l| self.level_shift(l) == large).expect("a mappable size");
        let mut node = self.root(space, frames);
        for upper in 0..level {
            node = self.levels[upper].read(self.levels[upper].slot(node, self.index(upper, va))).1;
        }
        let slot = self.levels[level].slot(node, self.index(level, va));
        let (old, child) = self.levels[level].read(slot);
        if old & PRESENT != 0 && old & LEAF == 0 {
            let small_leaves = self.free_subtree(child, level + 1);
            if let (Some(blocks), PagePolicy::Thp { small, .. }) = (&mut self.large, &self.policy) {
                blocks.released(*small, small_leaves);
            }
        }
        let frame = frames.allocate(large).raw();
        self.levels[level].set_leaf(slot, LEAF | PRESENT, frame);
        if !self.swapped.is_empty() {
            // The collapse reads the region's evicted small pages back.
            let small = match self.policy {
                PagePolicy::Thp { small, .. } => small,
                _ => self.shape.offset_bits,
            };
            let region = va >> large << large;
            for page in 0..1u64 << (large - small) {
                self.swapped.remove(&PageKey { space, base: region + (page << small), shift: small });
            }
        }
        if self.lanes {
            self.levels[level].lane_dirty[slot] = 0;
        }
        self.promotions += 1;
    }

    /// Frees a node and the nodes below it; returns the leaves it held.
    fn free_subtree(&mut self, node: usize, level: usize) -> u64 {
        let nodes = &self.levels[level];
        let first = nodes.slot(node, 0);
        let entries: Vec<(u8, usize)> = (first..first + (1 << nodes.bits)).map(|slot| nodes.read(slot)).collect();
        let mut leaves = entries.iter().filter(|&&(flags, _)| flags & PRESENT != 0 && flags & LEAF != 0).count() as u64;
        for &(flags, child) in &entries {
            if flags & PRESENT != 0 && flags & LEAF == 0 {
                leaves += self.free_subtree(child, level + 1);
            }
        }
        let nodes = &mut self.levels[level];
        nodes.live -= 1;
        nodes.free.push(node);
        leaves
    }

    /// Sets the dirty bit of `va`'s leaf, if mapped and clean; returns
    /// whether it was clean. (A store that hits a TLB entry cached clean.)
    pub fn mark_dirty(&mut self, space: usize, va: In) -> bool {
        let Some((level, slot)) = self.mapped_leaf(space, va.raw()) else { return false };
        let (flags, _) = self.levels[level].read(slot);
        self.levels[level].set_flags(slot, flags | DIRTY);
        flags & DIRTY == 0
    }

    /// The level and slot of `va`'s leaf entry in `space`, if mapped. Reads
    /// only: no fault, no accessed bit.
    fn mapped_leaf(&self, space: usize, va: u64) -> Option<(usize, usize)> {
        let mut node = *self.roots.get(space)?;
        for level in 0..self.levels() {
            let slot = self.levels[level].slot(node, self.index(level, va));
            let (flags, child) = self.levels[level].read(slot);
            if flags & PRESENT == 0 {
                return None;
            }
            if flags & LEAF != 0 {
                return Some((level, slot));
            }
            node = child;
        }
        None
    }

    /// Keeps dirty bits per lane from now on (for lanes of a simulator that
    /// share these tables: their walks set only their own lanes' bits).
    pub fn keep_lane_dirty_bits(&mut self, _lanes: usize) {
        self.lanes = true;
        for level in &mut self.levels {
            let len = level.len();
            level.lane_dirty.resize(len, 0);
        }
    }

    /// `walk_addressed`, for the lanes `lanes` at once, with dirty bits per
    /// lane: returns the walk's result and the lanes in which it set the dirty bit
    /// and in which the page is dirty after it.
    pub fn walk_lanes(
        &mut self,
        space: usize,
        va: In,
        write: bool,
        lanes: u64,
        frames: &mut FrameAllocator<Out>,
        addrs: &mut EntryAddrs<Out>,
    ) -> (WalkResult<Out>, u64, u64) {
        debug_assert!(self.lanes, "keep_lane_dirty_bits first");
        // The entries' own dirty bits stay clear: the lanes' are kept aside.
        let result = self.walk_addressed(space, va, false, frames, addrs);
        let (level, slot) = result.leaf;
        let dirty = &mut self.levels[level].lane_dirty[slot];
        let set = if write { lanes & !*dirty } else { 0 };
        if write {
            *dirty |= lanes;
        }
        (result, set, *dirty)
    }

    /// Sets lane `lane`'s dirty bit of `va`'s leaf, if mapped and clean
    /// there; returns whether it was clean.
    pub fn mark_dirty_lane(&mut self, space: usize, va: In, lane: usize) -> bool {
        let Some((level, slot)) = self.mapped_leaf(space, va.raw()) else { return false };
        let dirty = &mut self.levels[level].lane_dirty[slot];
        let was_clean = *dirty & 1 << lane == 0;
        *dirty |= 1 << lane;
        was_clean
    }

    /// Bytes of the live table nodes.
    pub fn table_bytes(&self) -> u64 {
        self.levels.iter().map(|level| level.live * (u64::from(self.shape.entry_bytes) << level.bits)).sum()
    }

    /// Live table nodes per level, root first.
    pub fn memory(&self) -> Vec<LevelMemory> {
        self.levels
            .iter()
            .map(|level| LevelMemory { nodes: level.live, node_bytes: u64::from(self.shape.entry_bytes) << level.bits })
            .collect()
    }

    /// Minor faults: walks that found nothing mapped, for pages never
    /// mapped before.
    pub fn faults(&self) -> u64 {
        self.faults
    }

    /// Major faults: walks that brought an evicted page back.
    pub fn major_faults(&self) -> u64 {
        self.major_faults
    }

    pub fn promotions(&self) -> u64 {
        self.promotions
    }

    pub fn address_spaces(&self) -> usize {
        self.roots.len()
    }
}
