#!/usr/bin/env bash
# Same-run A/B of JSON decode throughput: a head revision (default HEAD) against a base revision
# (default 03eae33, main when issue 13 "JSON without a declared schema" was filed), on
# `cargo bench --bench decode_encode`.
#
#   scripts/bench-decode.sh [base-rev] [rounds (5)] [head-rev]
#
# Both revisions are checked out in git worktrees (so edits to this tree during the run change
# nothing) with the head's Cargo.toml, Cargo.lock and benches/decode_encode.rs (the base had no
# inferred-schema bench; its decoder API is the same), so both builds share every dependency
# artifact and differ only in the streamx crate. Rounds alternate base, head, base, head ... so
# machine noise hits both alike; the table gives each round's mean time per 4,096-event buffer
# and the head/base ratio (issue 13's target: inferred within 1.10).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-03eae33}
rounds=${2:-5}
head=$(git -C "$root" rev-parse --short "${3:-HEAD}")
filter='decode_json_(declared|inferred)_schema'
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}

# Fixed paths: a second run of the same revisions reuses their builds.
work=${TMPDIR:-/tmp}/streamx-bench-decode
cleanup() {
    for side in base head; do git -C "$root" worktree remove --force "$work/$side" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
mkdir -p "$work"
for side in base head; do
    rev=$base; [ $side = head ] && rev=$head
    git -C "$root" worktree remove --force "$work/$side" >/dev/null 2>&1 || rm -rf "${work:?}/$side"
    git -C "$root" worktree add --detach -q "$work/$side" "$rev"
    git -C "$root" show "$head:Cargo.toml" >"$work/$side/Cargo.toml"
    git -C "$root" show "$head:Cargo.lock" >"$work/$side/Cargo.lock"
    git -C "$root" show "$head:benches/decode_encode.rs" >"$work/$side/benches/decode_encode.rs"
done

# Both sides build the bench binary under the same name in the shared target dir, so each is
# built once and its executable copied aside; rounds run the copies.
build() { # <side>: builds the side's bench, copies its executable to $work/<side>.bench
    local exe
    # Both sides build the streamx crate under the same unit hash; cargo finds a side's sources
    # fresh when they are older than the other side's build, so each side's are touched first.
    find "$work/$1/src" "$work/$1/benches" -name '*.rs' -exec touch {} +
    exe=$(cd "$work/$1" && cargo bench --locked --quiet --bench decode_encode --no-run \
        --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") \
            and m["target"]["name"] == "decode_encode":
        print(m["executable"])')
    cp "$exe" "$work/$1.bench"
}
bench() { # <side> <baseline name>
    (cd "$work/$1" && "$work/$1.bench" --bench --save-baseline "$2" --noplot "$filter" >/dev/null)
}
echo "[bench-decode] building base ($base) and head ($head) benches" >&2
build base
build head
for round in $(seq 1 "$rounds"); do
    echo "[bench-decode] round $round of $rounds" >&2
    bench base "ab-base-$round"
    bench head "ab-head-$round"
done
python3 "$root/scripts/bench/decode_ab.py" "$CARGO_TARGET_DIR/criterion/clickstream" "$rounds"
