//! What a simulator built from a config will allocate, estimated before
//! anything is allocated, and the limit resolution holds it to.
//!
//! Without this a config that passes every geometry check can still ask for
//! more memory than any machine has (a TLB of four billion entries, a table
//! level of 2^30 entries, a physical memory of 2^63 bytes whose block order
//! the frame allocator keeps), and the process aborts on the allocation.
//! Resolution refuses such a config instead, naming the key and the figure,
//! so `config show`, sweep planning and `run` refuse it alike.
//!
//! The per-entry figures are upper bounds of what the structures hold (see
//! each constant); the estimate covers the structures whose size a config
//! sets, not those that grow with the trace (page tables beyond their first
//! node per level, histograms), which stay bounded by the trace's footprint.

use crate::config::{Config, ConfigError, Mode, PwcKind, TableShape};
use crate::size::{thousands, ByteSize};

/// Simulator memory one configuration may need by default: a quarter of
/// this 24 GiB machine, so that a sweep can run one simulator per core
/// beside the reader's buffers.
pub const SIMULATOR_MEMORY_BUDGET: u64 = 6 << 30;

/// The budget resolution checks against; a program may set another (the
/// `mmusim` binary takes `MMUSIM_MEMORY_BUDGET`). It only decides which
/// configs are refused, never any result.
static LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(SIMULATOR_MEMORY_BUDGET);

/// Sets the simulator memory budget every later resolution checks.
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// The simulator memory budget resolution checks.
pub fn limit() -> u64 {
    LIMIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Bytes per TLB entry at most: key (8), space tag (4), LRU or FIFO stamp
/// (8; the other policies keep less), dirty lanes (8), hints (16: the hint
/// table is the power of two at or above twice the entries, so up to four
/// 4-byte hints an entry), per-set most-recent slot and fill count (8, with
/// one way a set). A test holds real TLBs to it.
pub(crate) const TLB_ENTRY_BYTES: u64 = 52;
/// Bytes per page-walk-cache or line-cache entry at most: key (8), tag (4),
/// stamp (8) and per-set bookkeeping (8).
pub(crate) const CACHE_ENTRY_BYTES: u64 = 28;
/// Bytes per page-table entry at most: flags (1) and frame (8) at the bottom
/// level (a packed word of 8 above it), per-lane dirty bits
/// (8, in one-pass sweeps).
const TABLE_ENTRY_BYTES: u64 = 17;
/// Bytes per child in the frame allocator's hand-out order of a block.
const ORDER_BYTES: u64 = 4;

/// One structure's estimated size and the config key that sets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    pub key: String,
    /// What the key asks for, in words ("4,000,000,000 entries").
    pub what: String,
    pub bytes: u64,
}

/// The structures of a resolved config, largest first.
pub fn needs(config: &Config) -> Vec<Need> {
    let mut needs = Vec::new();
    let mut entries = |key: String, count: u64, per_entry: u64| {
        needs.push(Need { key, what: format!("{} entries", thousands(count)), bytes: count.saturating_mul(per_entry) })
    };
    for (name, tlb) in &config.tlb {
        if let Some(count) = tlb.entries {
            entries(format!("tlb.{name}.entries"), u64::from(count), TLB_ENTRY_BYTES);
        }
        for (array, geometry) in &tlb.arrays {
            entries(format!("tlb.{name}.arrays.{array}.entries"), u64::from(geometry.entries), TLB_ENTRY_BYTES);
        }
    }
    let pwc_entries = |pwc: &crate::config::PwcConfig| -> u64 {
        match pwc.kind {
            PwcKind::None => 0,
            PwcKind::Unified => u64::from(pwc.entries.unwrap_or(0)),
            PwcKind::Split => pwc.levels.values().map(|level| u64::from(level.entries)).sum(),
        }
    };
    entries("pwc".into(), pwc_entries(&config.pwc), CACHE_ENTRY_BYTES);
    if let Some(cache) = &config.walk.cache {
        let lines = cache.capacity.0 / cache.line_bytes.0.max(1);
        entries("walk.cache.capacity".into(), lines, CACHE_ENTRY_BYTES);
    }
    if let Some(nested) = &config.nested {
        entries("nested.pwc".into(), pwc_entries(&nested.pwc), CACHE_ENTRY_BYTES);
        if let Some(tlb) = &nested.tlb {
            entries("nested.tlb.entries".into(), u64::from(tlb.entries), TLB_ENTRY_BYTES);
        }
    }
    let shape = config.table_shape();
    needs.extend(table_needs("page_table.index_bits", &shape));
    needs.push(allocator_need("memory.size", config.memory.size, &[&shape]));
    if let (Some(host), Some(host_shape)) = (&config.host, config.host_shape()) {
        needs.extend(table_needs("host.page_table.index_bits", &host_shape));
        let shapes: Vec<&TableShape> =
            if config.mode == Mode::Shadow { vec![&host_shape, &shape] } else { vec![&host_shape] };
        needs.push(allocator_need("host.memory.size", host.memory.size, &shapes));
    }
    needs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.key.cmp(&b.key)));
    needs
}

