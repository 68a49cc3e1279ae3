#!/usr/bin/env bash
# Runs every example scenario into OUT/<name>/ (summary.json, requests.csv,
# timeseries.csv; plans.jsonl, pareto.csv, best.toml for searches), to
# compare outputs before and after a change:
#
#   scripts/examples.sh /tmp/before              # with the tree as it is
#   git stash; scripts/examples.sh /tmp/after; git stash pop
#   diff -r /tmp/before /tmp/after
#
# Uses target/release/fleetsim (built first), or the binary FLEETSIM names
# (to run an older build's binary on today's examples). Examples that read
# ../shared are skipped when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/examples.sh OUT}
if [[ -n ${FLEETSIM:-} ]]; then
    bin=$FLEETSIM
else
    cargo build --release --quiet
    bin=target/release/fleetsim
fi
mkdir -p "$out"
for f in examples/*.toml; do
    name=$(basename "$f" .toml)
    if grep -q 'shared/' "$f" && [ ! -d ../shared ]; then
        echo "skip $name (../shared absent)"
        continue
    fi
    rm -rf "${out:?}/$name"
    if [[ $name == *search* ]]; then
        "$bin" search --quiet "$f" --out "$out/$name" >"$out/$name.stdout" 2>&1 || echo "FAILED $name"
    else
        "$bin" run --quiet "$f" --out "$out/$name" >"$out/$name.stdout" 2>&1 || echo "FAILED $name"
    fi
done
