#!/usr/bin/env bash
# Same-run A/B of JSON decode throughput: this tree against a base revision (default 03eae33, main
# when issue 13 "JSON without a declared schema" was filed), on `cargo bench --bench decode_encode`.
#
#   scripts/bench-decode.sh [base-rev] [rounds]
#
# The base is checked out in a temporary git worktree with this tree's Cargo.toml, Cargo.lock and
# benches/decode_encode.rs (the base had no inferred-schema bench; its decoder API is the same), so
# both builds share every dependency artifact and differ only in the streamx crate. Rounds alternate
# base, head, base, head ... so machine noise hits both alike; the table gives each round's mean
# time per 4,096-event buffer and the head/base ratio (issue 13's target: inferred within 1.10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-03eae33}
rounds=${2:-3}
filter='decode_json_(declared|inferred)_schema'
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}

work=$(mktemp -d)
cleanup() { git -C "$root" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git -C "$root" worktree add --detach -q "$work/base" "$base"
cp "$root/Cargo.toml" "$root/Cargo.lock" "$work/base/"
cp "$root/benches/decode_encode.rs" "$work/base/benches/"

bench() { # <dir> <baseline name>
    (cd "$1" && cargo bench --locked --quiet --bench decode_encode -- \
        --save-baseline "$2" --noplot "$filter" >/dev/null)
}
echo "[bench-decode] building base ($base) and head benches" >&2
(cd "$work/base" && cargo bench --locked --quiet --bench decode_encode --no-run)
(cd "$root" && cargo bench --locked --quiet --bench decode_encode --no-run)
for round in $(seq 1 "$rounds"); do
    echo "[bench-decode] round $round of $rounds" >&2
    bench "$work/base" "ab-base-$round"
    bench "$root" "ab-head-$round"
done
python3 "$root/scripts/bench/decode_ab.py" "$CARGO_TARGET_DIR/criterion/clickstream" "$rounds"
