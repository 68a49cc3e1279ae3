//! Helpers the scenario's unit tests share: plan a scenario from `--set`
//! lines, and check that one is refused by the key the user wrote.

use super::load;
use super::validate::{Plan, plan};

/// Plans the default scenario with `sets` applied (each as `--set` takes it).
pub(super) fn try_plan<S: AsRef<str>>(sets: &[S]) -> crate::Result<Plan> {
    let sets: Vec<String> = sets.iter().map(|s| s.as_ref().to_string()).collect();
    plan(&load(None, &sets)?)
}

/// Asserts that `sets` are refused with an error naming `` `key` `` and saying `says`.
pub(super) fn refused<S: AsRef<str>>(sets: &[S], key: &str, says: &str) {
    let e = try_plan(sets).expect_err("refused").to_string();
    let sets: Vec<&str> = sets.iter().map(AsRef::as_ref).collect();
    assert!(
        e.contains(&format!("`{key}`")) && e.contains(says),
        "{sets:?}: {e}"
    );
}

/// The plan of `sets`, which must be accepted.
pub(super) fn plans<S: AsRef<str>>(sets: &[S]) -> Plan {
    let shown: Vec<&str> = sets.iter().map(AsRef::as_ref).collect();
    try_plan(sets).unwrap_or_else(|e| panic!("{shown:?}: {e}"))
}

/// For each `(value, valid)`, `key = value` plans when valid and is
/// otherwise refused by `key`, saying `says`.
pub(super) fn accepts_only(key: &str, says: &str, cases: &[(&str, bool)]) {
    for &(v, valid) in cases {
        let set = format!("{key}={v}");
        if valid {
            plans(&[&set]);
        } else {
            refused(&[&set], key, says);
        }
    }
}
