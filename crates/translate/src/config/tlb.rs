//! `[tlb.NAME]`: the TLB hierarchy, and its resolution.

#[allow(unused_imports)]
use super::*;

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

/// Checks entries and ways; returns the ways (fully associative when absent).
pub(super) fn check_geometry(key: &str, entries: u32, ways: Option<u32>) -> Result<u32, ConfigError> {
    let ways = ways.unwrap_or(entries);
    if entries == 0 {
        return Err(ConfigError::at(format!("{key}.entries"), "must be at least 1"));
    }
    if ways == 0 {
        return Err(ConfigError::at(format!("{key}.ways"), "must be at least 1"));
    }
    if ways > entries || !entries.is_multiple_of(ways) {
        return Err(ConfigError::at(key, format!("{entries} entries are not divisible into sets of {ways} ways")));
    }
    if ways > 4096 {
        return Err(ConfigError::at(key, "at most 4096 ways"));
    }
    Ok(ways)
}

pub(super) fn resolve_sizes(
    key: &str,
    held: &mut Option<Vec<ByteSize>>,
    sizes: &[ByteSize],
) -> Result<(), ConfigError> {
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

pub(super) fn resolve_tlb(name: &str, tlb: &mut TlbConfig, sizes: &[ByteSize]) -> Result<(), ConfigError> {
    let key = format!("tlb.{name}");
    if tlb.level == 0 {
        return Err(ConfigError::at(format!("{key}.level"), "levels start at 1"));
    }
    let replacement = *tlb.replacement.get_or_insert(Replacement::Lru);
    if let Some(sets) = tlb.sets {
        let sets_key = format!("{key}.sets");
        let Some(ways) = tlb.ways else {
            return Err(ConfigError::at(sets_key, "sets needs ways (entries are sets x ways)"));
        };
        if sets == 0 {
            return Err(ConfigError::at(sets_key, "must be at least 1"));
        }
        tlb.entries =
            Some(sets.checked_mul(ways).ok_or_else(|| ConfigError::at(&sets_key, "sets x ways is too many entries"))?);
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
pub(super) fn check_hierarchy(tlbs: &BTreeMap<String, TlbConfig>) -> Result<(), ConfigError> {
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
