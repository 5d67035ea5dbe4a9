//! The machine a run simulates, as a TOML file describes it.
//!
//! Plain serde structs that reject unknown keys; every field has a default
//! (documented on the field and in `configs/README.md`). [`Config::resolve`]
//! fills in what a named page-table format implies and checks the geometry,
//! so the simulator is only ever built from a config that makes sense.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::size::{ByteSize, GIB, KIB, MIB};

/// A configuration problem: which key, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key (`tlb.l2.ways`), empty for the file.
    pub key: String,
    pub message: String,
    /// 1-based line in the TOML text, when known.
    pub line: Option<usize>,
}

impl ConfigError {
    pub(crate) fn at(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { key: key.into(), message: message.into(), line: None }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Everything about the simulated machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Short name used in reports [default: "unnamed"].
    #[serde(default = "default_name")]
    pub name: String,
    /// What the machine is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Where its figures come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Seeds every random choice (shuffled frames, random replacement) [default: 0].
    #[serde(default)]
    pub seed: u64,
    /// How addresses are translated [default: native].
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub page_table: PageTableConfig,
    /// Which page size backs each virtual page.
    #[serde(default)]
    pub pages: PagesConfig,
    /// Physical memory and how frames are handed out.
    #[serde(default)]
    pub memory: MemoryConfig,
    /// The TLBs, by name.
    #[serde(default)]
    pub tlb: BTreeMap<String, TlbConfig>,
    /// Page-walk caches.
    #[serde(default)]
    pub pwc: PwcConfig,
    /// What a page-table memory reference costs.
    #[serde(default)]
    pub walk: WalkConfig,
    /// The hypervisor's tables and memory (nested and shadow modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostConfig>,
    /// The nested TLB and host page-walk caches (nested mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nested: Option<NestedConfig>,
    /// What a switch between address spaces and VMs does to the TLBs.
    #[serde(default)]
    pub context: ContextConfig,
    /// What VM exits cost, and timer exits (nested and shadow modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exits: Option<ExitConfig>,
}

fn default_name() -> String {
    "unnamed".into()
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: default_name(),
            description: String::new(),
            sources: Vec::new(),
            seed: 0,
            mode: Mode::default(),
            page_table: PageTableConfig::default(),
            pages: PagesConfig::default(),
            memory: MemoryConfig::default(),
            tlb: BTreeMap::new(),
            pwc: PwcConfig::default(),
            walk: WalkConfig::default(),
            host: None,
            nested: None,
            context: ContextConfig::default(),
            exits: None,
        }
    }
}

/// Translation mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One page table per address space, walked by the hardware.
    #[default]
    Native,
    /// Guest tables (guest-virtual to guest-physical) walked in two
    /// dimensions with the host's (guest-physical to host-physical): EPT/NPT.
    Nested,
    /// The hardware walks a shadow table (guest-virtual to host-physical)
    /// that the hypervisor keeps in step with the guest's, trapping guest
    /// page-table updates and CR3 writes.
    Shadow,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Nested => "nested",
            Mode::Shadow => "shadow",
        }
    }

    pub fn is_virtualized(self) -> bool {
        self != Mode::Native
    }
}

/// The hypervisor's side: its page table (guest-physical to host-physical)
/// and the host's physical memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub page_table: PageTableConfig,
    /// Which page size backs each guest-physical page [default: fixed, the
    /// table's smallest].
    #[serde(default)]
    pub pages: PagesConfig,
    #[serde(default = "default_host_memory")]
    pub memory: MemoryConfig,
}

fn default_host_memory() -> MemoryConfig {
    MemoryConfig { size: ByteSize(64 * GIB), allocator: Allocator::Sequential }
}

/// Nested mode's caches of the host dimension.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedConfig {
    /// A TLB of guest-physical to host-physical translations, consulted for
    /// every guest-physical address a 2D walk translates [default: none].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlb: Option<NestedTlbConfig>,
    /// Page-walk caches of the host table (`pwc` is the guest's).
    #[serde(default)]
    pub pwc: PwcConfig,
}

/// The nested TLB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedTlbConfig {
    pub entries: u32,
    /// [default: fully associative]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ways: Option<u32>,
    /// Host page sizes held [default: every size the host table maps].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_sizes: Option<Vec<ByteSize>>,
    /// [default: lru]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    /// Cycles per lookup [default: 0].
    #[serde(default)]
    pub latency: u32,
}

