//! Which runs of a sweep one simulation can answer together: runs whose
//! configs differ only in the ways of one LRU TLB array at a fixed number of
//! sets (the entries of a fully associative one), where that TLB is the last
//! level of its paths. `Simulator::with_lanes` answers such a group in one
//! pass with stack distances, exactly as separate runs would.

use std::collections::BTreeSet;

use mmusim_translate::lanes::{lane, Family};
use mmusim_translate::stack::MAX_LANES;
use mmusim_translate::{ByteSize, Config};

/// Runs simulated together: by index into the runs given to `groups`, with
/// the TLB whose size varies (`None` for a run on its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub swept: Option<String>,
    pub runs: Vec<usize>,
}

/// Splits `configs` into groups: each TLB in turn (by name), the runs not
/// yet grouped that differ only in its size, where one pass can answer
/// them; every other run alone. Groups come in the order of their first
/// run, so the result does not depend on anything but the configs.
pub fn groups(configs: &[&Config]) -> Vec<Group> {
    let mut grouped = vec![false; configs.len()];
    let mut groups = Vec::new();
    let names: BTreeSet<&String> = configs.iter().flat_map(|c| c.tlb.keys()).collect();
    for name in names {
        let mut families: Vec<(Family, Vec<usize>)> = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            if grouped[i] {
                continue;
            }
            // The one rule the simulator itself applies (`lanes`).
            let Ok(lane) = lane(config, name) else { continue };
            match families.iter_mut().find(|(family, _)| *family == lane.family) {
                Some((_, members)) => members.push(i),
                None => families.push((lane.family, vec![i])),
            }
        }
        for (_, members) in families {
            for chunk in members.chunks(MAX_LANES).filter(|c| c.len() >= 2) {
                chunk.iter().for_each(|&i| grouped[i] = true);
                groups.push(Group { swept: Some(name.clone()), runs: chunk.to_vec() });
            }
        }
    }
    groups.extend((0..configs.len()).filter(|&i| !grouped[i]).map(|i| Group { swept: None, runs: vec![i] }));
    groups.sort_by_key(|g| g.runs[0]);
    groups
}

/// The resident limits of the first set of runs that differ only in
/// `memory.resident`, under LRU with the `fixed` page policy, if any. One
/// pass does not answer such runs: every eviction invalidates the evicted
/// page's translations, so their TLB metrics differ by limit and each is
/// simulated. `memory.curve` gives their paging metrics from one run.
pub fn memory_curve_candidates(configs: &[&Config]) -> Option<Vec<ByteSize>> {
    use mmusim_translate::config::{PagePolicyKind, PageReplacement};
    let mut families: Vec<(Config, Vec<ByteSize>)> = Vec::new();
    for config in configs {
        let memory = &config.memory;
        let (Some(limit), Some(PageReplacement::Lru)) = (memory.resident, memory.replacement) else { continue };
        if config.pages.policy != PagePolicyKind::Fixed {
            continue;
        }
        let mut family = (*config).clone();
        family.memory.resident = None;
        match families.iter_mut().find(|(f, _)| *f == family) {
            Some((_, limits)) => limits.push(limit),
            None => families.push((family, vec![limit])),
        }
    }
    let (_, mut limits) = families.into_iter().find(|(_, limits)| limits.len() >= 2)?;
    limits.sort_by_key(|l| l.0);
    limits.dedup();
    Some(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An L1 data TLB over an L2 of `l2` (entries, ways, replacement), with
    /// `extra` keys.
    fn machine(l1d: (u32, u32), l2: (u32, u32, &str), extra: &str) -> Config {
        Config::from_toml(&format!(
            "[tlb.l1d]\nlevel = 1\nserves = \"data\"\nentries = {}\nways = {}\n\
             [tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = {}\nways = {}\nreplacement = \"{}\"\n{extra}",
            l1d.0, l1d.1, l2.0, l2.1, l2.2
        ))
        .unwrap()
    }

    #[test]
    fn runs_that_differ_only_in_one_lru_arrays_ways_go_together() {
        let configs = [
            machine((64, 4), (512, 4, "lru"), ""),
            machine((64, 4), (1024, 8, "lru"), ""),
            // Another number of sets: a group of its own (with the next).
            machine((64, 4), (1024, 4, "lru"), ""),
            machine((64, 4), (2048, 8, "lru"), ""),
            // Another walk latency: alone.
            machine((64, 4), (512, 4, "lru"), "[walk]\nlatency = 30\n"),
            machine((64, 4), (1536, 12, "lru"), ""),
        ];
        let refs: Vec<&Config> = configs.iter().collect();
        let l2 = Some("l2".to_owned());
        assert_eq!(
            groups(&refs),
            [
                Group { swept: l2.clone(), runs: vec![0, 1, 5] },
                Group { swept: l2, runs: vec![2, 3] },
                Group { swept: None, runs: vec![4] },
            ]
        );
    }

    #[test]
    fn tree_plru_arrays_and_upper_levels_are_simulated_separately() {
        let plru = [machine((64, 4), (512, 4, "tree-plru"), ""), machine((64, 4), (1024, 8, "tree-plru"), "")];
        let refs: Vec<&Config> = plru.iter().collect();
        assert!(groups(&refs).iter().all(|g| g.swept.is_none()));
        // l1d's ways vary at 16 sets, but an L2 lies below it.
        let upper = [machine((64, 4), (512, 4, "lru"), ""), machine((128, 8), (512, 4, "lru"), "")];
        let refs: Vec<&Config> = upper.iter().collect();
        assert!(groups(&refs).iter().all(|g| g.swept.is_none()), "l1d is not the last level of its path");
    }

    #[test]
    fn lru_runs_that_differ_only_in_their_limit_point_at_the_curve() {
        let limited = |limit: &str, replacement: &str, extra: &str| {
            let memory = format!("[memory]\nresident = \"{limit}\"\nreplacement = \"{replacement}\"\n{extra}");
            machine((64, 4), (512, 4, "lru"), &memory).resolve().unwrap()
        };
        let candidates = |configs: &[Config]| memory_curve_candidates(&configs.iter().collect::<Vec<_>>());
        let kib = |n: u64| ByteSize(n << 10);
        let lru = [limited("1MiB", "lru", ""), limited("64KiB", "lru", ""), limited("1MiB", "clock", "")];
        assert_eq!(candidates(&lru), Some(vec![kib(64), kib(1024)]));
        // Clock, a lone limit, or another difference: nothing to point at.
        assert_eq!(candidates(&[limited("1MiB", "clock", ""), limited("64KiB", "clock", "")]), None);
        assert_eq!(candidates(&lru[..1]), None);
        let other = [limited("1MiB", "lru", ""), limited("64KiB", "lru", "size = \"32GiB\"")];
        assert_eq!(candidates(&other), None);
    }
}
