//! `[host]`, `[nested]` and `[exits]`: the virtualized modes' sections, and
//! their resolution.

#[allow(unused_imports)]
use super::*;

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
    /// Nested: every guest-physical page that holds zeros (read but never
    /// written since its guest demand-zeroed it) is backed by one shared
    /// host frame, mapped read-only; the first write to one is a
    /// copy-on-write fault [default: false].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub share_zero_pages: bool,
}

fn default_host_memory() -> MemoryConfig {
    MemoryConfig { size: ByteSize(64 * GIB), allocator: Allocator::Sequential, ..MemoryConfig::default() }
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

pub(super) fn resolve_virtualization(config: &mut Config) -> Result<(), ConfigError> {
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
    if host.memory.fragmentation.is_some() || host.pages.huge_pool.is_some() || host.memory.curve.is_some() {
        return Err(ConfigError::at(
            "host.memory",
            "a host memory curve, host fragmentation and a host huge-page pool are not modelled yet: the host always gets its page size",
        ));
    }
    if host.share_zero_pages {
        if mode == Mode::Shadow {
            return Err(ConfigError::at(
                "host.share_zero_pages",
                "zero-page sharing is modelled in nested mode only so far",
            ));
        }
        let smallest = host_shape.offset_bits;
        let guest_smallest = shape_of(&config.page_table).offset_bits;
        if host.pages.policy != PagePolicyKind::Fixed || host.pages.size != Some(ByteSize(1 << smallest)) {
            return Err(ConfigError::at(
                "host.share_zero_pages",
                format!(
                    "shares pages of the host's smallest size ({}) only: set host.pages to that size (large pages defeat sharing: a large page is rarely all zeros)",
                    ByteSize(1 << smallest)
                ),
            ));
        }
        if smallest > guest_smallest {
            return Err(ConfigError::at(
                "host.share_zero_pages",
                format!(
                    "the host's {} pages are larger than the guest's smallest page ({}): a host page would hold several guest pages",
                    ByteSize(1 << smallest),
                    ByteSize(1 << guest_smallest)
                ),
            ));
        }
    }
    resolve_memory(&mut host.memory, &host_shape, &host.pages).map_err(under("host"))?;
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