/// What happens to cached translations when the running address space or
/// VM changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    /// `flush` (every switch empties the TLBs and page-walk caches) or
    /// `tagged` (entries carry an address-space id from a finite pool)
    /// [default: tagged].
    #[serde(default)]
    pub switch: SwitchPolicy,
    /// `tagged`: address-space ids per VM: 4096 for x86's 12-bit PCIDs, 6 for
    /// the dynamic ASIDs Linux keeps per CPU. When they run out, the least
    /// recently used id is recycled and only its entries are flushed
    /// [default: 4096].
    #[serde(default = "default_ids")]
    pub ids: u32,
    /// Entries carry the VM's id too (Intel VPID, AMD ASID, Arm VMID): a
    /// switch between VMs keeps them. Without, a switch between VMs, and
    /// every VM exit, flushes [default: true].
    #[serde(default = "default_true")]
    pub vm_tags: bool,
}

fn default_ids() -> u32 {
    4096
}

fn default_true() -> bool {
    true
}

impl Default for ContextConfig {
    fn default() -> ContextConfig {
        ContextConfig { switch: SwitchPolicy::default(), ids: default_ids(), vm_tags: true }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchPolicy {
    Flush,
    #[default]
    Tagged,
}

/// VM exits: the round trip every exit pays, the hypervisor's work per
/// reason, and timer exits.
///
/// The defaults are assumptions of the right order, not measurements: an
/// exit and re-entry costs several hundred to about a thousand cycles on
/// processors since Nehalem (Agesen et al., "Software Techniques for
/// Avoiding Hardware Virtualization Exits", USENIX ATC 2012, chart the
/// hardware round trip falling from thousands of cycles on the first VT-x
/// parts), and handling a fault or CR3 write in the hypervisor adds a few
/// thousand more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitConfig {
    /// Cycles of an exit and re-entry, every reason [default: 1000].
    #[serde(default = "default_round_trip")]
    pub round_trip: u32,
    /// Shadow: the hypervisor's work for a trapped guest page-table write
    /// (every guest demand-paging fault) [default: 4000].
    #[serde(default = "default_page_table_update")]
    pub page_table_update: u32,
    /// Shadow: the work for a trapped guest CR3 write (a guest context
    /// switch) [default: 2000].
    #[serde(default = "default_cr3_write")]
    pub cr3_write: u32,
    /// Shadow: the work for a hidden fault, filling a shadow entry the guest
    /// had already mapped (a guest page larger than the shadow's)
    /// [default: 2000].
    #[serde(default = "default_shadow_fill")]
    pub shadow_fill: u32,
    /// Nested: the work for an EPT/NPT violation, mapping a guest-physical
    /// page the first time it is touched [default: 4000].
    #[serde(default = "default_host_page_fault")]
    pub host_page_fault: u32,
    /// A timer exit every this many instructions; 0 for none [default: 0].
    #[serde(default)]
    pub timer_interval: u64,
}

fn default_round_trip() -> u32 {
    1000
}

fn default_page_table_update() -> u32 {
    4000
}

fn default_cr3_write() -> u32 {
    2000
}

fn default_shadow_fill() -> u32 {
    2000
}

fn default_host_page_fault() -> u32 {
    4000
}

impl Default for ExitConfig {
    fn default() -> ExitConfig {
        ExitConfig {
            round_trip: default_round_trip(),
            page_table_update: default_page_table_update(),
            cr3_write: default_cr3_write(),
            shadow_fill: default_shadow_fill(),
            host_page_fault: default_host_page_fault(),
            timer_interval: 0,
        }
    }
}

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
fn table_format(name: &str) -> Option<(Vec<u32>, u32, u32, Vec<u64>)> {
    Some(match name {
        "x86-64-4level" | "aarch64-4k" => (vec![9; 4], 12, 8, vec![4 * KIB, 2 * MIB, GIB]),
        "x86-64-5level" => (vec![9; 5], 12, 8, vec![4 * KIB, 2 * MIB, GIB]),
        "x86-32" => (vec![10, 10], 12, 4, vec![4 * KIB, 4 * MIB]),
        "flat" => (vec![20], 12, 4, vec![4 * KIB]),
        _ => return None,
    })
}

const TABLE_FORMATS: &str = "x86-64-4level, x86-64-5level, x86-32, flat, aarch64-4k or custom";

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
}

impl Default for PagesConfig {
    fn default() -> PagesConfig {
        PagesConfig { policy: PagePolicyKind::Fixed, size: None, ranges: Vec::new(), large: None, promote_after: None }
    }
}

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
}

fn default_memory_size() -> ByteSize {
    ByteSize(16 * GIB)
}

impl Default for MemoryConfig {
    fn default() -> MemoryConfig {
        MemoryConfig { size: default_memory_size(), allocator: Allocator::default() }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allocator {
    #[default]
    Sequential,
    Shuffled,
}

/// Which references a TLB serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Serves {
    Instruction,
    Data,
    /// Both instruction fetches and data references.
    Unified,
}

impl Serves {
    pub fn instructions(self) -> bool {
        matches!(self, Serves::Instruction | Serves::Unified)
    }

