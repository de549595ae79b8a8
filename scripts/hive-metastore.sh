#!/usr/bin/env bash
# Install, start and stop a real Apache Hive 2.3.10 metastore (Thrift) for StreamX's Hive tests.
# It binds 127.0.0.1 only and keeps its state (embedded Derby, warehouse) in a fresh directory
# on every start (unless STREAMX_HIVE_KEEP_STATE=1).
#
#   scripts/hive-metastore.sh install   pip-install pyspark==4.0.1 (it carries the Hive 2.3.10,
#                                       Derby, DataNucleus, libthrift and Hadoop jars) into the
#                                       venv; fast no-op when it is already there
#   scripts/hive-metastore.sh up        install, compile the launcher (cached), start the
#                                       metastore, wait until its port accepts connections, and
#                                       append its lines to the env file
#   scripts/hive-metastore.sh down      stop the metastore this script started (idempotent)
#   scripts/hive-metastore.sh status    say whether it runs and answers (exit 1 when it does not)
#
# The server: scripts/hive/StreamxTestMetastore.java serves HiveMetaStore's handler through a
# TThreadPoolServer on 127.0.0.1:$PORT, plain (unframed) transport + binary protocol, the wire
# format of a default Hive metastore. scripts/hive/StubObjectStoreFileSystem.java is a test-only
# Hadoop FileSystem registered for s3, s3a, gs, abfss and az: it reports every path as an
# existing directory, so tables and partitions on object-store locations are accepted (pyspark
# ships no S3/GCS/Azure filesystem jars). file: locations use the real local filesystem.
#
# Knobs (environment):
#   STREAMX_CACHE_DIR       installs                  (default $HOME/.cache/streamx, as services.sh)
#   STREAMX_SERVICES_DIR    runtime state             (default /tmp/streamx-services, as services.sh)
#   STREAMX_VENV            python venv for pyspark   (default $STREAMX_CACHE_DIR/venv)
#   STREAMX_HIVE_PORT       metastore port            (default 9083)
#   STREAMX_HIVE_STATE_DIR  Derby db, warehouse, logs (default $STREAMX_SERVICES_DIR/hive-$PORT)
#   STREAMX_ENV_FILE        env file that `up` appends to (default $STREAMX_SERVICES_DIR/env)
#   STREAMX_READY_TIMEOUT   seconds the metastore may take to open its port (default 120)
#   STREAMX_HIVE_KEEP_STATE 1: `up` keeps the Derby db and warehouse of the last start (a restart);
#                           otherwise every start is empty
#
# `up` appends (replacing earlier lines with the same keys):
#   STREAMX_TEST_HIVE_URIS=thrift://127.0.0.1:$PORT
#   STREAMX_TEST_PYSPARK_PYTHON=$STREAMX_VENV/bin/python
# Compiled launcher classes are cached in $STREAMX_CACHE_DIR/hive/classes-<hash>, keyed by a
# hash of the java sources, the pyspark version and the javac version.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
JAVA_SRC_DIR="$SCRIPT_DIR/hive"

PYSPARK_VERSION=4.0.1
CACHE_DIR=${STREAMX_CACHE_DIR:-$HOME/.cache/streamx}
SERVICES_DIR=${STREAMX_SERVICES_DIR:-/tmp/streamx-services}
VENV_DIR=${STREAMX_VENV:-$CACHE_DIR/venv}
HIVE_CACHE_DIR="$CACHE_DIR/hive"
ENV_FILE=${STREAMX_ENV_FILE:-$SERVICES_DIR/env}
PORT=${STREAMX_HIVE_PORT:-9083}
STATE_DIR=${STREAMX_HIVE_STATE_DIR:-$SERVICES_DIR/hive-$PORT}
READY_TIMEOUT=${STREAMX_READY_TIMEOUT:-120}
STOP_TIMEOUT=15
HOST=127.0.0.1
MAIN_CLASS=streamx.hive.StreamxTestMetastore
PID_FILE="$STATE_DIR/metastore.pid"
LOG_FILE="$STATE_DIR/metastore.log"

