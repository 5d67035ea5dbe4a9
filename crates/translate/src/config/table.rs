//! `[page_table]`, `[pages]` and `[memory]`: the table format, the page-size
//! policy and physical memory, and their resolution.

#[allow(unused_imports)]
use super::*;

/// A radix page table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageTableConfig {
    /// A named layout that sets the fields below: `x86-64-4level` (the
    /// default), `x86-64-5level`, `x86-32` (two levels, 4 MiB pages), `flat`
    /// (one level of 2^20 4-byte entries), or `custom` (give them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Index bits of each level, root first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_bits: Option<Vec<u32>>,
    /// Page-offset bits of the smallest page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_bits: Option<u32>,
    /// Bytes per table entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_bytes: Option<u32>,
    /// Page sizes the table maps: the smallest page and any large pages the
    /// levels above allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_sizes: Option<Vec<ByteSize>>,
}

/// A named page-table layout: (index bits root first, offset bits, entry
/// bytes, page sizes).
pub(super) fn table_format(name: &str) -> Option<(Vec<u32>, u32, u32, Vec<u64>)> {
    Some(match name {
        "x86-64-4level" | "aarch64-4k" => (vec![9; 4], 12, 8, vec![4 * KIB, 2 * MIB, GIB]),
        "x86-64-5level" => (vec![9; 5], 12, 8, vec![4 * KIB, 2 * MIB, GIB]),
        "x86-32" => (vec![10, 10], 12, 4, vec![4 * KIB, 4 * MIB]),
        "flat" => (vec![20], 12, 4, vec![4 * KIB]),
        _ => return None,
    })
}

pub(super) const TABLE_FORMATS: &str = "x86-64-4level, x86-64-5level, x86-32, flat, aarch64-4k or custom";

/// Page-size policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagesConfig {
    /// `fixed` (one size for everything), `ranges` (sizes by address
    /// range) or `thp` (a region is mapped with one large page once enough
    /// of it is touched) [default: fixed].
    #[serde(default)]
    pub policy: PagePolicyKind,
    /// `fixed`: the size; `ranges`: the size outside every range
    /// [default: the table's smallest page].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// `ranges`: address ranges and their page size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<PageRange>,
    /// `thp`: the large page size [default: 2MiB, or the table's second
    /// smallest page].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large: Option<ByteSize>,
    /// `thp`: how many small pages of an aligned large region must be
    /// touched before the region is mapped as one large page; 1 maps it at
    /// the first touch [default: 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_after: Option<u32>,
    /// `thp` and `ranges`: large pages reserved up front, as hugetlbfs
    /// does: requests for a page of the large size take them first, and
    /// they are never evicted [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub huge_pool: Option<u64>,
}

impl Default for PagesConfig {
    fn default() -> PagesConfig {
        PagesConfig {
            policy: PagePolicyKind::Fixed,
            size: None,
            ranges: Vec::new(),
            large: None,
            promote_after: None,
            huge_pool: None,
        }
    }
}

/// A fraction from 0 to 1 (checked at resolution, so never NaN there).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fraction(pub f64);

impl Eq for Fraction {}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PagePolicyKind {
    #[default]
    Fixed,
    Ranges,
    Thp,
}

/// Virtual addresses `start..end` backed by pages of `size` (where a whole,
/// aligned page fits inside the range; smaller pages elsewhere).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageRange {
    pub start: u64,
    pub end: u64,
    pub size: ByteSize,
}

