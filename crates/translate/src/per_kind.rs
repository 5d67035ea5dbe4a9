//! Counters per reference kind (fetch, load, store, modify), indexed by the
//! kind itself rather than by a number that could be any other index.

use std::ops::{Index, IndexMut};

use mmusim_trace::Kind;
use serde::Serialize;

/// One `T` per reference kind, in `Kind::ALL` order; serialized as the
/// plain four-element array it holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PerKind<T>(pub [T; 4]);

impl<T> Index<Kind> for PerKind<T> {
    type Output = T;

    #[inline(always)]
    fn index(&self, kind: Kind) -> &T {
        &self.0[kind as usize]
    }
}

impl<T> IndexMut<Kind> for PerKind<T> {
    #[inline(always)]
    fn index_mut(&mut self, kind: Kind) -> &mut T {
        &mut self.0[kind as usize]
    }
}

impl<T: Copy> PerKind<T> {
    /// Each kind with its value, in `Kind::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, T)> + '_ {
        Kind::ALL.into_iter().zip(self.0.iter().copied())
    }
}

impl PerKind<u64> {
    /// The sum over every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_counters() {
        let mut counts = PerKind::<u64>::default();
        counts[Kind::Store] += 2;
        counts[Kind::Fetch] += 1;
        assert_eq!(counts.0, [1, 0, 2, 0]);
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.iter().find(|(kind, _)| *kind == Kind::Store), Some((Kind::Store, 2)));
        assert_eq!(serde_json::to_string(&counts).unwrap(), "[1,0,2,0]");
    }
}
