#!/bin/sh
# Install the Debian packages the test-suite needs when they are missing: PostgreSQL, whose
# server binaries the store tests start from /usr/lib/postgresql/*/bin, Redis, whose server the
# queue and shared rate-limit tests start (redis-server), and Chromium, which the browser tests
# (tests/web) drive from /usr/bin/chromium through Playwright.
# Idempotent; prints nothing when everything is present. Installs only as root.
set -eu

missing=""
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing="$missing postgresql"
fi
if ! command -v redis-server >/dev/null 2>&1; then
    missing="$missing redis-server"
fi
if [ ! -x /usr/bin/chromium ]; then
    missing="$missing chromium"
fi

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages:$missing (run this script as root, or: sudo apt-get install$missing)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing packages:$missing, and apt-get is not available" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y -qq $missing >/dev/null