/// The first node of each level, which the first walk allocates.
fn table_needs(key: &str, shape: &TableShape) -> Vec<Need> {
    shape
        .index_bits
        .iter()
        .enumerate()
        .map(|(level, &bits)| Need {
            key: format!("{key}[{level}]"),
            what: format!("nodes of {} entries", thousands(1 << bits)),
            bytes: TABLE_ENTRY_BYTES << bits,
        })
        .collect()
}

/// Most blocks the frame allocator hands out in a seeded order at one size
/// (the top-level blocks of `memory.size`, or the children of one block).
/// It keeps that order whole and shuffles it when it opens the block: 2^24
/// blocks are 64 MiB and a fraction of a second; 2^30 (1 TiB of 1 KiB-page
/// blocks) would be 4 GiB and half a minute before the first reference.
pub const MAX_ALLOCATOR_BLOCKS: u64 = 1 << 24;

/// How the frame allocator carves `memory` for tables of `shapes`: the
/// top-level blocks, their size (as a shift), and the most children any
/// one block splits into.
fn allocator_blocks(memory: ByteSize, shapes: &[&TableShape]) -> (u64, u32, u64, u64) {
    let mut shifts: Vec<u32> = shapes.iter().flat_map(|shape| crate::frames::block_shifts(shape)).collect();
    shifts.sort_unstable();
    shifts.dedup();
    let top = *shifts.last().expect("at least the frame size");
    let pool = memory.0 >> top;
    let children: Vec<u64> = shifts.windows(2).map(|pair| 1u64 << (pair[1] - pair[0]).min(63)).collect();
    let total_children = children.iter().fold(0u64, |sum, &n| sum.saturating_add(n));
    (pool, top, children.into_iter().max().unwrap_or(0), total_children)
}

/// The frame allocator's hand-out orders: one per block size being split,
/// and the pool of top-level blocks.
fn allocator_need(key: &str, memory: ByteSize, shapes: &[&TableShape]) -> Need {
    let (pool, top, _, children) = allocator_blocks(memory, shapes);
    Need {
        key: key.into(),
        what: format!("{memory} of physical memory in {} blocks of {}", thousands(pool), ByteSize(1 << top)),
        bytes: pool.saturating_add(children).saturating_mul(ORDER_BYTES),
    }
}

/// Refuses physical memory the frame allocator would carve into more than
/// `MAX_ALLOCATOR_BLOCKS` blocks at one size.
fn check_allocator(key: &str, memory: ByteSize, shapes: &[&TableShape]) -> Result<(), ConfigError> {
    let (pool, top, most_children, _) = allocator_blocks(memory, shapes);
    let limit = thousands(MAX_ALLOCATOR_BLOCKS);
    if pool > MAX_ALLOCATOR_BLOCKS {
        return Err(ConfigError::at(
            key,
            format!(
                "{memory} is {} blocks of {}, the largest block this table allocates; the frame allocator orders at most {limit} (give less memory, or a table with larger pages or nodes)",
                thousands(pool),
                ByteSize(1 << top)
            ),
        ));
    }
    if most_children > MAX_ALLOCATOR_BLOCKS {
        return Err(ConfigError::at(
            key,
            format!(
                "the table's block sizes split one block into {} smaller ones; the frame allocator orders at most {limit} (give page or node sizes closer together)",
                thousands(most_children)
            ),
        ));
    }
    Ok(())
}

