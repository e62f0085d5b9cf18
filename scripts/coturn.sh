#!/usr/bin/env bash
# A loopback-only TURN relay (Debian's coturn) for development and the call tests, with REST-API credentials:
# the Parley server mints `<unix expiry>:<account>` / base64(HMAC-SHA1(secret, username)) from the same secret
# (docs/calls.md), so coturn needs no user database.
#
#   scripts/coturn.sh start   # starts turnserver in the background; prints its pid, port and the server flags
#   scripts/coturn.sh stop    # stops the one this script started (by its pid file)
#
# Settings (environment): PARLEY_TURN_PORT (default 3478), PARLEY_TURN_SECRET (default: a random one, printed),
# PARLEY_TURN_MIN_PORT / PARLEY_TURN_MAX_PORT (relay ports, default 49160-49200), PARLEY_TURN_DIR (pid and
# log files, default /tmp/parley-coturn-$PORT). It listens and relays on 127.0.0.1 only, without TLS.
# Install coturn first: apt-get install -y coturn.
set -euo pipefail

port=${PARLEY_TURN_PORT:-3478}
dir=${PARLEY_TURN_DIR:-/tmp/parley-coturn-$port}
pidfile=$dir/turnserver.pid
log=$dir/turnserver.log

case "${1:-}" in
  start)
    command -v turnserver >/dev/null || { echo "coturn.sh: turnserver not found (apt-get install -y coturn)" >&2; exit 1; }
    mkdir -p "$dir"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "coturn.sh: already running (pid $(cat "$pidfile"))" >&2
      exit 1
    fi
    secret=${PARLEY_TURN_SECRET:-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')}
    : >"$log"
    turnserver -n --no-cli --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$port" \
      --min-port="${PARLEY_TURN_MIN_PORT:-49160}" --max-port="${PARLEY_TURN_MAX_PORT:-49200}" \
      --use-auth-secret --static-auth-secret="$secret" --realm=parley.test \
      --allow-loopback-peers --no-tls --no-dtls --fingerprint --no-multicast-peers \
      --log-file="$log" --simple-log --pidfile="$dir/coturn-own.pid" --userdb="$dir/turndb" >/dev/null 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    # Ready once the UDP listener is open (at most 10 s).
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "coturn.sh: turnserver exited; its log:" >&2
        cat "$log" >&2
        rm -f "$pidfile"
        exit 1
      fi
      if ss -lun 2>/dev/null | grep -q "127.0.0.1:$port "; then break; fi
      sleep 0.1
    done
    echo "pid=$pid port=$port log=$log"
    echo "parley serve --turn-secret '$secret' --turn-url 'turn:127.0.0.1:$port?transport=udp'"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *)
    echo "usage: scripts/coturn.sh start|stop" >&2
    exit 2
    ;;
esac
