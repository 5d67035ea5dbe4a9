//! Byte sizes as configs write them: `4KiB`, `2MiB`, `1GiB`, or a number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

impl ByteSize {
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// log2 of the size, when it is a power of two.
    pub fn shift(self) -> Option<u32> {
        self.0.is_power_of_two().then(|| self.0.trailing_zeros())
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, name) in [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let text = s.trim();
        let split = text.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{s:?} is not a size (expected e.g. 4KiB, 2MiB, 1GiB)"))?;
        let scale = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" | "KiB" | "k" => KIB,
            "M" | "MB" | "MiB" => MIB,
            "G" | "GB" | "GiB" => GIB,
            "T" | "TB" | "TiB" => TIB,
            other => return Err(format!("{s:?} has an unknown unit {other:?} (expected KiB, MiB, GiB or TiB)")),
        };
        number.checked_mul(scale).map(ByteSize).ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_binary_units() {
        assert_eq!("4KiB".parse(), Ok(ByteSize(4096)));
        assert_eq!("2M".parse(), Ok(ByteSize(2 << 20)));
        assert_eq!("1GiB".parse(), Ok(ByteSize(1 << 30)));
        assert_eq!("64".parse(), Ok(ByteSize(64)));
        assert_eq!("16_384".parse(), Ok(ByteSize(16384)));
        assert!("4 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999999T".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(2 << 20).to_string(), "2MiB");
        assert_eq!(ByteSize(4 << 20).to_string(), "4MiB");
        assert_eq!(ByteSize(96).to_string(), "96B");
        assert_eq!(ByteSize(1536).to_string(), "1536B");
    }

    #[test]
    fn shift_only_for_powers_of_two() {
        assert_eq!(ByteSize(4096).shift(), Some(12));
        assert_eq!(ByteSize(1536).shift(), None);
    }
}

/// `n` with thousands separators: 1234567 -> "1,234,567" (for messages
/// and tables).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The page sizes a machine's translations can have, ascending, as shifts,
/// and each one's index in per-size counters. Built once from the resolved
/// config, so that the per-walk and per-miss paths find an index with one
/// load instead of a search (or, as before, a vector built per call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageSizes {
    shifts: Vec<u32>,
    /// By page shift: the size's index in `shifts`, or `NOT_A_SIZE`.
    index_by_shift: [u8; 64],
}

const NOT_A_SIZE: u8 = u8::MAX;

impl PageSizes {
    /// `shifts` ascending, each below 64 (checked by resolution).
    pub fn new(shifts: Vec<u32>) -> PageSizes {
        let mut index_by_shift = [NOT_A_SIZE; 64];
        for (index, &shift) in shifts.iter().enumerate() {
            index_by_shift[shift as usize] = u8::try_from(index).expect("a handful of page sizes");
        }
        PageSizes { shifts, index_by_shift }
    }

    /// The shifts, ascending.
    pub fn shifts(&self) -> &[u32] {
        &self.shifts
    }

    /// The index of page shift `shift` among the sizes; a shift that is not
    /// one of them is a bug of the caller.
    #[inline(always)]
    pub fn index(&self, shift: u32) -> usize {
        let index = self.index_by_shift[shift as usize & 63];
        debug_assert!(index != NOT_A_SIZE, "page shift {shift} is not a translation size");
        usize::from(index)
    }
}

#[cfg(test)]
mod page_size_tests {
    use super::PageSizes;

    #[test]
    fn each_shift_maps_to_its_position() {
        let sizes = PageSizes::new(vec![12, 21, 30]);
        assert_eq!([sizes.index(12), sizes.index(21), sizes.index(30)], [0, 1, 2]);
        assert_eq!(sizes.shifts(), &[12, 21, 30]);
    }
}
