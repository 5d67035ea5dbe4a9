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

mod context;
mod table;
mod tlb;
mod virtualization;
mod walk;

pub use context::*;
pub use table::*;
pub use tlb::*;
pub use virtualization::*;
pub use walk::*;

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
    /// Nested: each VM's balloon over time (`[[balloon]]`), in the order
    /// of `at` once resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balloon: Vec<BalloonStep>,
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
            balloon: Vec::new(),
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
        resolve_memory(&mut config.memory, &shape, &config.pages)?;
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
        check_ranges(&config)?;
        resolve_balloon(&mut config, &shape)?;
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
        crate::budget::check(&config, crate::budget::limit())?;
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

/// Turns a TOML error into a ConfigError with the line and, where serde says
/// which, the key.
pub fn toml_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err.span().map(|span| 1 + text[..span.start.min(text.len())].bytes().filter(|&b| b == b'\n').count());
    ConfigError { key: String::new(), message: err.message().trim_end().to_owned(), line }
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
            ("[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 0\n", "tlb.l2.entries: must be at least 1"),
            ("[pages]\nsize = \"4MiB\"\n", "pages.size: the page table cannot map 4MiB pages"),
            ("[page_table]\nformat = \"x86-32\"\npage_sizes = [\"4KiB\", \"2MiB\"]\n", "page_table.page_sizes: this table cannot map 2MiB pages"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 4\n[tlb.b]\nlevel = 1\nserves = \"unified\"\nentries = 4\n", "tlb.b: tlb.a already serves data references at level 1"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\npage_sizes = [\"4KiB\"]\n[tlb.a.arrays.big]\nentries = 8\npage_sizes = [\"4KiB\", \"2MiB\"]\n", "tlb.a: two arrays hold 4KiB pages"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\n[tlb.a.arrays.big]\nentries = 8\n", "tlb.a: more than one array leaves page_sizes unsaid"),
            ("[tlb.a]\nlevel = 1\nserves = \"data\"\nentries = 64\n[tlb.a.arrays.big]\nentries = 8\npage_sizes = [\"4KiB\", \"2MiB\", \"1GiB\"]\n", "tlb.a.page_sizes: must hold at least one page size"),
            ("[pwc]\nkind = \"split\"\n[pwc.levels.l1]\nentries = 4\n", "pwc.levels.l1: expected l2 to l4"),
            ("[walk]\nmemory = \"cache\"\n", "walk.cache: memory = \"cache\" needs"),
            ("[memory]\nsize = \"3MiB\"\n", "memory.size: must be a non-zero multiple of 1GiB"),
            // The second range in the file sorts first; it is named by its place in the file.
            ("[pages]\npolicy = \"ranges\"\nranges = [{ start = 0x40000000, end = 0x40200000, size = \"2MiB\" }, { start = 0x1000, end = 0x1800, size = \"4KiB\" }]\n", "pages.ranges[1]: start and end must be multiples of the smallest page"),
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
