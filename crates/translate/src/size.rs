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
            if self.0 >= unit && self.0 % unit == 0 {
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
