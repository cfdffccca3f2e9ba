//! Namespace bundles as Pulsar defines them: a namespace's hash range `0x00000000..=0xffffffff`
//! cut at sorted boundaries into bundles `[lower, upper)` (the last one includes `0xffffffff`),
//! named `0x{lower:08x}_0x{upper:08x}`. A topic belongs to the bundle holding
//! [`crate::hash::bundle_hash`] of its full name. Bundles are what the broker tier assigns to
//! brokers; they are split as a namespace grows. The boundaries live in the namespace's
//! policies (`bundles`, Pulsar's `BundlesData`).

use crate::policies::BundlesData;
use std::fmt;

pub const FULL_LOWER: u32 = 0x0000_0000;
pub const FULL_UPPER: u32 = 0xffff_ffff;

/// One bundle: `[lower, upper)`, or `[lower, upper]` for the namespace's last bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BundleRange {
    pub lower: u32,
    pub upper: u32,
}

impl BundleRange {
    pub const FULL: BundleRange = BundleRange { lower: FULL_LOWER, upper: FULL_UPPER };

    /// Parses Pulsar's `0x00000000_0x40000000`.
    pub fn parse(s: &str) -> Result<BundleRange, String> {
        let bad = || format!("invalid bundle `{s}`: expected `0x<8 hex digits>_0x<8 hex digits>` with lower < upper");
        let (lower, upper) = s.split_once('_').ok_or_else(bad)?;
        let lower = parse_boundary(lower).map_err(|_| bad())?;
        let upper = parse_boundary(upper).map_err(|_| bad())?;
        if lower >= upper {
            return Err(bad());
        }
        Ok(BundleRange { lower, upper })
    }

    /// Whether `hash` falls in this bundle (the upper bound only counts for the last bundle).
    pub fn contains(&self, hash: u32) -> bool {
        hash >= self.lower && (hash < self.upper || (self.upper == FULL_UPPER && hash == FULL_UPPER))
    }
}

impl fmt::Display for BundleRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", format_boundary(self.lower), format_boundary(self.upper))
    }
}

/// `0x` and 8 hex digits, as Pulsar writes boundaries.
pub fn format_boundary(v: u32) -> String {
    format!("0x{v:08x}")
}

/// A boundary as Pulsar writes it (`0x1fffffff`); decimal is accepted too.
pub fn parse_boundary(s: &str) -> Result<u32, String> {
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse::<u32>(),
    };
    parsed.map_err(|_| format!("invalid bundle boundary `{s}`"))
}

/// A namespace's bundles, checked: boundaries strictly increasing from `0x00000000` to
/// `0xffffffff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundles {
    boundaries: Vec<u32>,
}

impl Bundles {
    /// `n` bundles of equal width, as Pulsar cuts a new namespace (its `defaultNumberOfNamespaceBundles`).
    pub fn equal(n: u32) -> Result<Bundles, String> {
        if n == 0 {
            return Err("numBundles must be at least 1".into());
        }
        let step = FULL_UPPER / n;
        if step == 0 {
            return Err(format!("numBundles {n} is more than the hash range can be cut into"));
        }
        let mut boundaries: Vec<u32> = (0..n).map(|i| i * step).collect();
        boundaries.push(FULL_UPPER);
        Ok(Bundles { boundaries })
    }

    /// Reads and checks a namespace's `bundles`. Only `numBundles` (no boundaries): that many
    /// equal bundles, as Pulsar does for a namespace created with `{"bundles":{"numBundles":N}}`.
    pub fn from_data(data: &BundlesData) -> Result<Bundles, String> {
        if data.boundaries.is_empty() {
            // Nothing given at all (`numBundles` 0): the whole range, one bundle.
            return Bundles::equal(data.num_bundles.max(1));
        }
        let boundaries = data.boundaries.iter().map(|b| parse_boundary(b)).collect::<Result<Vec<u32>, String>>()?;
        if boundaries.len() < 2 || boundaries[0] != FULL_LOWER || *boundaries.last().expect("two") != FULL_UPPER {
            return Err("bundle boundaries must start at 0x00000000 and end at 0xffffffff".into());
        }
        if boundaries.windows(2).any(|w| w[0] >= w[1]) {
            return Err("bundle boundaries must be strictly increasing".into());
        }
        if data.num_bundles != 0 && data.num_bundles as usize != boundaries.len() - 1 {
            return Err(format!(
                "numBundles {} does not match the {} bundles the boundaries make",
                data.num_bundles,
                boundaries.len() - 1
            ));
        }
        Ok(Bundles { boundaries })
    }

    pub fn to_data(&self) -> BundlesData {
        BundlesData {
            boundaries: self.boundaries.iter().map(|b| format_boundary(*b)).collect(),
            num_bundles: (self.boundaries.len() - 1) as u32,
        }
    }