    pub fn data(self) -> bool {
        matches!(self, Serves::Data | Serves::Unified)
    }
}

/// Replacement policy of a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Replacement {
    /// Least recently used.
    #[default]
    Lru,
    /// Tree pseudo-LRU.
    TreePlru,
    /// First in, first out.
    Fifo,
    /// A victim drawn from the seeded generator.
    Random,
    /// Static re-reference interval prediction, 2 bits per way (see
    /// `replacement`).
    Srrip,
}

/// One TLB: a level of the hierarchy for instructions, data or both, made of
/// one or more arrays (a shared array probed per page size, or one array per
/// size).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlbConfig {
    /// 1 is probed first; a miss goes on to the next level that serves the
    /// same kind of reference.
    pub level: u32,
    pub serves: Serves,
    /// Cycles a lookup here adds to an access (0 for a first-level TLB probed
    /// in parallel with the data cache) [default: 0].
    #[serde(default)]
    pub latency: u32,
    /// The TLB's main array: its entries...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u32>,
    /// ...ways [default: fully associative]...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ways: Option<u32>,
    /// ...sets: with `ways`, makes `entries` sets x ways whatever it was, so
    /// that sweeping `ways` keeps the sets [default: entries / ways]...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sets: Option<u32>,
    /// ...page sizes held [default: the sizes the table maps that no array
    /// below names]...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_sizes: Option<Vec<ByteSize>>,
    /// ...and replacement [default: lru], also the default of `arrays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    /// Further arrays, by name (e.g. one per large page size).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arrays: BTreeMap<String, ArrayConfig>,
}

/// One set-associative array of a TLB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayConfig {
    pub entries: u32,
    /// [default: fully associative]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ways: Option<u32>,
    /// [default: the sizes the table maps that no other array names]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_sizes: Option<Vec<ByteSize>>,
    /// [default: the TLB's]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
}

/// Page-walk caches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PwcConfig {
    /// `none`, `split` (Intel-style: a cache per upper level, keyed by
    /// virtual-address prefix) or `unified` (AMD-style: one cache of
    /// upper-level entries, keyed by their physical address) [default: none].
    #[serde(default)]
    pub kind: PwcKind,
    /// Cycles per probe [default: 0].
    #[serde(default)]
    pub latency: u32,
    /// `unified`: entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u32>,
    /// `unified`: ways [default: fully associative].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ways: Option<u32>,
    /// `split`: a cache per level, `l2` (entries of level-2 tables, e.g.
    /// x86's PDEs) up to the root's level (`l4` for PML4Es on 4 levels).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub levels: BTreeMap<String, CacheGeometry>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PwcKind {
    #[default]
    None,
    Split,
    Unified,
}

/// Entries and ways of a small LRU cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheGeometry {
    pub entries: u32,
    /// [default: fully associative]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ways: Option<u32>,
}

/// The cost of the memory references a walk makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalkConfig {
    /// `fixed` (every reference costs `latency`) or `cache` (references go
    /// through a cache of page-table lines) [default: fixed].
    #[serde(default)]
    pub memory: WalkMemory,
    /// `fixed`: cycles per reference [default: 20, about an L2-cache hit].
    #[serde(default = "default_walk_latency")]
    pub latency: u32,
    /// `cache`: the cache of page-table lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<LineCacheConfig>,
}

fn default_walk_latency() -> u32 {
    20
}

