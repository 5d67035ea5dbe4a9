//! What several of the integration tests share.

use mmusim_trace::{Access, Kind, TraceReader};
use mmusim_translate::{Config, SimReport, Simulator};

/// Every record of a committed real trace (`traces/NAME`), in order.
pub fn real_trace(name: &str) -> Vec<Access> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../traces").join(name);
    TraceReader::open(path).unwrap().records().collect::<Result<_, _>>().unwrap()
}

/// The simulator of a config written inline.
pub fn machine(toml: &str) -> Simulator {
    Simulator::new(&Config::from_toml(toml).unwrap()).unwrap()
}

/// An 8-byte load.
pub fn load(addr: u64) -> Access {
    Access::new(Kind::Load, addr, 8)
}

/// Runs `accesses` and reports.
pub fn run(sim: &mut Simulator, accesses: &[Access]) -> SimReport {
    sim.run(accesses).unwrap();
    sim.report()
}

/// Two real programs in two VMs, in slices of 1000 references.
pub fn two_vms() -> Vec<Access> {
    let (a, b) = (real_trace("sort.lackey.zst"), real_trace("python-dict.lackey.gz"));
    let mut out = Vec::new();
    let (mut x, mut y) = (a.chunks(1000), b.chunks(1000));
    loop {
        let (p, q) = (x.next(), y.next());
        if p.is_none() && q.is_none() {
            return out;
        }
        out.extend(p.unwrap_or_default().iter().map(|r| Access { vm: 0, ..*r }));
        out.extend(q.unwrap_or_default().iter().map(|r| Access { vm: 1, ..*r }));
    }
}
