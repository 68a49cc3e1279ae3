//! Closed sets of names a scenario key takes (`cluster.mode`,
//! `scheduler.preemption`, `workload.arrivals.kind`, …) as enums.
//!
//! Schedulers, routers and time models are open sets: a library user
//! registers their own (`crate::registry`), so those keys stay names looked
//! up when a scenario is planned. Every other choice a scenario makes is one
//! of a fixed list, known to the code that implements it. Each such list is
//! an enum declared with the `kinds!` macro in the module that implements the
//! choice; the declaration is the one place holding each variant's scenario
//! name and its doc. The macro gives the enum the [`Kind`] trait and the
//! serde impls:
//!
//! - it deserializes from its name, so an unknown name fails when the
//!   scenario is *loaded* (not when it is planned or run), with the closest
//!   name suggested and every name listed; `scenario::load` puts the file,
//!   line and dotted key (or the `--set` override) in front of the message;
//! - it serializes back to the same name, so a scenario written out
//!   (`best.toml`, the resume fingerprint) reads exactly as before;
//! - code that acts on the choice `match`es on the enum, so adding a variant
//!   is a compile error everywhere it must be handled.
//!
//! Names are user interface: they never change once released. The default
//! of each key stays with the key (its config struct's `Default` impl), as
//! one enum can serve keys with different defaults (a length distribution
//! is lognormal for prompts and fixed for session turns).
//!
//! ```
//! use fleetsim::cluster::disagg::ClusterMode;
//! use fleetsim::scenario::kinds::Kind;
//!
//! assert_eq!(ClusterMode::from_name("semi-pd"), Some(ClusterMode::SemiPd));
//! assert_eq!(ClusterMode::SemiPd.name(), "semi-pd");
//! assert_eq!(ClusterMode::names(), ["colocated", "disaggregated", "semi-pd"]);
//! ```

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// A closed set of names a scenario key takes (see the module docs).
/// Implemented by the `kinds!` macro; nothing else needs to implement it.
pub trait Kind: Copy + Eq + fmt::Debug + 'static {
    /// Every variant, in the order messages list them.
    const ALL: &'static [Self];

    /// The name a scenario file uses.
    fn name(self) -> &'static str;

    /// What the variant means (its doc comment, on one line).
    fn doc(self) -> &'static str;

    /// Every variant's name, in [`Kind::ALL`] order.
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// The variant called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// Deserializes a [`Kind`] from its name; an unknown name is an error in the
/// scenario's usual wording (`validate::unknown_value`: the value, the
/// closest name, every name), to which the loader adds where it was.
pub(crate) fn deserialize<'de, K: Kind, D: Deserializer<'de>>(d: D) -> Result<K, D::Error> {
    struct Names<K>(PhantomData<K>);
    impl<K: Kind> Visitor<'_> for Names<K> {
        type Value = K;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "one of: {}", K::names().join(", "))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
            K::from_name(v).ok_or_else(|| E::custom(super::validate::unknown_value(v, &K::names())))
        }
    }
    d.deserialize_str(Names(PhantomData))
}

/// Declares a [`Kind`] enum: each variant with its doc comment (required)
/// and its scenario name.
///
/// ```ignore
/// kinds! {
///     /// What happens to a running request when KV blocks run out (`scheduler.preemption`).
///     pub enum Preemption {
///         /// Free its KV and prefill it again later.
///         Recompute = "recompute",
///         /// Move its KV to host memory and back.
///         Swap = "swap",
///     }
/// }
/// ```
///
/// The enum derives `Debug`, `Clone`, `Copy`, `PartialEq`, `Eq` and `Hash`,
/// and gets [`Kind`], `Display` (the name) and serde's `Serialize` /
/// `Deserialize` (by name, through [`deserialize`]).
macro_rules! kinds {
    (
        $(#[$attr:meta])*
        $vis:vis enum $ty:ident {
            $( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, )+
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $ty {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl $crate::scenario::kinds::Kind for $ty {
            const ALL: &'static [Self] = &[$($ty::$variant),+];

            fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }

            fn doc(self) -> &'static str {
                // Doc lines arrive as " text" each: joined, they read as one line.
                match self {
                    $($ty::$variant => concat!($($doc),+),)+
                }
                .trim()
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::scenario::kinds::Kind::name(*self))
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str($crate::scenario::kinds::Kind::name(*self))
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                $crate::scenario::kinds::deserialize(d)
            }
        }
    };
}
pub(crate) use kinds;

#[cfg(test)]
mod tests {
    use super::Kind;
    use crate::cluster::disagg::{ClusterMode, KvLink};

    /// A variant's doc is its doc comment's lines joined into one, trimmed.
    #[test]
    fn docs_join_the_doc_comment_lines() {
        assert_eq!(
            ClusterMode::SemiPd.doc(),
            "Each instance splits its compute between a prefill and a decode worker sharing its memory."
        );
        assert_eq!(
            ClusterMode::Colocated.doc(),
            "Every replica prefills and decodes."
        );
    }

    #[test]
    fn names_and_display_agree_and_unknown_names_are_none() {
        assert_eq!(KvLink::from_name("intra-node"), Some(KvLink::IntraNode));
        assert_eq!(KvLink::from_name("Intra-Node"), None, "names are exact");
        assert_eq!(KvLink::InterNode.to_string(), "inter-node");
        assert_eq!(KvLink::ALL.len(), KvLink::names().len());
    }
}