/// Physical memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Physical memory that frames are drawn from; a run that needs more
    /// continues in a further block of the same size [default: 16GiB].
    #[serde(default = "default_memory_size")]
    pub size: ByteSize,
    /// `sequential` (frames in address order) or `shuffled` (a seeded random
    /// order, as on a long-running, fragmented machine) [default: sequential].
    #[serde(default)]
    pub allocator: Allocator,
    /// Bytes of pages the address spaces may have resident at once, shared
    /// by every address space of the machine (of a VM's guest, when
    /// virtualized); page-table pages are pinned and not counted. Beyond it
    /// a fault evicts pages chosen by `replacement` [default: no limit].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident: Option<ByteSize>,
    /// Which resident page a fault evicts: `lru`, `clock`, `fifo` or
    /// `random` (seeded) [default with a limit: clock].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<PageReplacement>,
    /// Clock: whether clearing a page's accessed bit also invalidates its
    /// cached translations [default with a limit: false, as x86 Linux].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_clear_flushes: Option<bool>,
    /// What paging costs, in cycles [defaults with a limit: see
    /// `PagingCosts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub costs: Option<PagingCosts>,
    /// The fraction of large blocks of physical memory that hold an
    /// unmovable small page, so that a large page cannot be had there
    /// (`thp` and `ranges`) [default: 0].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragmentation: Option<Fraction>,
    /// Resident limits at which to report what paging under LRU does, all
    /// from one pass (stack distances over pages), whatever this run's own
    /// limit: the curve of faults by memory size (`fixed` page policy)
    /// [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<Vec<ByteSize>>,
}

/// Which resident page a fault under a resident limit evicts (see
/// ARCHITECTURE.md for each rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageReplacement {
    /// Exact recency over every reference: the yardstick no OS can build.
    Lru,
    /// Second chance over the accessed bits the page walker sets.
    Clock,
    /// The page resident longest.
    Fifo,
    /// A resident page drawn with the seed.
    Random,
}

impl PageReplacement {
    pub fn name(self) -> &'static str {
        match self {
            PageReplacement::Lru => "lru",
            PageReplacement::Clock => "clock",
            PageReplacement::Fifo => "fifo",
            PageReplacement::Random => "random",
        }
    }
}

/// Cycles the paging events cost. The defaults assume a 3 GHz core and an
/// NVMe SSD as swap (ARCHITECTURE.md gives the sources). Swap traffic is
/// priced per smallest page moved: a 2 MiB page costs 512 times a 4 KiB one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagingCosts {
    /// A first touch: the kernel's fault path and a zeroed page [1500].
    #[serde(default = "default_minor_fault_cycles")]
    pub minor_fault: u32,
    /// A swap-in: fault path plus a read from swap, per smallest page [75000].
    #[serde(default = "default_major_fault_cycles")]
    pub major_fault: u32,
    /// Writing a dirty evicted page to swap, per smallest page [30000].
    #[serde(default = "default_swap_out_cycles")]
    pub swap_out: u32,
    /// Removing one page's translations from the TLBs (INVLPG) [250].
    #[serde(default = "default_invalidation_cycles")]
    pub invalidation: u32,
}

fn default_minor_fault_cycles() -> u32 {
    1_500
}
fn default_major_fault_cycles() -> u32 {
    75_000
}
fn default_swap_out_cycles() -> u32 {
    30_000
}
fn default_invalidation_cycles() -> u32 {
    250
}

impl Default for PagingCosts {
    fn default() -> PagingCosts {
        PagingCosts {
            minor_fault: default_minor_fault_cycles(),
            major_fault: default_major_fault_cycles(),
            swap_out: default_swap_out_cycles(),
            invalidation: default_invalidation_cycles(),
        }
    }
}

pub(super) fn default_memory_size() -> ByteSize {
    ByteSize(16 * GIB)
}

