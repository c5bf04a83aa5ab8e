#!/usr/bin/env bash
# Installs every Debian package proctor needs to build, test and run its shipped runtimes.
# Idempotent and non-interactive: packages already present are left alone, and apt-get update
# runs only when something is missing. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libuv1-dev libgit2-dev libseccomp-dev libjansson-dev libhttp-parser-dev
  libsqlite3-dev sqlite3 libssl-dev libpq-dev
  clang libclang-rt-14-dev
  python3 iproute2 procps curl
  postgresql
  libhiredis-dev redis-server
)
# Optional runtimes and benchmark peers: installed when the archive has them.
OPTIONAL=(golang-go bubblewrap wrk)

missing=()
for p in "${PACKAGES[@]}" "${OPTIONAL[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js: any install that provides /usr/bin/node will do (Debian's nodejs package by default).
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
required=()
for p in "${missing[@]}"; do
  case " ${OPTIONAL[*]} " in
    *" $p "*) $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null ||
                echo "setup: optional package $p not installed" ;;
    *) required+=("$p") ;;
  esac
done
if [ ${#required[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${required[@]}" >/dev/null
fi
echo "setup: done"
