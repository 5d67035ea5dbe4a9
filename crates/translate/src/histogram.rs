//! Exact distributions of small non-negative integers (references and
//! cycles per walk): one counter per value, grown to the largest value seen.
//! Exact where a bucketed histogram would round, and a few kilobytes where a
//! high-precision hdrhistogram takes megabytes per simulator.

use serde::Serialize;

/// Values at or above this are counted in one overflow bucket (with their
/// maximum kept), so a pathological value cannot claim unbounded memory.
pub const EXACT_LIMIT: u64 = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    /// `counts[v]` is how many times `v` was recorded.
    counts: Vec<u64>,
    /// Values at or above `EXACT_LIMIT`.
    overflow: u64,
    overflow_max: u64,
}

impl Distribution {
    #[inline(always)]
    pub fn record(&mut self, value: u64) {
        // `counts` never grows past `EXACT_LIMIT`: a value it has room for
        // is exact.
        match usize::try_from(value).ok().and_then(|index| self.counts.get_mut(index)) {
            Some(count) => *count += 1,
            None => self.record_new(value),
        }
    }

    /// A value larger than any so far.
    #[cold]
    #[inline(never)]
    fn record_new(&mut self, value: u64) {
        if value >= EXACT_LIMIT {
            self.overflow += 1;
            self.overflow_max = self.overflow_max.max(value);
            return;
        }
        let index = value as usize;
        if index >= self.counts.len() {
            // Grows only when a new largest value appears: a handful of
            // times a run.
            self.counts.resize((index + 1).next_power_of_two(), 0);
        }
        self.counts[index] += 1;
    }

    /// Recorded values.
    pub fn len(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.overflow
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (value, count) pairs with a non-zero count, ascending; the overflow
    /// bucket last, at its largest value.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let exact = self.counts.iter().enumerate().filter(|(_, &c)| c > 0).map(|(v, &c)| (v as u64, c));
        exact.chain((self.overflow > 0).then_some((self.overflow_max, self.overflow)))
    }

    /// The smallest recorded value v such that at least `quantile` of all
    /// values are <= v (nearest-rank), or None when empty.
    pub fn value_at_quantile(&self, quantile: f64) -> Option<u64> {
        let total = self.len();
        if total == 0 {
            return None;
        }
        // Nearest rank: the ceil(q * n)-th smallest value, at least the 1st.
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (value, count) in self.buckets() {
            seen += count;
            if seen >= rank {
                return Some(value);
            }
        }
        unreachable!("the ranks add up to the total")
    }

    pub fn max(&self) -> Option<u64> {
        self.buckets().last().map(|(v, _)| v)
    }

    /// Adds another distribution's counts.
    pub fn merge(&mut self, other: &Distribution) {
        for (value, count) in other.buckets() {
            if value >= EXACT_LIMIT {
                self.overflow += count;
                self.overflow_max = self.overflow_max.max(value);
            } else {
                let index = value as usize;
                if index >= self.counts.len() {
                    self.counts.resize((index + 1).next_power_of_two(), 0);
                }
                self.counts[index] += count;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_nearest_ranks() {
        let mut d = Distribution::default();
        assert_eq!(d.value_at_quantile(0.5), None);
        // 1 x10, 2 x5, 4 x4, 40 x1: 20 values.
        for (value, times) in [(1, 10), (2, 5), (4, 4), (40, 1)] {
            for _ in 0..times {
                d.record(value);
            }
        }
        assert_eq!(d.len(), 20);
        assert_eq!(d.value_at_quantile(0.5), Some(1), "rank 10 is the last 1");
        assert_eq!(d.value_at_quantile(0.51), Some(2), "rank 11");
        assert_eq!(d.value_at_quantile(0.9), Some(4), "rank 18");
        assert_eq!(d.value_at_quantile(0.99), Some(40), "rank 20");
        assert_eq!(d.value_at_quantile(1.0), Some(40));
        assert_eq!(d.max(), Some(40));
        assert_eq!(d.buckets().collect::<Vec<_>>(), vec![(1, 10), (2, 5), (4, 4), (40, 1)]);
    }

    #[test]
    fn huge_values_overflow_into_one_bucket() {
        let mut d = Distribution::default();
        d.record(3);
        d.record(EXACT_LIMIT + 5);
        d.record(EXACT_LIMIT * 3);
        assert_eq!(d.len(), 3);
        assert_eq!(d.max(), Some(EXACT_LIMIT * 3));
        assert!(d.counts.len() <= 4, "no memory for the overflowing values");
    }

    #[test]
    fn merging_adds_counts() {
        let mut a = Distribution::default();
        let mut b = Distribution::default();
        a.record(1);
        b.record(1);
        b.record(9);
        a.merge(&b);
        assert_eq!(a.buckets().collect::<Vec<_>>(), vec![(1, 2), (9, 1)]);
    }
}