impl Default for MemoryConfig {
    fn default() -> MemoryConfig {
        MemoryConfig {
            size: default_memory_size(),
            allocator: Allocator::default(),
            resident: None,
            replacement: None,
            clock_clear_flushes: None,
            costs: None,
            fragmentation: None,
            curve: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocator {
    #[default]
    Sequential,
    Shuffled,
}

/// The page-table geometry a resolved config describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableShape {
    pub index_bits: Vec<u32>,
    pub offset_bits: u32,
    pub entry_bytes: u32,
    /// Mappable page sizes as shifts, ascending.
    pub page_shifts: Vec<u32>,
}

impl TableShape {
    /// Bits of virtual address the table translates.
    pub fn va_bits(&self) -> u32 {
        self.offset_bits + self.index_bits.iter().sum::<u32>()
    }

    /// The page shift a leaf at `level` (0 = root) maps.
    pub fn leaf_shift(&self, level: usize) -> u32 {
        self.offset_bits + self.index_bits[level + 1..].iter().sum::<u32>()
    }
}

pub(super) fn resolve_table(table: &mut PageTableConfig) -> Result<TableShape, ConfigError> {
    let format = table.format.clone().unwrap_or_else(|| "x86-64-4level".into());
    if format != "custom" {
        let Some((bits, offset, entry, sizes)) = table_format(&format) else {
            return Err(ConfigError::at(
                "page_table.format",
                format!("unknown format {format:?}; expected {TABLE_FORMATS}"),
            ));
        };
        table.index_bits.get_or_insert(bits);
        table.offset_bits.get_or_insert(offset);
        table.entry_bytes.get_or_insert(entry);
        table.page_sizes.get_or_insert_with(|| sizes.into_iter().map(ByteSize).collect());
    }
    table.format = Some(format);
    let missing = |field: &str| {
        ConfigError::at(
            format!("page_table.{field}"),
            "a custom page table must give index_bits, offset_bits, entry_bytes and page_sizes",
        )
    };
    let index_bits = table.index_bits.clone().ok_or_else(|| missing("index_bits"))?;
    let offset_bits = table.offset_bits.ok_or_else(|| missing("offset_bits"))?;
    let entry_bytes = table.entry_bytes.ok_or_else(|| missing("entry_bytes"))?;
    if index_bits.is_empty() || index_bits.contains(&0) || index_bits.iter().any(|&b| b > 30) {
        return Err(ConfigError::at("page_table.index_bits", "needs at least one level, each of 1 to 30 bits"));
    }
    if index_bits.len() > crate::pagetable::MAX_LEVELS {
        return Err(ConfigError::at(
            "page_table.index_bits",
            format!("{} levels; a table has at most {}", index_bits.len(), crate::pagetable::MAX_LEVELS),
        ));
    }
    if !(10..=30).contains(&offset_bits) {
        return Err(ConfigError::at("page_table.offset_bits", "must be 10 to 30"));
    }
    if offset_bits + index_bits.iter().sum::<u32>() > 64 {
        return Err(ConfigError::at("page_table.index_bits", "the levels and offset cover more than 64 bits"));
    }
    if !entry_bytes.is_power_of_two() || entry_bytes > 64 {
        return Err(ConfigError::at("page_table.entry_bytes", "must be a power of two up to 64"));
    }
    let shape = TableShape { index_bits, offset_bits, entry_bytes, page_shifts: Vec::new() };
    let mappable: Vec<u32> = (0..shape.index_bits.len()).rev().map(|level| shape.leaf_shift(level)).collect();
    let mut sizes = table.page_sizes.clone().ok_or_else(|| missing("page_sizes"))?;
    sizes.sort_unstable();
    sizes.dedup();
    let mut shifts = Vec::new();
    for size in &sizes {
        match size.shift().filter(|s| mappable.contains(s)) {
            Some(shift) => shifts.push(shift),
            None => {
                let can: Vec<String> = mappable.iter().map(|&s| ByteSize(1 << s).to_string()).collect();
                return Err(ConfigError::at(
                    "page_table.page_sizes",
                    format!("this table cannot map {size} pages; its levels give {}", can.join(", ")),
                ));
            }
        }
    }
    if shifts.first() != Some(&offset_bits) {
        return Err(ConfigError::at(
            "page_table.page_sizes",
            format!("must include the smallest page, {}", ByteSize(1 << offset_bits)),
        ));
    }
    table.page_sizes = Some(sizes);
    Ok(TableShape { page_shifts: shifts, ..shape })
}

pub(super) fn require_mappable(key: &str, size: ByteSize, sizes: &[ByteSize]) -> Result<(), ConfigError> {
    if sizes.contains(&size) {
        return Ok(());
    }
    let can: Vec<String> = sizes.iter().map(ToString::to_string).collect();
    Err(ConfigError::at(key, format!("the page table cannot map {size} pages; it maps {}", can.join(", "))))
}

pub(super) fn resolve_pages(pages: &mut PagesConfig, sizes: &[ByteSize]) -> Result<(), ConfigError> {
    let base = sizes[0];
    match pages.policy {
        PagePolicyKind::Fixed | PagePolicyKind::Ranges => {
            let size = *pages.size.get_or_insert(base);
            require_mappable("pages.size", size, sizes)?;
            if pages.policy == PagePolicyKind::Fixed && !pages.ranges.is_empty() {
                return Err(ConfigError::at("pages.ranges", "only the ranges policy takes ranges"));
            }
            for (i, range) in pages.ranges.iter().enumerate() {
                require_mappable(&format!("pages.ranges[{i}].size"), range.size, sizes)?;
                if range.start >= range.end {
                    return Err(ConfigError::at(format!("pages.ranges[{i}]"), "start must be below end"));
                }
            }
            if pages.large.is_some() || pages.promote_after.is_some() {
                return Err(ConfigError::at("pages", "large and promote_after belong to the thp policy"));
            }
        }
        PagePolicyKind::Thp => {
            let default_large = sizes.iter().copied().find(|s| s.0 == 2 * MIB).or_else(|| sizes.get(1).copied());
            let large = match pages.large.or(default_large) {
                Some(large) => large,
                None => {
                    return Err(ConfigError::at("pages.large", "the page table maps no page larger than its smallest"))
                }
            };
            require_mappable("pages.large", large, sizes)?;
            if large == base {
                return Err(ConfigError::at("pages.large", "must be larger than the smallest page"));
            }
            pages.large = Some(large);
            let promote_after = *pages.promote_after.get_or_insert(1);
            let small_per_large = large.0 / base.0;
            if promote_after == 0 || u64::from(promote_after) > small_per_large {
                return Err(ConfigError::at(
                    "pages.promote_after",
                    format!("must be 1 to {small_per_large} (small pages per large page)"),
                ));
            }
            if pages.size.is_some() || !pages.ranges.is_empty() {
                return Err(ConfigError::at("pages", "size and ranges belong to the fixed and ranges policies"));
            }
        }
    }
    Ok(())
}

pub(super) fn resolve_memory(
    memory: &mut MemoryConfig,
    shape: &TableShape,
    pages: &PagesConfig,
) -> Result<(), ConfigError> {
    resolve_paging(memory, shape, pages)?;
    let largest = crate::frames::largest_block(shape);
    if memory.size.0 == 0 || !memory.size.0.is_multiple_of(largest) {
        return Err(ConfigError::at(
            "memory.size",
            format!("must be a non-zero multiple of {}, the largest block the page table allocates", ByteSize(largest)),
        ));
    }
    Ok(())
}

/// The resident limit and what goes with it: defaults written out when a
/// limit is set; refused without one (they would silently do nothing).
fn resolve_paging(memory: &mut MemoryConfig, shape: &TableShape, pages: &PagesConfig) -> Result<(), ConfigError> {
    let large_pages = matches!(pages.policy, PagePolicyKind::Thp | PagePolicyKind::Ranges);
    if let Some(Fraction(fraction)) = memory.fragmentation {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(ConfigError::at("memory.fragmentation", "must be a fraction from 0 to 1"));
        }
        if !large_pages {
            return Err(ConfigError::at("memory.fragmentation", "applies to the thp and ranges page policies"));
        }
    }
    let smallest = 1u64 << shape.offset_bits;
    // The largest page the page-size policy maps (a resolved policy's sizes).
    let largest_page = match pages.policy {
        PagePolicyKind::Thp => pages.large,
        PagePolicyKind::Fixed | PagePolicyKind::Ranges => {
            pages.ranges.iter().map(|r| r.size).chain(pages.size).max_by_key(|size| size.0)
        }
    }
    .map_or(smallest, |size| size.0);
    if let Some(pool) = pages.huge_pool {
        if !large_pages || pool == 0 {
            return Err(ConfigError::at("pages.huge_pool", "must be at least 1, with the thp or ranges policy"));
        }
        let bytes = pool.saturating_mul(1 << large_block_shift(pages, shape));
        let room = memory.resident.map_or(memory.size.0, |r| r.0);
        if bytes.saturating_add(largest_page) > room {
            return Err(ConfigError::at(
                "pages.huge_pool",
                format!(
                    "{pool} large pages are {}: they must leave room for a {} page in {}",
                    ByteSize(bytes),
                    ByteSize(largest_page),
                    ByteSize(room)
                ),
            ));
        }
    }
    resolve_curve(memory, shape, pages)?;
    let Some(resident) = memory.resident else {
        let given = [
            ("replacement", memory.replacement.is_some()),
            ("clock_clear_flushes", memory.clock_clear_flushes.is_some()),
            // A curve is priced with them.
            ("costs", memory.costs.is_some() && memory.curve.is_none()),
        ];
        if let Some((key, _)) = given.iter().find(|(_, set)| *set) {
            return Err(ConfigError::at(
                format!("memory.{key}"),
                "applies only with a resident limit (memory.resident)",
            ));
        }
        return Ok(());
    };
    if resident.0 < largest_page || !resident.0.is_multiple_of(smallest) {
        return Err(ConfigError::at(
            "memory.resident",
            format!(
                "must be a multiple of the smallest page ({}) and hold at least the largest page the page-size policy maps ({})",
                ByteSize(smallest),
                ByteSize(largest_page)
            ),
        ));
    }
    memory.replacement.get_or_insert(PageReplacement::Clock);
    memory.clock_clear_flushes.get_or_insert(false);
    memory.costs.get_or_insert_with(PagingCosts::default);
    Ok(())
}

/// One step of a VM's balloon: from instruction `at` on (counted over the
/// run), the balloon driver in VM `vm` (the trace's VM id) holds `pages`
/// of the guest's smallest pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalloonStep {
    pub vm: u16,
    #[serde(default)]
    pub at: u64,
    pub pages: u64,
}

