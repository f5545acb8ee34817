#!/usr/bin/env bash
# What the deployment tests need from Debian: the servers the distributed deployment tests start
# (tests/deployment/cluster.py), PostgreSQL and Redis, and the browser that drives Airflow's UI in
# tests/deployment/test_connection_form.py, chromium (Playwright drives it; it never downloads a browser);
# and openssl, whose `openssl rehash` stores the throw-away CA of tests/network/test_ca_directories.py as a
# hashed directory (Debian's ca-certificates depends on it, so it is nearly always there).
# As root (CI), install whichever is missing; otherwise say what to install and fail.
# Called by scripts/test_legs.py before the Airflow 3.3 leg; safe to run again (does nothing when present).
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" > /dev/null || command -v postgres > /dev/null || missing+=(postgresql)
command -v redis-server > /dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v openssl > /dev/null || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "The tests need PostgreSQL and Redis servers, the chromium browser and openssl; missing: ${missing[*]}." >&2
    echo "Install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The packages' own services are never used: the tests start their own servers on free ports.
# (chromium pulls in fonts and libraries; nothing of it runs until a test launches it headless.)
apt-get install -y -qq "${missing[@]}" > /dev/null
