//! Which configs one simulation can answer together (`Simulator::with_lanes`):
//! configs that differ only in the ways of one TLB's main array at a fixed
//! number of sets, where that array uses LRU replacement and the TLB is the
//! last level of every path it serves. The array is then answered for every
//! size at once by LRU stack distances, and what lies behind it is
//! simulated per size. The simulator and the sweep planner both ask this
//! one function.

use crate::config::{Config, Replacement};
use crate::stack::MAX_LANES;

/// Why a set of configs cannot be simulated in one pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotOnePass(pub String);

impl std::fmt::Display for NotOnePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotOnePass {}

/// What configs answered in one pass must share: the resolved config less
/// the swept array's geometry, and that array's number of sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    shared: Config,
    pub sets: usize,
}

/// One config as a lane of a one-pass simulation of TLB `tlb`.
#[derive(Clone, Debug)]
pub struct Lane {
    pub family: Family,
    /// The swept array's ways in this config.
    pub ways: usize,
    /// The resolved config.
    pub config: Config,
}

/// Whether `config` can be a lane of a one-pass simulation sweeping `tlb`'s
/// main array, and of which family.
pub fn lane(config: &Config, tlb: &str) -> Result<Lane, NotOnePass> {
    let lane = member(config, tlb)?;
    eligible(&lane.config, tlb)?;
    Ok(lane)
}

/// `config` split into its family and the swept array's ways, whether or
/// not one pass can sweep that array.
fn member(config: &Config, tlb: &str) -> Result<Lane, NotOnePass> {
    let no = |why: String| Err(NotOnePass(why));
    let config = config.resolve().map_err(|e| NotOnePass(e.to_string()))?;
    let Some(swept) = config.tlb.get(tlb) else { return no(format!("no TLB named {tlb}")) };
    let Some(entries) = swept.entries else { return no(format!("tlb.{tlb} has no main array")) };
    let ways = swept.ways.unwrap_or(entries) as usize;
    let sets = entries as usize / ways;
    let mut shared = config.clone();
    let t = shared.tlb.get_mut(tlb).expect("present");
    t.entries = None;
    t.ways = None;
    t.sets = None;
    Ok(Lane { family: Family { shared, sets }, ways, config })
}

/// What the swept array itself must be: LRU, in the last level of every
/// path its TLB serves. (Everything else in the family is shared, so one
/// member answers for all.)
fn eligible(config: &Config, tlb: &str) -> Result<(), NotOnePass> {
    let swept = &config.tlb[tlb];
    if config.memory.resident.is_some() {
        // Evictions invalidate translations in every lane at once, and
        // under clock which page goes depends on each lane's walks.
        return Err(NotOnePass("memory.resident is set: lanes would page differently".into()));
    }
    if let Some(host) = &config.host {
        // The host's evictions flush a VM's translations in every lane at
        // once, and its clock reads bits each lane's walks set; a shared
        // zero page's copy-on-write can evict too.
        if host.memory.resident.is_some() {
            return Err(NotOnePass("host.memory.resident is set: lanes would page differently".into()));
        }
        if host.share_zero_pages {
            return Err(NotOnePass("host.share_zero_pages is set: lanes would share differently".into()));
        }
    }
    if swept.replacement != Some(Replacement::Lru) {
        return Err(NotOnePass(format!("tlb.{tlb} does not use LRU replacement")));
    }
    let below = config.tlb.iter().any(|(name, other)| {
        name != tlb
            && other.level > swept.level
            && (other.serves.instructions() && swept.serves.instructions()
                || other.serves.data() && swept.serves.data())
    });
    if below {
        return Err(NotOnePass(format!("tlb.{tlb} is not the last level of the paths it serves")));
    }
    Ok(())
}

/// The lanes of `configs` sweeping `tlb`, if one pass can answer them all:
/// 2 to `MAX_LANES` configs of one family, whose array is eligible.
pub fn lanes(configs: &[Config], tlb: &str) -> Result<Vec<Lane>, NotOnePass> {
    if configs.len() < 2 || configs.len() > MAX_LANES {
        return Err(NotOnePass(format!("{} configs; one pass answers 2 to {MAX_LANES}", configs.len())));
    }
    let lanes: Vec<Lane> = configs.iter().map(|config| member(config, tlb)).collect::<Result<_, _>>()?;
    let first = &lanes[0].family;
    for other in &lanes[1..] {
        if other.family.sets != first.sets {
            return Err(NotOnePass(format!(
                "tlb.{tlb} has {} sets in one config and {} in another",
                first.sets, other.family.sets
            )));
        }
        if other.family != *first {
            return Err(NotOnePass(format!("the configs differ in more than tlb.{tlb}'s entries and ways")));
        }
    }
    eligible(&lanes[0].config, tlb)?;
    Ok(lanes)
}
