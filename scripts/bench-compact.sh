#!/usr/bin/env bash
# Compaction benchmark, same run, same data (scripts/bench/compact_compare.py): writes ~1 GB of
# small snappy Parquet files (2,000 files of 5,600 clickstream rows in 8 hour directories, laid
# out as `streamx ingest` lays out an hourly topic), then compacts them with
# `streamx compact --config` (release build), with DuckDB (COPY ... TO ... FORMAT parquet) and
# with pyarrow (dataset -> write_dataset), each on a fresh copy, and prints wall s, MB/s, CPU s,
# MB per CPU-second and peak RSS for each.
#
#   scripts/bench-compact.sh [dirs] [files per dir] [rows per file]    (defaults: 8 250 5600)
#
# STREAMX_BIN=path uses that binary instead of building the release one (say which profile when
# you quote figures). WORKDIR (default: a temporary directory, removed at exit) holds ~3 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
if [ -z "${STREAMX_BIN:-}" ]; then
  cargo build --release --quiet --bin streamx
  STREAMX_BIN=$CARGO_TARGET_DIR/release/streamx
fi
python=${STREAMX_TEST_PYTHON:-$HOME/.cache/streamx/venv/bin/python}
work=${WORKDIR:-$(mktemp -d)}
[ -n "${WORKDIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
"$python" scripts/bench/compact_compare.py "$STREAMX_BIN" "$work" "${1:-8}" "${2:-250}" "${3:-5600}"
