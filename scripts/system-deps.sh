#!/bin/sh
# Installs the real servers from Debian's packages that the tests and benchmarks run on loopback
# (nginx, tinyproxy, redis-server, wrk), when they are missing and this user may install them.
# Without them the tests that need them skip with the binary's name (and fail under CI=true).
set -u
need=""
for pair in nginx:nginx-light tinyproxy:tinyproxy redis-server:redis-server wrk:wrk curl:curl; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need="$need $pkg"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "system-deps: missing$need; install them with apt-get to run every test" >&2; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing$need and no apt-get here" >&2; exit 0
fi
echo "system-deps: installing$need"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
