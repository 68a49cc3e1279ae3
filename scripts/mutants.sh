#!/usr/bin/env bash
# Mutation testing of what a change touched (cargo-mutants, from crates.io:
# `cargo install cargo-mutants --locked`).
#
#   scripts/mutants.sh            mutants in the lines changed since main
#   scripts/mutants.sh REV        ... since REV
#   scripts/mutants.sh -- ARGS    cargo mutants ARGS as given (e.g. -f src/replica/swap.rs)
#
# Every surviving ("missed") mutant gets a test that kills it, or a line in
# docs/testing.md saying why it cannot change behaviour. Results land in
# mutants.out/ (outcomes.json, missed.txt, caught.txt, unviable.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || {
    echo "cargo-mutants is not installed: cargo install cargo-mutants --locked" >&2
    exit 2
}
if [ "${1:-}" = "--" ]; then
    shift
    exec cargo mutants "$@"
fi
base=${1:-main}
diff=$(mktemp)
trap 'rm -f "$diff"' EXIT
git diff "$base" -- 'src/*.rs' 'src/**/*.rs' >"$diff"
if [ ! -s "$diff" ]; then
    echo "no source change since $base"
    exit 0
fi
cargo mutants --in-diff "$diff"
