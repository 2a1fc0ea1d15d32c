#!/usr/bin/env bash
# Makes sure the PostgreSQL server the store tests use is there: listening on 127.0.0.1:5432,
# letting local TCP connections in without a password (trust), with a database named `test`.
#
# Idempotent, non-interactive (CI runs it as root with no stdin). When the server is not
# answering it installs Debian's postgresql if missing, then starts the cluster on that port, or
# creates one. pg_hba.conf is edited only when a password-less connection as `postgres` is
# refused, by prepending trust lines for 127.0.0.1 and ::1 — fine for a CI or development
# machine, not for a server that holds real data. It never stops or restarts a running server.
#
#   scripts/ci/postgres.sh
#   FACEGATE_PG_PORT=5433 scripts/ci/postgres.sh   # manage a cluster on another port
set -euo pipefail

HOST=127.0.0.1
PORT="${FACEGATE_PG_PORT:-5432}"
DB='test'
HBA_MARKER='# facegate-ci:'
export PGCONNECT_TIMEOUT=5
# Test what a password-less client would get, whatever the caller's environment says.
unset PGPASSWORD PGPASSFILE PGSERVICE PGHOST PGPORT PGUSER PGDATABASE

log() { echo "== postgres: $*"; }
die() {
  echo "scripts/ci/postgres.sh: $*" >&2
  exit 1
}

apt_updated=0
apt_install() {
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL is missing and installing it ($*) needs root"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    apt-get update -qq </dev/null
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null
}

ready() { pg_isready -q -h "$HOST" -p "$PORT"; }

# -w: never prompt for a password (there is no stdin in CI); fail instead.
query() { psql -w -X -q -A -t -h "$HOST" -p "$PORT" -U postgres -d postgres -c "$1" </dev/null; }

can_connect() { query 'select 1' >/dev/null 2>&1; }

wait_for() {
  local what=$1 check=$2 _
  for _ in $(seq 1 60); do
    "$check" && return 0
    sleep 0.5
  done
  die "$what on $HOST:$PORT: still failing after 30 s"
}

# Newest PostgreSQL server version installed from Debian packages, or nothing.
server_version() {
  local bin version best=''
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$bin" ] || continue
    version=${bin#/usr/lib/postgresql/}
    version=${version%%/*}
    best=$(printf '%s\n%s\n' "$best" "$version" | sort -V | tail -n 1)
  done
  printf '%s' "$best"
}

# The Debian cluster configured for $PORT, as "version name status", or nothing.
cluster_on_port() {
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters --no-header 2>/dev/null | awk -v port="$PORT" '$3 == port { print $1, $2, $4; exit }'
}

if ! command -v pg_isready >/dev/null || ! command -v psql >/dev/null; then
  apt_install postgresql-client
fi

if ready; then
  log "server already answering on $HOST:$PORT"
else
  if [ -z "$(server_version)" ] || ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
  fi
  version='' name='' status=''
  read -r version name status <<<"$(cluster_on_port)" || true
  if [ -z "$version" ]; then
    version=$(server_version)
    name=main
    [ ! -e "/etc/postgresql/$version/main" ] || name=facegate
    log "creating cluster $version/$name on port $PORT"
    pg_createcluster "$version" "$name" --port "$PORT" >/dev/null
    status=down
  fi
  case $status in
    online*) log "cluster $version/$name is running but not answering yet" ;;
    *)
      log "starting cluster $version/$name"
      pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
      ;;
  esac
  wait_for 'waiting for the server' ready
fi

if ! can_connect; then
  version='' name=''
  read -r version name _ <<<"$(cluster_on_port)" || true
  [ -n "$version" ] || die "the server on $HOST:$PORT refuses password-less connections as postgres, and it is not a Debian cluster this script can configure"
  hba="/etc/postgresql/$version/$name/pg_hba.conf"
  if ! grep -q "^$HBA_MARKER" "$hba"; then
    log "trusting connections from this machine in $hba"
    lines=$(printf '%s\n' \
      "$HBA_MARKER local test connections need no password (scripts/ci/postgres.sh)" \
      'host    all    all    127.0.0.1/32    trust' \
      'host    all    all    ::1/128         trust')
    original=$(cat "$hba")
    # Rewritten in place (not replaced) so the file keeps its owner and mode; first match wins in pg_hba.
    printf '%s\n%s\n' "$lines" "$original" >"$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
  wait_for 'connecting as postgres without a password' can_connect
fi

db_exists() { [ "$(query "select 1 from pg_database where datname = '$DB'")" = 1 ]; }
if ! db_exists; then
  log "creating database $DB"
  # Another run may have created it meanwhile: only a database that still is missing is an error.
  query "create database $DB" >/dev/null || db_exists || die "cannot create database $DB"
fi

log "ready: postgres://postgres@$HOST:$PORT/$DB ($(query 'show server_version'))"
