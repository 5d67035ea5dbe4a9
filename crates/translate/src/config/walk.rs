//! `[pwc]` and `[walk]`: page-walk caches and the cost of a page-table
//! reference, and their resolution.

#[allow(unused_imports)]
use super::*;

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

pub(super) fn resolve_pwc(pwc: &mut PwcConfig, shape: &TableShape) -> Result<(), ConfigError> {
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

pub(super) fn resolve_walk(walk: &mut WalkConfig) -> Result<(), ConfigError> {
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