impl Default for WalkConfig {
    fn default() -> WalkConfig {
        WalkConfig { memory: WalkMemory::Fixed, latency: default_walk_latency(), cache: None }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalkMemory {
    #[default]
    Fixed,
    Cache,
}

/// An LRU cache of page-table lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineCacheConfig {
    /// [default: 64B]
    #[serde(default = "default_line")]
    pub line_bytes: ByteSize,
    pub capacity: ByteSize,
    /// [default: fully associative]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ways: Option<u32>,
    pub hit_latency: u32,
    pub miss_latency: u32,
}

fn default_line() -> ByteSize {
    ByteSize(64)
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

impl Config {
    /// Parses TOML; unknown keys, wrong types and bad values are errors that
    /// name the key and line.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| toml_error(text, &e))
    }

    /// The config with everything a named format or a default implies
    /// written out, checked. Resolving a resolved config changes nothing.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut config = self.clone();
        let shape = resolve_table(&mut config.page_table)?;
        let sizes: Vec<ByteSize> = shape.page_shifts.iter().map(|&s| ByteSize(1 << s)).collect();
        resolve_pages(&mut config.pages, &sizes)?;
        resolve_memory(&config.memory, &shape)?;
        resolve_virtualization(&mut config)?;
        // TLBs hold translations, whose sizes include the host's when
        // virtualized.
        let translation_sizes: Vec<ByteSize> = config.translation_shifts().iter().map(|&s| ByteSize(1 << s)).collect();
        for (name, tlb) in &mut config.tlb {
            resolve_tlb(name, tlb, &translation_sizes)?;
        }
        check_hierarchy(&config.tlb)?;
        resolve_pwc(&mut config.pwc, &shape)?;
        resolve_walk(&mut config.walk)?;
        if config.context.ids == 0 || config.context.ids > 1 << 16 {
            return Err(ConfigError::at("context.ids", "must be 1 to 65536"));
        }
        crate::pagetable::check_ranges(&config)?;
        if config.translation_shifts().len() > crate::pagetable::MAX_LEVELS {
            return Err(ConfigError::at(
                "host.page_table.page_sizes",
                format!(
                    "the guest's and host's page sizes together make {} translation sizes; at most {} are supported",
                    config.translation_shifts().len(),
                    crate::pagetable::MAX_LEVELS
                ),
            ));
        }
        crate::budget::check(&config, crate::budget::SIMULATOR_MEMORY_BUDGET)?;
        Ok(config)
    }

    /// Page sizes (as shifts, ascending) a translation can have: the
    /// table's, and when virtualized also the host's, since a translation
    /// is cached at the smaller of its guest and host page sizes.
    pub fn translation_shifts(&self) -> Vec<u32> {
        let mut shifts = self.table_shape().page_shifts;
        if let Some(host) = self.host_shape() {
            shifts.extend(host.page_shifts);
            shifts.sort_unstable();
            shifts.dedup();
        }
        shifts
    }

    /// The host table's geometry of a resolved virtualized config.
    pub fn host_shape(&self) -> Option<TableShape> {
        self.host.as_ref().map(|host| shape_of(&host.page_table))
    }

    /// The table geometry of a resolved config (the guest's, when
    /// virtualized).
    pub fn table_shape(&self) -> TableShape {
        shape_of(&self.page_table)
    }

    /// TLB names in probe order: by level, then name.
    pub fn tlb_order(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tlb.keys().map(String::as_str).collect();
        names.sort_by_key(|name| (self.tlb[*name].level, *name));
        names
    }

    /// The resolved config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("configs serialize")
    }
}

fn shape_of(table: &PageTableConfig) -> TableShape {
    TableShape {
        index_bits: table.index_bits.clone().expect("resolved"),
        offset_bits: table.offset_bits.expect("resolved"),
        entry_bytes: table.entry_bytes.expect("resolved"),
        page_shifts: table.page_sizes.as_ref().expect("resolved").iter().map(|s| s.0.trailing_zeros()).collect(),
    }
}

/// Prefixes an error's key (a host table's `page_table.format` is
/// `host.page_table.format`).
fn under(prefix: &'static str) -> impl Fn(ConfigError) -> ConfigError {
    move |e| ConfigError { key: format!("{prefix}.{}", e.key), ..e }
}