    pub fn ranges(&self) -> impl Iterator<Item = BundleRange> + '_ {
        self.boundaries.windows(2).map(|w| BundleRange { lower: w[0], upper: w[1] })
    }

    /// The bundle holding `hash`.
    pub fn find(&self, hash: u32) -> BundleRange {
        // The first boundary above `hash` ends its bundle (the last bundle includes the top).
        let i = self.boundaries.partition_point(|b| *b <= hash).clamp(1, self.boundaries.len() - 1);
        BundleRange { lower: self.boundaries[i - 1], upper: self.boundaries[i] }
    }

    /// Whether `range` is one of these bundles.
    pub fn has(&self, range: &BundleRange) -> bool {
        self.ranges().any(|r| r == *range)
    }

    /// These bundles with `range` cut at `at` (each strictly inside it). `Err` names the reason.
    pub fn split(&self, range: &BundleRange, at: &[u32]) -> Result<Bundles, String> {
        if !self.has(range) {
            return Err(format!("bundle {range} is not a bundle of the namespace"));
        }
        if at.is_empty() {
            return Err(format!("no split position inside bundle {range}"));
        }
        if let Some(bad) = at.iter().find(|p| **p <= range.lower || **p >= range.upper) {
            return Err(format!("split position {} is not inside bundle {range}", format_boundary(*bad)));
        }
        let mut boundaries = self.boundaries.clone();
        boundaries.extend_from_slice(at);
        boundaries.sort_unstable();
        boundaries.dedup();
        Ok(Bundles { boundaries })
    }
}

/// Pulsar's `range_equally_divide`: the middle of the range; `None` for a range too small to cut.
pub fn middle(range: &BundleRange) -> Option<u32> {
    (range.upper - range.lower > 1).then(|| range.lower + (range.upper - range.lower) / 2)
}

/// Pulsar's `topic_count_equally_divide`: a position with as many of `hashes` (the topics of the
/// bundle) below it as at or above it; `None` with fewer than two distinct hashes.
pub fn topic_count_middle(range: &BundleRange, hashes: &[u32]) -> Option<u32> {
    let mut h: Vec<u32> = hashes.iter().copied().filter(|x| range.contains(*x)).collect();
    h.sort_unstable();
    h.dedup();
    if h.len() < 2 {
        return None;
    }
    let mid = h.len() / 2;
    // Between the two middle hashes; the upper one starts the new bundle.
    let at = h[mid - 1] + (h[mid] - h[mid - 1]).div_ceil(2);
    (at > range.lower && at < range.upper).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equal_bundles_are_cut_as_pulsar_cuts_them() {
        let b = Bundles::equal(4).unwrap().to_data();
        assert_eq!(b.boundaries, ["0x00000000", "0x3fffffff", "0x7ffffffe", "0xbffffffd", "0xffffffff"]);
        assert_eq!(b.num_bundles, 4);
        let one = Bundles::equal(1).unwrap().to_data();
        assert_eq!(one.boundaries, ["0x00000000", "0xffffffff"]);
        assert_eq!(one.num_bundles, 1);
        assert!(Bundles::equal(0).is_err());
    }

    #[test]
    fn names_parse_and_print_as_pulsars() {
        let r = BundleRange::parse("0x40000000_0x80000000").unwrap();
        assert_eq!(r, BundleRange { lower: 0x4000_0000, upper: 0x8000_0000 });
        assert_eq!(r.to_string(), "0x40000000_0x80000000");
        for bad in ["0x40000000", "0x80000000_0x40000000", "0xzz_0x10", "0x10_0x10"] {
            assert!(BundleRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn boundaries_are_checked() {
        let data =
            |b: &[&str], n| BundlesData { boundaries: b.iter().map(|s| s.to_string()).collect(), num_bundles: n };
        assert!(Bundles::from_data(&data(&["0x00000000", "0x80000000", "0xffffffff"], 2)).is_ok());
        assert!(Bundles::from_data(&data(&["0x00000001", "0xffffffff"], 1)).is_err());
        assert!(Bundles::from_data(&data(&["0x00000000", "0x90000000", "0x80000000", "0xffffffff"], 3)).is_err());
        assert!(Bundles::from_data(&data(&["0x00000000", "0xffffffff"], 2)).is_err(), "count mismatch");
        assert_eq!(Bundles::from_data(&data(&[], 8)).unwrap().ranges().count(), 8);
    }

    #[test]
    fn a_split_cuts_one_bundle_at_positions_inside_it() {
        let b = Bundles::equal(2).unwrap();
        let first = b.ranges().next().unwrap();
        let at = middle(&first).unwrap();
        let split = b.split(&first, &[at]).unwrap();
        assert_eq!(split.ranges().count(), 3);
        assert!(split.has(&BundleRange { lower: 0, upper: at }));
        assert!(b.split(&first, &[first.upper]).is_err(), "on the edge");
        assert!(b.split(&BundleRange { lower: 0, upper: 5 }, &[2]).is_err(), "not a bundle");
        assert_eq!(middle(&BundleRange { lower: 7, upper: 8 }), None);
    }

    #[test]
    fn topic_count_split_balances_the_topics() {
        let r = BundleRange::FULL;
        let at = topic_count_middle(&r, &[10, 20, 30, 40]).unwrap();
        assert!(at > 20 && at <= 30, "{at}");
        assert_eq!(topic_count_middle(&r, &[5, 5]), None);
    }

    proptest! {
        #[test]
        fn every_hash_is_in_exactly_one_bundle(n in 1u32..64, hash in any::<u32>()) {
            let b = Bundles::equal(n).unwrap();
            let holding: Vec<BundleRange> = b.ranges().filter(|r| r.contains(hash)).collect();
            prop_assert_eq!(holding.len(), 1);
            prop_assert_eq!(holding[0], b.find(hash));
        }
    }
}