/// Refuses a config one of whose structures, or all together, would need
/// more than `budget` bytes.
pub fn check(config: &Config, budget: u64) -> Result<(), ConfigError> {
    let shape = config.table_shape();
    check_allocator("memory.size", config.memory.size, &[&shape])?;
    if let (Some(host), Some(host_shape)) = (&config.host, config.host_shape()) {
        let shapes: Vec<&TableShape> =
            if config.mode == Mode::Shadow { vec![&host_shape, &shape] } else { vec![&host_shape] };
        check_allocator("host.memory.size", host.memory.size, &shapes)?;
    }
    let needs = needs(config);
    let limit = ByteSize(budget);
    if let Some(need) = needs.iter().find(|need| need.bytes > budget) {
        return Err(ConfigError::at(
            &need.key,
            format!(
                "{} need about {} of simulator memory; the limit is {limit} (MMUSIM_MEMORY_BUDGET sets another)",
                need.what,
                ByteSize(round_up(need.bytes))
            ),
        ));
    }
    let total = needs.iter().fold(0u64, |sum, need| sum.saturating_add(need.bytes));
    if total > budget {
        let largest = &needs[0];
        return Err(ConfigError::at(
            &largest.key,
            format!(
                "the simulator's structures need about {} together (the largest, {}, about {}); the limit is {limit} \
                 (MMUSIM_MEMORY_BUDGET sets another)",
                ByteSize(round_up(total)),
                largest.what,
                ByteSize(round_up(largest.bytes))
            ),
        ));
    }
    Ok(())
}

/// `bytes` rounded up to a whole unit of its size class, for messages.
fn round_up(bytes: u64) -> u64 {
    let unit = [1u64 << 40, 1 << 30, 1 << 20, 1 << 10].into_iter().find(|&unit| bytes >= unit).unwrap_or(1);
    bytes.div_ceil(unit).saturating_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-entry figures bound what real structures allocate, over
    /// geometries that stress each term: one way a set (per-set bookkeeping
    /// per entry), entries just above a power of two (the largest hint
    /// table), fully associative, and every policy. Beyond the per-entry
    /// figures an array holds a few fixed bytes (its size lists), immaterial
    /// against a budget of gigabytes: up to `ARRAY_FIXED` here.
    #[test]
    fn per_entry_figures_bound_the_real_structures() {
        const ARRAY_FIXED: u64 = 64;
        use crate::cache::SetAssoc;
        use crate::config::Replacement;
        let policies =
            [Replacement::Lru, Replacement::Fifo, Replacement::TreePlru, Replacement::Random, Replacement::Srrip];
        for (entries, ways) in [(1usize, 1usize), (64, 4), (1025, 1), (1536, 12), (96, 96), (4097, 17)] {
            for replacement in policies {
                let cache = SetAssoc::new(entries, ways, replacement, 0, 0);
                let bytes = cache.heap_bytes() as u64;
                assert!(bytes <= CACHE_ENTRY_BYTES * entries as u64, "cache {entries}x{ways} {replacement:?}: {bytes}");
                let toml = format!(
                    "[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = {entries}\nways = {ways}\nreplacement = \"{}\"\n",
                    serde_json::to_value(replacement).unwrap().as_str().unwrap()
                );
                let config = Config::from_toml(&toml).unwrap().resolve().unwrap();
                let machine = crate::machine::Machine::from_resolved(&config);
                let tlb = crate::tlb::Tlb::new(&machine.tlbs[0], &machine);
                let bytes = tlb.heap_bytes() as u64;
                assert!(
                    bytes <= TLB_ENTRY_BYTES * entries as u64 + ARRAY_FIXED,
                    "TLB {entries}x{ways} {replacement:?}: {bytes}"
                );
            }
        }
    }

    #[test]
    fn sizes_round_up_to_their_unit() {
        assert_eq!(round_up(3 << 30), 3 << 30);
        assert_eq!(round_up((3 << 30) + 1), 4 << 30);
        assert_eq!(round_up(1500), 2048);
    }
}