log() { printf '[hive-metastore] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  local sudo=()
  if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root (or sudo) to apt-get install $*"
    sudo=(sudo)
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

ensure_tools() {
  local need=()
  command -v python3 >/dev/null || need+=(python3 python3-venv)
  command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
  if ((${#need[@]} > 0)); then
    apt_install "${need[@]}"
  fi
  # Debian's own python3 has no venv/ensurepip without python3-venv (pyenv builds do).
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
}

# Print the pyspark jars directory of the venv, or fail when pyspark $PYSPARK_VERSION is missing.
pyspark_jars() {
  "$VENV_DIR/bin/python" - "$PYSPARK_VERSION" 2>/dev/null <<'EOF'
import importlib.metadata as md, importlib.util, pathlib, sys
if md.version("pyspark") != sys.argv[1]:
    sys.exit(1)
jars = pathlib.Path(importlib.util.find_spec("pyspark").origin).parent / "jars"
if not any(jars.glob("hive-metastore-2.3.*.jar")):
    sys.exit(1)
print(jars)
EOF
}

JARS_DIR=""
cmd_install() {
  if JARS_DIR=$(pyspark_jars); then
    return 0
  fi
  ensure_tools
  local t0
  t0=$(now_ms)
  if [[ -d $VENV_DIR ]] && ! "$VENV_DIR/bin/python" -c '' 2>/dev/null; then
    log "venv at $VENV_DIR is broken; recreating it"
    rm -rf "$VENV_DIR"
  fi
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    log "creating venv $VENV_DIR"
    mkdir -p "$(dirname "$VENV_DIR")"
    python3 -m venv "$VENV_DIR"
  fi
  log "installing pyspark==$PYSPARK_VERSION into $VENV_DIR (~430 MB)"
  "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    "pyspark==$PYSPARK_VERSION" >&2
  JARS_DIR=$(pyspark_jars) || die "pyspark installed but its Hive jars were not found"
  log "pyspark ready in $(($(now_ms) - t0)) ms ($JARS_DIR)"
}

# Compile the launcher and the stub FileSystem once; print the classes directory.
compile_classes() {
  command -v javac >/dev/null || ensure_tools
  local key dir tmp
  key=$( {
    cat "$JAVA_SRC_DIR"/*.java
    printf 'pyspark %s\n' "$PYSPARK_VERSION"
    javac -version 2>&1
  } | sha256sum | cut -c1-16)
  dir="$HIVE_CACHE_DIR/classes-$key"
  if [[ -f $dir/.complete ]]; then
    printf '%s\n' "$dir"
    return 0
  fi
  log "compiling $JAVA_SRC_DIR/*.java into $dir"
  mkdir -p "$HIVE_CACHE_DIR"
  tmp=$(mktemp -d "$HIVE_CACHE_DIR/tmp.XXXXXX")
  if ! javac -nowarn -encoding UTF-8 -d "$tmp" -cp "$JARS_DIR/*" "$JAVA_SRC_DIR"/*.java >&2; then
    rm -rf "$tmp"
    die "javac failed"
  fi
  touch "$tmp/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------------------------
# Process management
# ---------------------------------------------------------------------------------------------

port_open() {
  # shellcheck disable=SC2016 # $0/$1 are expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# Field $2 of /proc/$1/stat counted after "(comm)" (1 = state, 3 = pgid).
proc_stat_field() {
  local stat fields
  stat=$(<"/proc/$1/stat") || return 1
  read -r -a fields <<<"${stat##*) }"
  printf '%s\n' "${fields[$(($2 - 1))]}"
}

# True while pid $1 runs (a zombie counts as gone).
pid_running() {
  local state
  state=$(proc_stat_field "$1" 1 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# Print the recorded pid if that process is alive and is our metastore (guards against a
# recycled pid).
live_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$MAIN_CLASS" || return 1
  printf '%s\n' "$pid"
}

stop_metastore() {
  local pid deadline
  if pid=$(live_pid); then
    log "stopping metastore (pid $pid)"
    # Started with setsid: the pid leads its own process group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while pid_running "$pid"; do
      if ((SECONDS >= deadline)); then
        log "pid $pid did not exit within ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.1
    done
  fi
  rm -f "$PID_FILE"
}

write_hive_site() {
  local conf_dir=$1 scheme props=""
  for scheme in s3 s3a gs abfss az; do
    props+="  <property><name>fs.$scheme.impl</name><value>streamx.hive.StubObjectStoreFileSystem</value></property>
"
  done
  cat >"$conf_dir/hive-site.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/hive-metastore.sh: a throwaway test metastore. -->
<configuration>
  <property><name>javax.jdo.option.ConnectionURL</name><value>jdbc:derby:;databaseName=$STATE_DIR/metastore_db;create=true</value></property>
  <property><name>javax.jdo.option.ConnectionDriverName</name><value>org.apache.derby.jdbc.EmbeddedDriver</value></property>
  <property><name>datanucleus.schema.autoCreateAll</name><value>true</value></property>
  <property><name>hive.metastore.schema.verification</name><value>false</value></property>
  <property><name>hive.metastore.warehouse.dir</name><value>file://$STATE_DIR/warehouse</value></property>
  <property><name>hive.async.log.enabled</name><value>false</value></property>
  <!-- pyspark ships no BoneCP (the default): without this, drop_database dies in TxnHandler. -->
  <property><name>datanucleus.connectionPoolingType</name><value>None</value></property>
$props</configuration>
EOF
  cat >"$conf_dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = $STATE_DIR/metastore-java.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{ISO8601} %-5p [%t] %c{2}: %m%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
logger.hms.name = org.apache.hadoop.hive.metastore
logger.hms.level = info
EOF
}

write_env() {
  local tmp
  mkdir -p "$(dirname "$ENV_FILE")"
  touch "$ENV_FILE"
  tmp=$(mktemp "$ENV_FILE.XXXXXX")
  grep -vE '^(STREAMX_TEST_HIVE_URIS|STREAMX_TEST_PYSPARK_PYTHON)=' "$ENV_FILE" >"$tmp" || true
  cat >>"$tmp" <<EOF
STREAMX_TEST_HIVE_URIS=thrift://$HOST:$PORT
STREAMX_TEST_PYSPARK_PYTHON=$VENV_DIR/bin/python
EOF
  mv "$tmp" "$ENV_FILE"
  log "env file $ENV_FILE:"
  grep -E '^(STREAMX_TEST_HIVE_URIS|STREAMX_TEST_PYSPARK_PYTHON)=' "$ENV_FILE"
}

fail_start() {
  log "metastore failed: $1"
  log "logs: $LOG_FILE (stdout/stderr), $STATE_DIR/metastore-java.log (log4j), $STATE_DIR/derby.log"
  log "last lines of $LOG_FILE:"
  tail -n 30 "$LOG_FILE" >&2 || true
  if [[ -f $STATE_DIR/metastore-java.log ]]; then
    log "last errors in $STATE_DIR/metastore-java.log:"
    grep -E 'ERROR|Exception' "$STATE_DIR/metastore-java.log" | tail -n 15 >&2 || true
  fi
  stop_metastore
  exit 1
}

cmd_up() {
  local t0 classes pid deadline
  t0=$(now_ms)
  cmd_install
  if pid=$(live_pid) && port_open "$PORT"; then
    log "already running on $HOST:$PORT (pid $pid); leaving it"
    write_env
    return 0
  fi
  stop_metastore # a recorded process that does not answer is stale
  if port_open "$PORT"; then
    die "port $HOST:$PORT is taken by a process this script did not start (set STREAMX_HIVE_PORT)"
  fi
  classes=$(compile_classes)
  if [[ ${STREAMX_HIVE_KEEP_STATE:-0} == 1 ]]; then
    log "keeping the state of the last start in $STATE_DIR (STREAMX_HIVE_KEEP_STATE=1)"
  else
    rm -rf "$STATE_DIR"
  fi
  mkdir -p "$STATE_DIR/conf" "$STATE_DIR/warehouse"
  write_hive_site "$STATE_DIR/conf"
  log "starting Hive metastore 2.3.10 on $HOST:$PORT (state in $STATE_DIR)"
  # setsid: own session and process group, so it outlives this script and `down` can signal
  # the group. All stdio goes to the log file.
  (cd "$STATE_DIR" && exec setsid java -Xmx512m \
    -Dlog4j2.configurationFile="file://$STATE_DIR/conf/log4j2.properties" \
    -Dderby.stream.error.file="$STATE_DIR/derby.log" \
    -Djava.net.preferIPv4Stack=true \
    -cp "$STATE_DIR/conf:$classes:$JARS_DIR/*" "$MAIN_CLASS" "$PORT" \
    >"$LOG_FILE" 2>&1 </dev/null) &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  deadline=$((SECONDS + READY_TIMEOUT))
  until port_open "$PORT"; do
    pid_running "$pid" || fail_start "process $pid exited before opening port $PORT"
    ((SECONDS < deadline)) || fail_start "port $PORT not open after ${READY_TIMEOUT}s"
    sleep 0.2
  done
  log "ready on $HOST:$PORT after $(($(now_ms) - t0)) ms (pid $pid)"
  write_env
}

cmd_down() {
  stop_metastore
  log "down"
}

cmd_status() {
  local pid
  pid=$(live_pid || echo "-")
  if port_open "$PORT"; then
    printf 'hive-metastore up    %s:%s  pid %s  state %s\n' "$HOST" "$PORT" "$pid" "$STATE_DIR"
  else
    printf 'hive-metastore down  %s:%s  pid %s\n' "$HOST" "$PORT" "$pid"
    return 1
  fi
}

case ${1:-} in
  install)
    cmd_install
    log "installed: pyspark $PYSPARK_VERSION ($JARS_DIR)"
    ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