/// `[[balloon]]`: nested mode with a guest limit, each step leaving the
/// guest room for its largest page; steps sorted by `at` (then VM), no two
/// for one VM at one instruction.
pub(super) fn resolve_balloon(config: &mut Config, shape: &TableShape) -> Result<(), ConfigError> {
    if config.balloon.is_empty() {
        return Ok(());
    }
    if config.mode != Mode::Nested {
        return Err(ConfigError::at("balloon", "ballooning is modelled in nested mode only so far"));
    }
    let Some(resident) = config.memory.resident else {
        return Err(ConfigError::at(
            "balloon",
            "a balloon takes pages from the guest's memory: set the guest's size as memory.resident",
        ));
    };
    let smallest = 1u64 << shape.offset_bits;
    let largest = config.pages.ranges.iter().map(|r| r.size.0).chain(config.pages.size.map(|s| s.0));
    let largest = largest.chain(config.pages.large.map(|s| s.0)).max().unwrap_or(smallest).max(smallest);
    // A huge-page pool is reserved out of the limit before the balloon.
    let pool =
        config.pages.huge_pool.map_or(0, |pool| pool.saturating_mul(1 << large_block_shift(&config.pages, shape)));
    let room = resident.0.saturating_sub(pool);
    for step in &config.balloon {
        if step.pages.saturating_mul(smallest).saturating_add(largest) > room {
            return Err(ConfigError::at(
                "balloon",
                format!(
                    "{} pages of {} in VM {} leave no room in memory.resident ({}{}) for a {} page",
                    step.pages,
                    ByteSize(smallest),
                    step.vm,
                    resident,
                    if pool > 0 { format!(" less the huge-page pool's {}", ByteSize(pool)) } else { String::new() },
                    ByteSize(largest)
                ),
            ));
        }
    }
    config.balloon.sort_by_key(|step| (step.at, step.vm));
    if let Some(pair) = config.balloon.windows(2).find(|p| (p[0].at, p[0].vm) == (p[1].at, p[1].vm)) {
        return Err(ConfigError::at(
            "balloon",
            format!("two steps for VM {} at instruction {}", pair[0].vm, pair[0].at),
        ));
    }
    Ok(())
}

