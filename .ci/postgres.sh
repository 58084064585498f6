#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1, for the tests of the PostgreSQL records store.
#
#   . .ci/postgres.sh; pg_start; trap pg_stop EXIT    # from a script (.ci/run does this)
#   eval "$(bash .ci/postgres.sh start)"              # by hand; it prints `export …` lines
#   bash .ci/postgres.sh stop "$UNHARDCODED_PG_DIR"   # and this stops it and removes it
#
# pg_start finds initdb and pg_ctl (on PATH, else /usr/lib/postgresql/*/bin) and installs
# Debian's `postgresql` package when there are none (without its default cluster). It creates a
# cluster in a temp dir with a random password, owned by a user that is not root when run as
# root (postgres refuses to run as root: the `postgres` user if there is one, else `nobody`),
# starts it on a free port on 127.0.0.1, creates database `unhardcoded_test`, and exports
# UNHARDCODED_TEST_POSTGRES (the DSN) and UNHARDCODED_PG_DIR (the cluster's dir).
# pg_stop stops the server and removes the dir.

_pg_say() { echo "postgres.sh: $*" >&2; }

_pg_bindir() {
  local found
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$found" ] && [ -x "$found/initdb" ] && [ -x "$found/pg_ctl" ]; then
    echo "$found"
    return 0
  fi
  return 1
}

_pg_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { _pg_say "no initdb/pg_ctl, and not root"; return 1; }
    sudo="sudo"
  fi
  _pg_say "installing Debian's postgresql package"
  # No `main` cluster on install: the tests make their own (a drop-in the package reads).
  $sudo mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" \
    | $sudo tee /etc/postgresql-common/createcluster.d/unhardcoded-no-main.conf >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql >&2
}

_pg_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run a command as the cluster's owner, from inside its dir (a user that cannot read the
# current directory makes pg_ctl fail).
_pg_as() {
  if [ -n "${_PG_USER:-}" ]; then
    (cd "$UNHARDCODED_PG_DIR" && runuser -u "$_PG_USER" -- "$@")
  else
    (cd "$UNHARDCODED_PG_DIR" && "$@")
  fi
}

pg_start() {
  local bin port password try
  bin=$(_pg_bindir) || { _pg_install && bin=$(_pg_bindir); } \
    || { _pg_say "no initdb/pg_ctl after installing postgresql"; return 1; }
  _PG_USER=""
  if [ "$(id -u)" -eq 0 ]; then
    if id postgres >/dev/null 2>&1; then _PG_USER=postgres; else _PG_USER=nobody; fi
  fi
  UNHARDCODED_PG_DIR=$(mktemp -d /tmp/unhardcoded-pg.XXXXXX)
  export UNHARDCODED_PG_DIR _PG_BIN="$bin" _PG_USER
  password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$password" > "$UNHARDCODED_PG_DIR/pw"
  [ -n "$_PG_USER" ] && chown -R "$_PG_USER" "$UNHARDCODED_PG_DIR"
  chmod 700 "$UNHARDCODED_PG_DIR"
  _pg_as "$bin/initdb" -D "$UNHARDCODED_PG_DIR/data" -U postgres -A scram-sha-256 \
    --pwfile="$UNHARDCODED_PG_DIR/pw" -E UTF8 --no-locale --no-sync >"$UNHARDCODED_PG_DIR/initdb.log" 2>&1 \
    || { cat "$UNHARDCODED_PG_DIR/initdb.log" >&2; _pg_say "initdb failed"; return 1; }
  for try in 1 2 3; do  # a port taken between choosing it and starting: choose again
    port=$(_pg_free_port)
    if _pg_as "$bin/pg_ctl" -D "$UNHARDCODED_PG_DIR/data" -l "$UNHARDCODED_PG_DIR/server.log" \
        -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -k $UNHARDCODED_PG_DIR" \
        start >/dev/null; then
      break
    fi
    [ "$try" -eq 3 ] && { cat "$UNHARDCODED_PG_DIR/server.log" >&2; _pg_say "not started"; return 1; }
  done
  export _PG_PORT="$port"
  PGPASSWORD="$password" "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -c "CREATE DATABASE unhardcoded_test" >&2
  export UNHARDCODED_TEST_POSTGRES="postgresql://postgres:$password@127.0.0.1:$port/unhardcoded_test"
  rm -f "$UNHARDCODED_PG_DIR/pw"
  _pg_say "$("$bin/pg_ctl" --version) on 127.0.0.1:$port ($UNHARDCODED_PG_DIR)"
}

pg_stop() {
  local dir="${1:-${UNHARDCODED_PG_DIR:-}}"
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  local bin="${_PG_BIN:-}" user
  [ -n "$bin" ] || bin=$(_pg_bindir) || return 0
  user=$(stat -c %U "$dir")
  if [ "$(id -u)" -eq 0 ] && [ "$user" != root ]; then
    (cd "$dir" && runuser -u "$user" -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null) || true
  else
    (cd "$dir" && "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null) || true
  fi
  rm -rf "$dir"
  _pg_say "stopped ($dir)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced
  set -euo pipefail
  case "${1:-}" in
    start)
      pg_start
      printf 'export UNHARDCODED_TEST_POSTGRES=%q\nexport UNHARDCODED_PG_DIR=%q\n' \
        "$UNHARDCODED_TEST_POSTGRES" "$UNHARDCODED_PG_DIR"
      ;;
    stop) pg_stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
  esac
fi
