//! Random configs across every section: each one either resolves or is
//! refused with an error naming a key; each one that resolves builds a
//! simulator that runs a random trace (several VMs and address spaces,
//! page-crossing references, addresses near the top of the table's range)
//! without panicking, and reports as many references as it was given.

use mmusim_trace::{Access, Kind};
use mmusim_translate::{Config, Simulator};
use proptest::prelude::*;

fn choose<T: Clone + std::fmt::Debug + 'static>(options: &[T]) -> impl Strategy<Value = T> {
    prop::sample::select(options.to_vec())
}

/// A `[page_table]` section: a named format, or a custom shape whose level
/// count, index bits and page sizes may be out of range.
fn page_table() -> impl Strategy<Value = String> {
    let named = choose(&["x86-64-4level", "x86-64-5level", "x86-32", "aarch64-4k", "flat"])
        .prop_map(|format| format!("[page_table]\nformat = \"{format}\"\n"));
    let custom = (prop::collection::vec(1u32..12, 1..10), choose(&[10u32, 12, 14]), choose(&[4u32, 8, 16]))
        .prop_flat_map(|(bits, offset, entry)| {
            let leaf_shifts: Vec<u32> =
                (0..bits.len()).map(|level| offset + bits[level + 1..].iter().sum::<u32>()).collect();
            (Just(bits), Just(offset), Just(entry), prop::sample::subsequence(leaf_shifts.clone(), 0..=leaf_shifts.len()))
        })
        .prop_map(|(bits, offset, entry, mut shifts)| {
            shifts.push(offset);
            shifts.sort_unstable();
            shifts.dedup();
            let sizes: Vec<String> = shifts.iter().map(|s| format!("{}", 1u128 << s)).collect();
            format!(
                "[page_table]\nformat = \"custom\"\nindex_bits = {bits:?}\noffset_bits = {offset}\nentry_bytes = {entry}\npage_sizes = [{}]\n",
                sizes.join(", ")
            )
        });
    prop_oneof![3 => named, 1 => custom]
}

fn pages() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => choose(&["4KiB", "2MiB", "1GiB", "4MiB", "16KiB"]).prop_map(|size| format!("[pages]\nsize = \"{size}\"\n")),
        1 => (choose(&[1u32, 1, 1, 2, 4]), choose(&["", "", "huge_pool = 1\n", "huge_pool = 3\n"]))
            .prop_map(|(after, pool)| format!("[pages]\npolicy = \"thp\"\npromote_after = {after}\n{pool}")),
        1 => (0u64..8, 1u64..8, choose(&["2MiB", "4KiB", "1GiB"])).prop_map(|(start, len, size)| format!(
            "[pages]\npolicy = \"ranges\"\nranges = [{{ start = {:#x}, end = {:#x}, size = \"{size}\" }}]\n",
            start << 21,
            (start + len) << 21
        )),
    ]
}

fn memory() -> impl Strategy<Value = String> {
    (
        choose(&["16GiB", "16GiB", "16GiB", "16GiB", "4GiB", "4MiB", "1TiB", "8388608TiB"]),
        choose(&["sequential", "shuffled"]),
        // A resident limit (some too small, one not a whole page), each
        // replacement policy, fragmentation (one out of range).
        choose(&[
            "",
            "",
            "",
            "resident = \"16KiB\"\n",
            "resident = \"8MiB\"\n",
            "resident = \"8MiB\"\n",
            "resident = \"5000\"\n",
        ]),
        choose(&[
            "",
            "replacement = \"lru\"\n",
            "replacement = \"fifo\"\n",
            "replacement = \"random\"\n",
            "replacement = \"clock\"\nclock_clear_flushes = true\n",
        ]),
        choose(&[
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "fragmentation = 0.5\n",
            "fragmentation = 1.0\n",
            "fragmentation = 1.5\n",
        ]),
    )
        .prop_map(|(size, allocator, resident, replacement, fragmentation)| {
            // A replacement policy without a limit is refused: rarely given.
            let replacement = if resident.is_empty() && !replacement.contains("fifo") { "" } else { replacement };
            format!("[memory]\nsize = \"{size}\"\nallocator = \"{allocator}\"\n{resident}{replacement}{fragmentation}")
        })
}

fn tlb(name: &'static str) -> impl Strategy<Value = String> {
    (
        1u32..4,
        choose(&["instruction", "data", "unified"]),
        choose(&[1u32, 4, 16, 16, 64, 64, 1536, 4_000_000_000]),
        choose(&[None, Some(1u32), Some(2), Some(4), Some(4), Some(12)]),
        choose(&["lru", "tree-plru", "fifo", "random"]),
        choose(&[None, Some("[\"4KiB\"]"), Some("[\"2MiB\"]"), Some("[\"4KiB\", \"2MiB\"]")]),
        any::<bool>(),
    )
        .prop_map(move |(level, serves, entries, ways, replacement, sizes, large_array)| {
            let mut text = format!(
                "[tlb.{name}]\nlevel = {level}\nserves = \"{serves}\"\nentries = {entries}\nreplacement = \"{replacement}\"\nlatency = {level}\n"
            );
            if let Some(ways) = ways {
                text += &format!("ways = {ways}\n");
            }
            if let Some(sizes) = sizes {
                text += &format!("page_sizes = {sizes}\n");
            }
            if large_array {
                text += &format!("[tlb.{name}.arrays.large]\nentries = 8\nways = 4\npage_sizes = [\"1GiB\"]\n");
            }
            text
        })
}