/// The most limits one memory curve takes (a page's state holds one of
/// them).
pub const MAX_CURVE_LIMITS: usize = 128;

/// `memory.curve`: limits sorted ascending, each a whole number of the
/// `fixed` policy's pages; costs written out.
fn resolve_curve(memory: &mut MemoryConfig, shape: &TableShape, pages: &PagesConfig) -> Result<(), ConfigError> {
    let Some(curve) = &mut memory.curve else { return Ok(()) };
    let key = "memory.curve";
    if pages.policy != PagePolicyKind::Fixed {
        return Err(ConfigError::at(
            key,
            "needs the fixed page policy: stack distances count pages of one size, and under thp or ranges a page's size depends on the limit",
        ));
    }
    if curve.is_empty() || curve.len() > MAX_CURVE_LIMITS {
        return Err(ConfigError::at(key, format!("must list 1 to {MAX_CURVE_LIMITS} resident limits")));
    }
    let page = pages.size.map_or(1u64 << shape.offset_bits, |size| size.0);
    if let Some(bad) = curve.iter().find(|limit| limit.0 == 0 || !limit.0.is_multiple_of(page)) {
        return Err(ConfigError::at(
            key,
            format!("{bad} is not a whole, non-zero number of the policy's {} pages", ByteSize(page)),
        ));
    }
    curve.sort_by_key(|limit| limit.0);
    if let Some(twice) = curve.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ConfigError::at(key, format!("lists {} twice", twice[0])));
    }
    memory.costs.get_or_insert_with(PagingCosts::default);
    Ok(())
}

