//! Acknowledged-offset bookkeeping: a mark-delete position plus disjoint half-open ranges acked
//! beyond it (Pulsar's "individually deleted messages"). Pure data, no I/O.

use magnetar_metadata::CursorState;
use std::collections::BTreeMap;

/// Invariant: every range `[s, e)` has `mark_delete < s < e`, ranges are disjoint and
/// non-adjacent (adjacent ranges are merged, a range touching `mark_delete` is folded into it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckSet {
    mark_delete: u64,
    ranges: BTreeMap<u64, u64>,
}

impl AckSet {
    pub fn new(mark_delete: u64) -> Self {
        AckSet { mark_delete, ranges: BTreeMap::new() }
    }

    pub fn from_state(state: &CursorState) -> Self {
        let mut set = AckSet::new(state.mark_delete);
        for &(s, e) in &state.acked_ranges {
            set.insert_range(s, e);
        }
        set
    }

    pub fn to_state(&self) -> CursorState {
        CursorState { mark_delete: self.mark_delete, acked_ranges: self.ranges.iter().map(|(&s, &e)| (s, e)).collect() }
    }

    /// Every offset below this is acknowledged.
    pub fn mark_delete(&self) -> u64 {
        self.mark_delete
    }

    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    pub fn contains(&self, offset: u64) -> bool {
        if offset < self.mark_delete {
            return true;
        }
        self.ranges.range(..=offset).next_back().is_some_and(|(_, &e)| offset < e)
    }

    /// First offset `>= from` that is not acknowledged.
    pub fn next_unacked(&self, from: u64) -> u64 {
        let mut at = from.max(self.mark_delete);
        if let Some((_, &e)) = self.ranges.range(..=at).next_back()
            && at < e
        {
            at = e;
        }
        at
    }

    pub fn insert(&mut self, offset: u64) {
        self.insert_range(offset, offset + 1);
    }

    /// Acknowledges `[start, end)`.
    pub fn insert_range(&mut self, start: u64, end: u64) {
        let start = start.max(self.mark_delete);
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        // Merge with a range that starts before and reaches `s`.
        if let Some((&ps, &pe)) = self.ranges.range(..=s).next_back()
            && pe >= s
        {
            s = ps;
            e = e.max(pe);
            self.ranges.remove(&ps);
        }
        // Swallow ranges starting inside [s, e].
        let inside: Vec<u64> = self.ranges.range(s..=e).map(|(&k, _)| k).collect();
        for k in inside {
            let ke = self.ranges.remove(&k).expect("present");
            e = e.max(ke);
        }
        if s <= self.mark_delete {
            self.mark_delete = e;
        } else {
            self.ranges.insert(s, e);
        }
    }

    /// Moves the mark-delete position to `offset` (forwards or backwards): everything below is
    /// acknowledged, everything at or above is not (ranges are dropped), as Pulsar's reset cursor.
    pub fn reset(&mut self, offset: u64) {
        self.mark_delete = offset;
        self.ranges.clear();
    }

    /// Acknowledged offsets in `[from, to)`.
    pub fn count_acked_in(&self, from: u64, to: u64) -> u64 {
        if from >= to {
            return 0;
        }
        let mut n = self.mark_delete.min(to).saturating_sub(from);
        for (&s, &e) in &self.ranges {
            let (a, b) = (s.max(from), e.min(to));
            if a < b {
                n += b - a;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn contiguous_acks_advance_mark_delete() {
        let mut a = AckSet::new(0);
        a.insert(1);
        a.insert(2);
        assert_eq!(a.mark_delete(), 0);
        a.insert(0);
        assert_eq!(a.mark_delete(), 3);
        assert_eq!(a.ranges().count(), 0);
    }

    #[test]
    fn holes_are_kept_as_ranges() {
        let mut a = AckSet::new(10);
        a.insert(12);
        a.insert(13);
        a.insert(20);
        assert_eq!(a.ranges().collect::<Vec<_>>(), vec![(12, 14), (20, 21)]);
        assert_eq!(a.next_unacked(12), 14);
        assert_eq!(a.next_unacked(0), 10);
        assert!(a.contains(5) && a.contains(13) && !a.contains(14));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(start in 0u64..50, ops in proptest::collection::vec((0u64..200, 1u64..10), 0..60)) {
            let mut a = AckSet::new(start);
            let mut model: BTreeSet<u64> = (0..start).collect();
            for (s, len) in ops {
                a.insert_range(s, s + len);
                model.extend(s..s + len);
            }
            for o in 0..260 {
                prop_assert_eq!(a.contains(o), model.contains(&o), "offset {}", o);
            }
            let md = (0..).find(|o| !model.contains(o)).unwrap();
            prop_assert_eq!(a.mark_delete(), md);
            let round = AckSet::from_state(&a.to_state());
            prop_assert_eq!(&round, &a);
            prop_assert_eq!(a.count_acked_in(md, 260), model.range(md..260).count() as u64);
            let prev: Vec<(u64, u64)> = a.ranges().collect();
            for w in prev.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
        }
    }
}
