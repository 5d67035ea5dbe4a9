//! The one record every reader yields: a single memory reference.

use serde::{Deserialize, Serialize};

/// What a reference does. The discriminants are the kind byte of mmusim's
/// binary format, so they must never change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Kind {
    /// An instruction fetch. Every fetch is one instruction, so instruction
    /// counts are fetch counts.
    Fetch = 0,
    /// A data read.
    #[default]
    Load = 1,
    /// A data write.
    Store = 2,
    /// A read-modify-write of one location (Lackey's `M`): one reference with
    /// store semantics, kept apart from `Store` so that conversions preserve it.
    Modify = 3,
}

impl Kind {
    /// Every kind, in discriminant order.
    pub const ALL: [Kind; 4] = [Kind::Fetch, Kind::Load, Kind::Store, Kind::Modify];

    /// The kind with this binary-format byte, if there is one.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(byte)).copied()
    }

    /// Lower-case name, as used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Fetch => "fetch",
            Kind::Load => "load",
            Kind::Store => "store",
            Kind::Modify => "modify",
        }
    }

    /// Whether the reference writes memory (stores and modifies).
    pub fn writes(self) -> bool {
        matches!(self, Kind::Store | Kind::Modify)
    }
}

/// One memory reference. Small and `Copy` so that batches of them are plain
/// arrays and the simulator's hot loop touches nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Access {
    /// Virtual address of the first byte referenced.
    pub addr: u64,
    /// Bytes referenced; 0 when the trace format does not record sizes
    /// (Dinero's numeric din, ChampSim, pinatrace). A size of 0 is treated as
    /// one byte wherever extent matters.
    pub size: u16,
    /// Address space (process) the reference belongs to.
    pub context: u16,
    /// Virtual machine the address space belongs to.
    pub vm: u16,
    /// Fetch, load, store or modify.
    pub kind: Kind,
}

impl Access {
    /// A reference in context 0 of VM 0.
    pub fn new(kind: Kind, addr: u64, size: u16) -> Access {
        Access { addr, size, context: 0, vm: 0, kind }
    }

    /// Address of the last byte referenced (the first byte when the size is
    /// unknown), saturating at the top of the address space.
    #[inline]
    pub fn last_byte(&self) -> u64 {
        self.addr.saturating_add(u64::from(self.size.max(1)) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_bytes_round_trip_and_reject_unknown() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_byte(kind as u8), Some(kind));
        }
        assert_eq!(Kind::from_byte(4), None);
        assert_eq!(Kind::from_byte(255), None);
    }

    #[test]
    fn last_byte_treats_unknown_size_as_one_byte_and_saturates() {
        assert_eq!(Access::new(Kind::Load, 0x1000, 8).last_byte(), 0x1007);
        assert_eq!(Access::new(Kind::Load, 0x1000, 0).last_byte(), 0x1000);
        assert_eq!(Access::new(Kind::Load, u64::MAX - 1, 8).last_byte(), u64::MAX);
    }

    #[test]
    fn access_stays_sixteen_bytes() {
        assert_eq!(size_of::<Access>(), 16);
    }
}
