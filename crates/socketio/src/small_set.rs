//! A set that keeps a single element inline.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};

/// A set that holds one element without allocating, and a hash set from the second on.
///
/// Most rooms are a socket's own room, with one member, and most sockets are in one or two
/// rooms: a hash set per room and per socket cost about 80 bytes of heap each for one element,
/// some 160 bytes of every idle connection. The set of two or more is boxed so that the
/// inline case stays small too: the maps of rooms hold this value in every slot, used or spare
/// (a hash set inline made each slot 24 to 32 bytes larger).
#[derive(Debug, Clone, Default)]
pub(crate) enum SmallSet<T, S> {
    /// No element.
    #[default]
    Empty,
    /// One element, inline.
    One(T),
    /// Two or more (or fewer, after removals: a set never shrinks back inline). Boxed on
    /// purpose, see above: one more allocation for a shared room, 24 B less in every slot.
    #[allow(clippy::box_collection)]
    Many(Box<HashSet<T, S>>),
}

impl<T: Hash + Eq, S: BuildHasher + Default> SmallSet<T, S> {
    /// Adds an element.
    pub(crate) fn insert(&mut self, value: T) {
        match self {
            Self::Empty => *self = Self::One(value),
            Self::One(one) if *one == value => {}
            Self::One(_) => {
                if let Self::One(first) = std::mem::take(self) {
                    let mut set = HashSet::with_capacity_and_hasher(2, S::default());
                    set.insert(first);
                    set.insert(value);
                    *self = Self::Many(Box::new(set));
                }
            }
            Self::Many(set) => {
                set.insert(value);
            }
        }
    }

    /// Removes an element, if present.
    pub(crate) fn remove<Q>(&mut self, value: &Q)
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Self::One(one) if <T as Borrow<Q>>::borrow(one) == value => *self = Self::Empty,
            Self::Many(set) => {
                set.remove(value);
            }
            _ => {}
        }
    }

    /// Whether the set holds `value`.
    pub(crate) fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self {
            Self::Empty => false,
            Self::One(one) => <T as Borrow<Q>>::borrow(one) == value,
            Self::Many(set) => set.contains(value),
        }
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::One(_) => false,
            Self::Many(set) => set.is_empty(),
        }
    }

    /// The elements, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let (one, many) = match self {
            Self::Empty => (None, None),
            Self::One(one) => (Some(one), None),
            Self::Many(set) => (None, Some(set.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;

    use super::*;

    #[test]
    fn the_inline_case_is_two_words() {
        assert_eq!(
            std::mem::size_of::<SmallSet<std::sync::Arc<str>, RandomState>>(),
            2 * std::mem::size_of::<usize>() + std::mem::size_of::<usize>(),
            "the element, and the tag"
        );
    }

    #[test]
    fn one_inline_then_a_set() {
        let mut set: SmallSet<String, RandomState> = SmallSet::default();
        assert!(set.is_empty());
        set.insert("a".to_owned());
        set.insert("a".to_owned());
        assert!(matches!(set, SmallSet::One(_)));
        assert!(set.contains("a"));
        set.insert("b".to_owned());
        let mut all: Vec<_> = set.iter().cloned().collect();
        all.sort();
        assert_eq!(all, ["a", "b"]);
        set.remove("a");
        set.remove("b");
        assert!(set.is_empty());
        assert!(!set.contains("a"));
        let mut one: SmallSet<String, RandomState> = SmallSet::default();
        one.insert("x".to_owned());
        one.remove("x");
        assert!(one.is_empty());
    }
}
