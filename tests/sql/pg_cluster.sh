#!/usr/bin/env bash
# Runs a command against a private, throwaway PostgreSQL cluster: initdb in a temporary
# directory, unix socket only (listen_addresses=''), as the unprivileged user `postgres` when
# started as root; exports PROCTOR_PG_HOST/PORT/ADMIN for the command; stops the cluster and
# removes the directory afterwards, whatever happened. Exits 77 (skip) only when the PostgreSQL
# server binaries are absent.
#   usage: pg_cluster.sh COMMAND [ARG...]
set -u

bindir=""
for d in /usr/lib/postgresql/*/bin; do
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then bindir="$d"; fi
done
if [ -z "$bindir" ]; then
  echo "SKIP: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin" >&2
  exit 77
fi

as_user=()
owner="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "SKIP: running as root and there is no 'postgres' user to run the server" >&2
    exit 77
  fi
  owner=postgres
  as_user=(runuser -u postgres --)
fi

base="$(mktemp -d /tmp/proctor-pg.XXXXXX)"
chmod 0755 "$base"
[ "$owner" = postgres ] && chown postgres: "$base"
port=$(( 20000 + RANDOM % 20000 ))

cleanup() {
  pg "$bindir/pg_ctl" -D "$base/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$base"
}
trap cleanup EXIT INT TERM

pg() { (cd "$base" && "${as_user[@]}" "$@"); }
if ! pg "$bindir/initdb" -D "$base/data" -U postgres --auth=trust -E UTF8 \
     --locale=C --no-sync >"$base/initdb.log" 2>&1; then
  cat "$base/initdb.log" >&2
  exit 1
fi
if ! pg "$bindir/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
     -o "-c listen_addresses='' -c unix_socket_directories='$base' -p $port -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB \
         -c jit=off -c max_connections=40" start >/dev/null; then
  cat "$base/server.log" >&2
  exit 1
fi

export PROCTOR_PG_HOST="$base" PROCTOR_PG_PORT="$port" PROCTOR_PG_ADMIN=postgres
"$@"
status=$?
if [ $status -ne 0 ] && [ -f "$base/server.log" ]; then
  tail -20 "$base/server.log" >&2
fi
exit $status