fn resolve_virtualization(config: &mut Config) -> Result<(), ConfigError> {
    let mode = config.mode;
    if !mode.is_virtualized() {
        for (key, given) in
            [("host", config.host.is_some()), ("nested", config.nested.is_some()), ("exits", config.exits.is_some())]
        {
            if given {
                return Err(ConfigError::at(key, "applies to the nested and shadow modes only; this config is native"));
            }
        }
        return Ok(());
    }
    if config.pages.policy == PagePolicyKind::Thp && config.pages.promote_after != Some(1) {
        return Err(ConfigError::at(
            "pages.promote_after",
            "THP promotion of mapped pages is modelled in native mode only; use 1",
        ));
    }
    let host = config.host.get_or_insert_with(HostConfig::default);
    let host_shape = resolve_table(&mut host.page_table).map_err(under("host"))?;
    let host_sizes: Vec<ByteSize> = host_shape.page_shifts.iter().map(|&s| ByteSize(1 << s)).collect();
    resolve_pages(&mut host.pages, &host_sizes).map_err(under("host"))?;
    if host.pages.policy == PagePolicyKind::Thp && host.pages.promote_after != Some(1) {
        return Err(ConfigError::at(
            "host.pages.promote_after",
            "THP promotion is modelled in native mode only; use 1",
        ));
    }
    resolve_memory(&host.memory, &host_shape).map_err(under("host"))?;
    if mode == Mode::Shadow {
        // A shadow entry maps a page of the smaller of the guest's and the
        // host's sizes, in the guest table's format: each host size below
        // the guest's largest must be one that format maps.
        let guest_shifts = shape_of(&config.page_table).page_shifts;
        let largest = guest_shifts.last().copied().unwrap_or(0);
        if let Some(&shift) =
            host_shape.page_shifts.iter().find(|&&shift| shift < largest && !guest_shifts.contains(&shift))
        {
            return Err(ConfigError::at(
                "host.page_table.page_sizes",
                format!(
                    "shadow tables have the guest table's format, which cannot map the host's {} pages",
                    ByteSize(1 << shift)
                ),
            ));
        }
    }
    // Guest-physical addresses must fit the host table, with room for the
    // allocator's further pools.
    if host_shape.va_bits() < 64 && config.memory.size.0 > 1u64 << host_shape.va_bits().saturating_sub(4) {
        return Err(ConfigError::at(
            "memory.size",
            format!(
                "the guest's physical memory must fit well inside the host table's {}-bit range",
                host_shape.va_bits()
            ),
        ));
    }
    config.exits.get_or_insert_with(ExitConfig::default);
    match mode {
        Mode::Nested => {
            let nested = config.nested.get_or_insert_with(NestedConfig::default);
            resolve_pwc(&mut nested.pwc, &host_shape).map_err(under("nested"))?;
            if let Some(tlb) = &mut nested.tlb {
                tlb.ways = Some(check_geometry("nested.tlb", tlb.entries, tlb.ways)?);
                resolve_sizes("nested.tlb.page_sizes", &mut tlb.page_sizes, &host_sizes)?;
                tlb.replacement.get_or_insert(Replacement::Lru);
            }
        }
        Mode::Shadow => {
            if config.nested.is_some() {
                return Err(ConfigError::at("nested", "applies to the nested mode only; this config is shadow"));
            }
        }
        Mode::Native => unreachable!("handled above"),
    }
    Ok(())
}

/// Turns a TOML error into a ConfigError with the line and, where serde says
/// which, the key.
pub fn toml_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err.span().map(|span| 1 + text[..span.start.min(text.len())].bytes().filter(|&b| b == b'\n').count());
    ConfigError { key: String::new(), message: err.message().trim_end().to_owned(), line }
}