/// The size (as a shift) of the large pages a resolved `thp` or `ranges`
/// policy asks the frame allocator for, which fragmentation and the pool
/// are counted in: `thp`'s large size; for `ranges` 2 MiB, or the table's
/// second smallest size.
pub fn large_block_shift(pages: &PagesConfig, shape: &TableShape) -> u32 {
    match pages.large {
        Some(large) => large.0.trailing_zeros(),
        None => {
            let sizes = &shape.page_shifts;
            sizes.iter().copied().find(|&s| s == 21).or_else(|| sizes.get(1).copied()).unwrap_or(sizes[0])
        }
    }
}

/// Checks the `ranges` zones of a resolved config are aligned to the
/// smallest page and disjoint; names a zone by its place in the file.
pub(super) fn check_ranges(config: &Config) -> Result<(), ConfigError> {
    let base = 1u64 << config.table_shape().offset_bits;
    let mut ranges: Vec<(usize, &PageRange)> = config.pages.ranges.iter().enumerate().collect();
    ranges.sort_by_key(|(_, r)| r.start);
    for (at, &(i, range)) in ranges.iter().enumerate() {
        if range.start % base != 0 || range.end % base != 0 {
            return Err(ConfigError::at(
                format!("pages.ranges[{i}]"),
                format!("start and end must be multiples of the smallest page ({base} bytes)"),
            ));
        }
        if let Some(&(_, next)) = ranges.get(at + 1) {
            if next.start < range.end {
                return Err(ConfigError::at(
                    "pages.ranges",
                    format!(
                        "ranges {:#x}..{:#x} and {:#x}..{:#x} overlap",
                        range.start, range.end, next.start, next.end
                    ),
                ));
            }
        }
    }
    Ok(())
}
