#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the build and the tests need on a fresh
# machine, starts the external test services (tansu, moto, Azurite) with scripts/services.sh
# and a Hive metastore with scripts/hive-metastore.sh,
# runs every test (unit, embedded-broker, crash, real-service), and stops the services.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build dependencies of rdkafka's bundled librdkafka (C): a compiler, make, zlib headers, and
# for TLS/SASL the system OpenSSL, libcurl (OAUTHBEARER OIDC) and Cyrus SASL (GSSAPI) headers.
# tests/kafka_security.rs runs openssl (a private CA) and stunnel4 (a TLS terminator).
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v make >/dev/null || need+=(make)
[ -e /usr/include/zlib.h ] || need+=(zlib1g-dev)
command -v curl >/dev/null || need+=(curl)
[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
[ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || need+=(libcurl4-openssl-dev)
[ -e /usr/include/sasl/sasl.h ] || need+=(libsasl2-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v openssl >/dev/null || need+=(openssl)
command -v stunnel4 >/dev/null || need+=(stunnel4)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# A target dir that survives between runs on a reused machine.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamx/target}
export CARGO_TERM_COLOR=never
# A reused target dir grows with every dependency change; a full disk fails the build (it did
# once, in CI). Under 12 GiB free, drop the incremental caches, and if that is not enough, the
# debug build (a cold build takes ~25 min here; a failed one takes forever).
free_gib() { mkdir -p "$CARGO_TARGET_DIR" && df -P -BG "$CARGO_TARGET_DIR" | awk 'NR == 2 { sub("G", "", $4); print $4 }'; }
if [ "$(free_gib)" -lt 12 ]; then
  echo "only $(free_gib) GiB free under $CARGO_TARGET_DIR: removing incremental caches"
  rm -rf "$CARGO_TARGET_DIR"/*/incremental
  if [ "$(free_gib)" -lt 12 ]; then
    echo "still $(free_gib) GiB free: removing the debug build"
    rm -rf "$CARGO_TARGET_DIR/debug"
  fi
fi

scripts/services.sh up
trap 'scripts/hive-metastore.sh down; scripts/services.sh down' EXIT
# The Hive metastore (pyspark's Hive 2.3.10 jars; ~430 MB cached on the first run) appends
# STREAMX_TEST_HIVE_URIS and STREAMX_TEST_PYSPARK_PYTHON to the env file services.sh wrote.
scripts/hive-metastore.sh up
set -a
# shellcheck disable=SC1091
. "${STREAMX_SERVICES_DIR:-/tmp/streamx-services}/env"
set +a

# Doc tests are left out (there are none; their empty run would be the last summary line).
log=$(mktemp)
cargo test --locked --lib --bins --tests "$@" 2>&1 | tee "$log"
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "all test binaries: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