fn resolve_table(table: &mut PageTableConfig) -> Result<TableShape, ConfigError> {
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

fn require_mappable(key: &str, size: ByteSize, sizes: &[ByteSize]) -> Result<(), ConfigError> {
    if sizes.contains(&size) {
        return Ok(());
    }
    let can: Vec<String> = sizes.iter().map(ToString::to_string).collect();
    Err(ConfigError::at(key, format!("the page table cannot map {size} pages; it maps {}", can.join(", "))))
}

fn resolve_pages(pages: &mut PagesConfig, sizes: &[ByteSize]) -> Result<(), ConfigError> {
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

fn resolve_memory(memory: &MemoryConfig, shape: &TableShape) -> Result<(), ConfigError> {
    let largest = crate::frames::largest_block(shape);
    if memory.size.0 == 0 || memory.size.0 % largest != 0 {
        return Err(ConfigError::at(
            "memory.size",
            format!("must be a non-zero multiple of {}, the largest block the page table allocates", ByteSize(largest)),
        ));
    }
    Ok(())
}

/// Checks entries and ways; returns the ways (fully associative when absent).
fn check_geometry(key: &str, entries: u32, ways: Option<u32>) -> Result<u32, ConfigError> {
    let ways = ways.unwrap_or(entries);
    if entries == 0 || ways == 0 {
        return Err(ConfigError::at(key, "entries and ways must be at least 1"));
    }
    if ways > entries || entries % ways != 0 {
        return Err(ConfigError::at(key, format!("{entries} entries are not divisible into sets of {ways} ways")));
    }
    if ways > 4096 {
        return Err(ConfigError::at(key, "at most 4096 ways"));
    }
    Ok(ways)
}

fn resolve_sizes(key: &str, held: &mut Option<Vec<ByteSize>>, sizes: &[ByteSize]) -> Result<(), ConfigError> {
    let list = held.get_or_insert_with(|| sizes.to_vec());
    list.sort_unstable();
    list.dedup();
    if list.is_empty() {
        return Err(ConfigError::at(key, "must hold at least one page size"));
    }
    for size in list.iter() {
        require_mappable(key, *size, sizes)?;
    }
    Ok(())
}

fn resolve_tlb(name: &str, tlb: &mut TlbConfig, sizes: &[ByteSize]) -> Result<(), ConfigError> {
    let key = format!("tlb.{name}");
    if tlb.level == 0 {
        return Err(ConfigError::at(format!("{key}.level"), "levels start at 1"));
    }
    let replacement = *tlb.replacement.get_or_insert(Replacement::Lru);
    if let Some(sets) = tlb.sets {
        let Some(ways) = tlb.ways else {
            return Err(ConfigError::at(format!("{key}.sets"), "sets needs ways (entries are sets x ways)"));
        };
        tlb.entries =
            Some(sets.checked_mul(ways).ok_or_else(|| ConfigError::at(&key, "sets x ways is too many entries"))?);
    }
    if tlb.entries.is_none() {
        if tlb.ways.is_some() || tlb.page_sizes.is_some() {
            return Err(ConfigError::at(&key, "ways and page_sizes need entries"));
        }
        if tlb.arrays.is_empty() {
            return Err(ConfigError::at(&key, "a TLB needs entries, or arrays"));
        }
    }
    // An array that does not say which sizes it holds holds those no other
    // array of the TLB names; only one array may leave it unsaid.
    let unsaid = usize::from(tlb.entries.is_some() && tlb.page_sizes.is_none())
        + tlb.arrays.values().filter(|a| a.page_sizes.is_none()).count();
    if unsaid > 1 {
        return Err(ConfigError::at(&key, "more than one array leaves page_sizes unsaid; give them"));
    }
    let named: Vec<ByteSize> = tlb
        .page_sizes
        .iter()
        .chain(tlb.arrays.values().filter_map(|a| a.page_sizes.as_ref()))
        .flatten()
        .copied()
        .collect();
    let rest: Vec<ByteSize> = sizes.iter().copied().filter(|s| !named.contains(s)).collect();
    if let Some(entries) = tlb.entries {
        let ways = check_geometry(&key, entries, tlb.ways)?;
        tlb.ways = Some(ways);
        tlb.sets = Some(entries / ways);
        if tlb.page_sizes.is_none() {
            tlb.page_sizes = Some(rest.clone());
        }
        resolve_sizes(&format!("{key}.page_sizes"), &mut tlb.page_sizes, sizes)?;
    }
    for (array_name, array) in &mut tlb.arrays {
        let key = format!("{key}.arrays.{array_name}");
        array.ways = Some(check_geometry(&key, array.entries, array.ways)?);
        if array.page_sizes.is_none() {
            array.page_sizes = Some(rest.clone());
        }
        resolve_sizes(&format!("{key}.page_sizes"), &mut array.page_sizes, sizes)?;
        array.replacement.get_or_insert(replacement);
    }
    // At most one array may hold each size: a translation is cached in one
    // place per TLB, so two candidates would make the fill ambiguous.
    let mut held: Vec<ByteSize> = Vec::new();
    for list in tlb.page_sizes.iter().chain(tlb.arrays.values().filter_map(|a| a.page_sizes.as_ref())) {
        for size in list {
            if held.contains(size) {
                return Err(ConfigError::at(&key, format!("two arrays hold {size} pages; give each size one array")));
            }
            held.push(*size);
        }
    }
    Ok(())
}

/// At most one TLB per level and kind of reference.
fn check_hierarchy(tlbs: &BTreeMap<String, TlbConfig>) -> Result<(), ConfigError> {
    for (kind, serves) in [("instruction", Serves::instructions as fn(Serves) -> bool), ("data", Serves::data)] {
        let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
        for (name, tlb) in tlbs {
            if serves(tlb.serves) {
                if let Some(other) = seen.insert(tlb.level, name) {
                    return Err(ConfigError::at(
                        format!("tlb.{name}"),
                        format!("tlb.{other} already serves {kind} references at level {}", tlb.level),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn resolve_pwc(pwc: &mut PwcConfig, shape: &TableShape) -> Result<(), ConfigError> {
    let levels = shape.index_bits.len();
    match pwc.kind {
        PwcKind::None => {
            if pwc.entries.is_some() || pwc.ways.is_some() || !pwc.levels.is_empty() {
                return Err(ConfigError::at("pwc", "kind = \"none\" takes no entries, ways or levels"));
            }
        }
        PwcKind::Unified => {
            let entries = pwc.entries.ok_or_else(|| ConfigError::at("pwc.entries", "a unified PWC needs entries"))?;
            pwc.ways = Some(check_geometry("pwc", entries, pwc.ways)?);
            if !pwc.levels.is_empty() {
                return Err(ConfigError::at("pwc.levels", "levels belong to kind = \"split\""));
            }
        }
        PwcKind::Split => {
            if pwc.entries.is_some() || pwc.ways.is_some() {
                return Err(ConfigError::at("pwc", "a split PWC gives entries per level, in pwc.levels"));
            }
            if pwc.levels.is_empty() {
                return Err(ConfigError::at("pwc.levels", "a split PWC needs at least one level"));
            }
            for (name, cache) in &mut pwc.levels {
                let key = format!("pwc.levels.{name}");
                let level = parse_pwc_level(name).filter(|level| (2..=levels).contains(level)).ok_or_else(|| {
                    ConfigError::at(
                        &key,
                        format!("expected l2 to l{levels}: the upper levels of this {levels}-level table"),
                    )
                })?;
                let _ = level;
                cache.ways = Some(check_geometry(&key, cache.entries, cache.ways)?);
            }
        }
    }
    Ok(())
}

/// `l2` -> 2: a level counted from the leaf level (1).
pub fn parse_pwc_level(name: &str) -> Option<usize> {
    name.strip_prefix('l')?.parse().ok()
}

fn resolve_walk(walk: &mut WalkConfig) -> Result<(), ConfigError> {
    match (walk.memory, &mut walk.cache) {
        (WalkMemory::Fixed, Some(_)) => Err(ConfigError::at("walk.cache", "belongs to memory = \"cache\"")),
        (WalkMemory::Fixed, None) => Ok(()),
        (WalkMemory::Cache, None) => {
            Err(ConfigError::at("walk.cache", "memory = \"cache\" needs a [walk.cache] table"))
        }
        (WalkMemory::Cache, Some(cache)) => {
            let line = cache.line_bytes.0;
            if !line.is_power_of_two() || !(4..=4096).contains(&line) {
                return Err(ConfigError::at("walk.cache.line_bytes", "must be a power of two from 4 to 4096"));
            }
            if cache.capacity.0 % line != 0 || cache.capacity.0 == 0 {
                return Err(ConfigError::at("walk.cache.capacity", "must be a non-zero multiple of the line size"));
            }
            let lines = u32::try_from(cache.capacity.0 / line)
                .map_err(|_| ConfigError::at("walk.cache.capacity", "too many lines"))?;
            cache.ways = Some(check_geometry("walk.cache", lines, cache.ways)?);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text)?.resolve()
    }

    #[test]
    fn an_empty_config_resolves_to_x86_64_with_4k_pages() {
        let config = resolve("").unwrap();
        let shape = config.table_shape();
        assert_eq!(shape.index_bits, vec![9, 9, 9, 9]);
        assert_eq!(shape.page_shifts, vec![12, 21, 30]);
        assert_eq!(shape.va_bits(), 48);
        assert_eq!(config.pages.size, Some(ByteSize(4096)));
        assert_eq!(config.resolve().unwrap(), config, "resolving twice changes nothing");
        let again = Config::from_toml(&config.to_toml()).unwrap();
        assert_eq!(again, config, "the printed config reads back");
    }

    #[test]
    fn named_formats_give_their_geometry() {
        let x86_32 = resolve("[page_table]\nformat = \"x86-32\"\n").unwrap().table_shape();
        // A 4 MiB page leaves a 10-bit directory index and a 22-bit offset.
        assert_eq!((x86_32.index_bits.clone(), x86_32.leaf_shift(0)), (vec![10, 10], 22));
        assert_eq!(x86_32.page_shifts, vec![12, 22]);
        let flat = resolve("[page_table]\nformat = \"flat\"\n").unwrap().table_shape();
        assert_eq!((flat.index_bits.clone(), flat.entry_bytes, flat.va_bits()), (vec![20], 4, 32));
        let five = resolve("[page_table]\nformat = \"x86-64-5level\"\n").unwrap().table_shape();
        assert_eq!(five.va_bits(), 57);
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let err =
            Config::from_toml("name = \"x\"\n[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentires = 64\n").unwrap_err();
        assert_eq!(err.line, Some(5));
        assert!(err.message.contains("unknown field `entires`"), "{err}");
    }

    #[test]
    fn geometry_errors_are_clear() {
        let cases = [
            ("[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 1536\nways = 10\n", "tlb.l2: 1536 entries are not divisible into sets of 10 ways"),
            ("[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 0\n", "tlb.l2: entries and ways must be at least 1"),
            ("[pages]\nsize = \"4MiB\"\n", "pages.size: the page table cannot map 4MiB pages"),
            ("[page_table]\nformat = \"x86-32\"\npage_sizes = [\"4KiB\", \"2MiB\"]\n", "page_table.page_sizes: this table cannot map 2MiB pages"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 4\n[tlb.b]\nlevel = 1\nserves = \"unified\"\nentries = 4\n", "tlb.b: tlb.a already serves data references at level 1"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\npage_sizes = [\"4KiB\"]\n[tlb.a.arrays.big]\nentries = 8\npage_sizes = [\"4KiB\", \"2MiB\"]\n", "tlb.a: two arrays hold 4KiB pages"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\n[tlb.a.arrays.big]\nentries = 8\n", "tlb.a: more than one array leaves page_sizes unsaid"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\n[tlb.a.arrays.big]\nentries = 8\npage_sizes = [\"4KiB\", \"2MiB\", \"1GiB\"]\n", "tlb.a.page_sizes: must hold at least one page size"),
            ("[pwc]\nkind = \"split\"\n[pwc.levels.l1]\nentries = 4\n", "pwc.levels.l1: expected l2 to l4"),
            ("[walk]\nmemory = \"cache\"\n", "walk.cache: memory = \"cache\" needs"),
            ("[memory]\nsize = \"3MiB\"\n", "memory.size: must be a non-zero multiple of 1GiB"),
            ("[page_table]\nformat = \"sparc\"\n", "page_table.format: unknown format \"sparc\""),
            ("[pages]\npolicy = \"thp\"\npromote_after = 600\n", "pages.promote_after: must be 1 to 512"),
        ];
        for (text, want) in cases {
            let err = resolve(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn sets_with_ways_make_the_entries() {
        let tlb = |extra: &str| {
            resolve(&format!("[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 1536\nways = 12\n{extra}"))
                .map(|c| (c.tlb["l2"].entries, c.tlb["l2"].ways, c.tlb["l2"].sets))
        };
        assert_eq!(tlb(""), Ok((Some(1536), Some(12), Some(128))), "sets written out");
        // `sets` decides the entries, so that sweeping ways keeps the sets.
        assert_eq!(tlb("sets = 64\n"), Ok((Some(768), Some(12), Some(64))));
        let err = resolve("[tlb.l2]\nlevel = 2\nserves = \"unified\"\nsets = 64\n").unwrap_err();
        assert!(err.to_string().contains("tlb.l2.sets: sets needs ways"), "{err}");
    }

    #[test]
    fn virtualized_modes_get_a_host_and_native_refuses_one() {
        let nested = resolve("mode = \"nested\"\n[host.pages]\nsize = \"2MiB\"\n").unwrap();
        assert_eq!(nested.host_shape().unwrap().va_bits(), 48);
        assert_eq!(nested.host.as_ref().unwrap().pages.size, Some(ByteSize(2 << 20)));
        assert_eq!(nested.exits.as_ref().unwrap().round_trip, 1000);
        assert!(nested.nested.is_some());
        assert_eq!(nested.resolve().unwrap(), nested);
        let shadow = resolve("mode = \"shadow\"\n").unwrap();
        assert!(shadow.nested.is_none() && shadow.host.is_some());
        let cases = [
            ("[host.pages]\nsize = \"2MiB\"\n", "host: applies to the nested and shadow modes only"),
            ("[exits]\ntimer_interval = 100\n", "exits: applies to the nested and shadow modes only"),
            ("mode = \"shadow\"\n[nested.tlb]\nentries = 8\n", "nested: applies to the nested mode only"),
            (
                "mode = \"nested\"\n[host.page_table]\nformat = \"x86-32\"\n",
                "memory.size: the guest's physical memory must fit",
            ),
            ("mode = \"nested\"\n[host.pages]\nsize = \"4MiB\"\n", "host.pages.size: the page table cannot map 4MiB"),
            ("mode = \"nested\"\n[nested.tlb]\nentries = 10\nways = 4\n", "nested.tlb: 10 entries are not divisible"),
            (
                "mode = \"nested\"\n[pages]\npolicy = \"thp\"\npromote_after = 4\n",
                "pages.promote_after: THP promotion of mapped pages",
            ),
            ("[context]\nids = 0\n", "context.ids: must be 1 to 65536"),
        ];
        for (text, want) in cases {
            let err = resolve(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn entries_and_ways_need_not_be_powers_of_two() {
        let config = resolve("[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 1536\nways = 12\n").unwrap();
        assert_eq!(config.tlb["l2"].ways, Some(12));
        assert_eq!(config.tlb["l2"].page_sizes.as_ref().unwrap().len(), 3, "holds every mappable size by default");
        let config = resolve("[tlb.l1]\nlevel = 1\nserves = \"unified\"\nentries = 48\n").unwrap();
        assert_eq!(config.tlb["l1"].ways, Some(48), "fully associative by default");
        let config = resolve("[tlb.l1]\nlevel = 1\nserves = \"data\"\nentries = 64\n[tlb.l1.arrays.large]\nentries = 8\npage_sizes = [\"2MiB\"]\n").unwrap();
        assert_eq!(
            config.tlb["l1"].page_sizes,
            Some(vec![ByteSize(4096), ByteSize(1 << 30)]),
            "the sizes no array names"
        );
    }
}
