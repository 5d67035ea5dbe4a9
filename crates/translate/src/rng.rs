//! The one pseudo-random generator mmusim uses (frame shuffling, random
//! replacement). Written out here rather than taken from a crate so that its
//! sequence can never change under a dependency upgrade: same seed, same
//! numbers, same results, forever.

/// What each draw adds to SplitMix64's counter.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): a 64-bit counter passed through a mixing
/// function. Fast, and good enough for choosing victims and shuffling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator for one use (`stream`) of one seed, so that components
    /// seeded alike do not draw the same numbers.
    pub fn new(seed: u64, stream: u64) -> SplitMix64 {
        let mut mixer = SplitMix64 { state: seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03) };
        let state = mixer.next_u64();
        SplitMix64 { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0), by Lemire's multiply-shift; the tiny bias
    /// for n not a power of two is irrelevant at these n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Moves on as if `draws` numbers had been drawn: the state is a
    /// counter, so this costs one multiplication.
    pub fn skip(&mut self, draws: u64) {
        self.state = self.state.wrapping_add(draws.wrapping_mul(GAMMA));
    }

    /// Fisher-Yates shuffle; draws `items.len() - 1` numbers (none for an
    /// empty slice), one per `below`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_is_fixed_for_a_seed() {
        // SplitMix64's published first output for state 0 (seed with no
        // stream mixing): the reference value everyone checks against.
        let mut raw = SplitMix64 { state: 0 };
        assert_eq!(raw.next_u64(), 0xe220_a839_7b1d_cdaf);
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = SplitMix64::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = SplitMix64::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(SplitMix64::new(7, 1).next_u64(), SplitMix64::new(7, 2).next_u64());
    }

    /// `skip` lands where drawing would, and a shuffle draws one number
    /// per item but the first: what `frames` relies on to reuse a shuffle.
    #[test]
    fn skipping_is_drawing_and_a_shuffle_draws_one_less_than_its_length() {
        for draws in [0, 1, 2, 511, 70_000] {
            let mut drawn = SplitMix64::new(3, 9);
            let mut skipped = drawn.clone();
            (0..draws).for_each(|_| {
                drawn.next_u64();
            });
            skipped.skip(draws);
            assert_eq!(drawn, skipped, "{draws} draws");
        }
        for len in [0usize, 1, 2, 3, 1000] {
            let mut shuffled = SplitMix64::new(4, 2);
            let mut skipped = shuffled.clone();
            shuffled.shuffle(&mut vec![0u32; len]);
            skipped.skip(len.saturating_sub(1) as u64);
            assert_eq!(shuffled, skipped, "a shuffle of {len}");
        }
    }

    #[test]
    fn shuffle_is_a_permutation_and_below_stays_below() {
        let mut rng = SplitMix64::new(1, 0);
        let mut items: Vec<u32> = (0..512).collect();
        rng.shuffle(&mut items);
        assert_ne!(items, (0..512).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..512).collect::<Vec<_>>());
        assert!((0..10_000).all(|_| rng.below(12) < 12));
    }
}