fn pwc() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        (1u32..64).prop_map(|entries| format!(
            "[pwc]\nkind = \"split\"\nlatency = 1\n[pwc.levels.l2]\nentries = {entries}\n[pwc.levels.l4]\nentries = 2\n"
        )),
        (1u32..64).prop_map(|entries| format!("[pwc]\nkind = \"unified\"\nentries = {entries}\nlatency = 2\n")),
    ]
}

fn walk() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        choose(&["4KiB", "64KiB", "1MiB"]).prop_map(|capacity| format!(
            "[walk]\nmemory = \"cache\"\n[walk.cache]\ncapacity = \"{capacity}\"\nways = 4\nhit_latency = 2\nmiss_latency = 100\n"
        )),
    ]
}

fn virtualization() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just("mode = \"native\"\n".to_string()),
        1 => (
            any::<bool>(),
            choose(&["4KiB", "2MiB"]),
            0u64..3,
            // Overcommit: a host limit (one too small) and balloons.
            choose(&["", "", "64KiB", "8MiB", "5000"]),
            choose(&["clock", "fifo", "random", "lru"]),
            choose(&["", "", "[[balloon]]\nvm = 1\npages = 2\n", "[[balloon]]\nvm = 0\nat = 7\npages = 3\n[[balloon]]\nvm = 0\nat = 20\npages = 0\n"]),
            // Zero-page sharing (refused with 2 MiB host pages).
            any::<bool>(),
        )
            .prop_map(|(nested_tlb, host_page, timer, host_limit, host_policy, balloon, sharing)| {
                let mut text = format!(
                    "mode = \"nested\"\n[host.pages]\nsize = \"{host_page}\"\n[nested.pwc]\nkind = \"split\"\n[nested.pwc.levels.l2]\nentries = 8\n[exits]\ntimer_interval = {}\n",
                    timer * 50
                );
                if nested_tlb {
                    text += "[nested.tlb]\nentries = 16\nways = 4\n";
                }
                if !host_limit.is_empty() {
                    text += &format!("[host.memory]\nresident = \"{host_limit}\"\nreplacement = \"{host_policy}\"\n");
                }
                if sharing {
                    text += "[host]\nshare_zero_pages = true\n";
                }
                text + balloon
            }),
        1 => (choose(&["4KiB", "2MiB"]), choose(&["", "", "64KiB", "5000"]), choose(&["clock", "fifo", "random", "lru"])).prop_map(
            |(host_page, host_limit, host_policy)| {
                let mut text = format!("mode = \"shadow\"\n[host.pages]\nsize = \"{host_page}\"\n");
                if !host_limit.is_empty() {
                    text += &format!("[host.memory]\nresident = \"{host_limit}\"\nreplacement = \"{host_policy}\"\n");
                }
                text
            }
        ),
    ]
}

fn context() -> impl Strategy<Value = String> {
    (choose(&["flush", "tagged"]), choose(&[1u32, 2, 6, 4096]), any::<bool>()).prop_map(|(switch, ids, vm_tags)| {
        format!("[context]\nswitch = \"{switch}\"\nids = {ids}\nvm_tags = {vm_tags}\n")
    })
}

/// A whole config: top-level keys first, then the sections (TOML needs
/// top-level keys before the first table header).
fn config() -> impl Strategy<Value = String> {
    (
        virtualization(),
        any::<u8>(),
        page_table(),
        pages(),
        memory(),
        (tlb("a"), tlb("b"), tlb("c"), 0usize..4),
        pwc(),
        walk(),
        context(),
    )
        .prop_map(|(mode, seed, table, pages, memory, (a, b, c, tlb_count), pwc, walk, context)| {
            let tlbs = [a, b, c];
            let tlbs = &tlbs[..tlb_count.min(3)];
            // The mode's sections start with a table header after `mode`;
            // split them so the seed stays a top-level key.
            let (mode_line, mode_sections) = mode.split_once('\n').expect("a mode line");
            format!(
                "{mode_line}\nseed = {seed}\n{table}{pages}{memory}{}{pwc}{walk}{context}{mode_sections}",
                tlbs.concat()
            )
        })
}

/// References over a few VMs and address spaces, near the bottom and the
/// top of a 32-bit range, some crossing pages.
fn trace() -> impl Strategy<Value = Vec<Access>> {
    let access = (0u16..3, 0u16..3, choose(&Kind::ALL), 0u64..64, any::<bool>(), choose(&[0u16, 1, 8, 64, 4096]))
        .prop_map(|(vm, context, kind, page, high, size)| {
            let base = if high { 0xffff_0000u64 } else { 0 };
            let mut access = Access::new(kind, base + page * 0x1f00 + 0x7f0, size);
            access.vm = vm;
            access.context = context;
            access
        });
    prop::collection::vec(access, 1..300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_config_resolves_or_names_a_key_and_every_resolved_one_simulates(text in config(), accesses in trace()) {
        let config = match Config::from_toml(&text) {
            Ok(config) => config,
            // A combination the file format refuses (e.g. duplicate TLB
            // names): named like any other error.
            Err(error) => {
                prop_assert!(!error.to_string().is_empty());
                return Ok(());
            }
        };
        let mut sim = match Simulator::new(&config) {
            Ok(sim) => sim,
            Err(error) => {
                prop_assert!(!error.key.is_empty(), "an error without a key: {error}");
                return Ok(());
            }
        };
        let mut simulated = 0u64;
        for chunk in accesses.chunks(64) {
            match sim.run(chunk) {
                Ok(()) => simulated += chunk.len() as u64,
                Err(out_of_range) => {
                    // A 32-bit table cannot hold addresses above its range;
                    // the batch stops at that reference.
                    simulated += out_of_range.index as u64;
                    break;
                }
            }
        }
        prop_assert_eq!(sim.report().references(), simulated);
    }
}
