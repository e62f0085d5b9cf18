#!/usr/bin/env bash
# A real S3 server for tests: Debian's Ceph (one monitor, one OSD on memstore, radosgw) on 127.0.0.1:7480,
# in memory, inside a network namespace of its own that has only loopback (tests send traffic only there).
#
#   scripts/ceph-s3.sh run CMD [ARGS...]
#
# makes a namespace (unshare -n, as root), starts Ceph in it (about 12 s), runs CMD there with
#   PARLEY_S3_URL   s3://<bucket>?endpoint=http://127.0.0.1:7480&region=us-east-1&forcePathStyle=true&accessKeyId=...&secretAccessKey=...
#                   (the bucket is named; CMD creates it)
#   PARLEY_CEPH_DIR the cluster's folder (ceph.conf, run/*.pid, log/), for tests that stop and restart radosgw
# stops Ceph, deletes its folder and exits with CMD's status. Needs `apt-get install -y radosgw ceph-mon
# ceph-osd` (about 30 s; .ci/run installs them). Exit status 3: Ceph is not installed or would not start.
#
# `scripts/ceph-s3.sh start-radosgw` (inside the namespace, with PARLEY_CEPH_DIR) starts radosgw again
# after a test stopped it, and waits until it answers.
set -euo pipefail

ACCESS_KEY=PARLEYTESTACCESSKEY
SECRET_KEY=parley-test-secret-key-0123456789

wait_for_rgw() {
  for _ in $(seq 1 120); do
    (exec 3<>/dev/tcp/127.0.0.1/7480) 2>/dev/null && return 0
    sleep 0.25
  done
  echo "ceph-s3: radosgw did not answer on 127.0.0.1:7480" >&2
  return 1
}

start_ceph() {
  local d=$1 fsid osd_uuid
  mkdir -p "$d"/{run,log,mon,osd/ceph-0,rgw}
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$d/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:6789
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
ms bind ipv6 = false
ms bind msgr2 = false
run dir = $d/run
admin socket = $d/run/\$name.asok
pid file = $d/run/\$name.pid
log file = $d/log/\$name.log
keyring = $d/keyring
mon data = $d/mon/\$cluster-\$id
osd data = $d/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 3221225472
osd crush chooseleaf type = 0
# The OSD's own start-up updates of the CRUSH map are refused on this one-node cluster (its commands
# carry no cluster fsid): the OSD is placed by hand below instead.
osd class update on start = false
osd crush update on start = false
[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:7480
rgw data = $d/rgw
CONF
  local c=(-c "$d/ceph.conf")
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --add a 127.0.0.1:6789 --fsid "$fsid" "$d/monmap" >/dev/null
  ceph-mon "${c[@]}" --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring"
  ceph-mon "${c[@]}" -i a
  ceph-osd "${c[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>>"$d/log/mkfs.log"
  ceph "${c[@]}" osd new "$osd_uuid" >/dev/null
  ceph "${c[@]}" osd crush add osd.0 1 root=default host=localhost >/dev/null 2>&1
  ceph-osd "${c[@]}" -i 0 2>>"$d/log/osd-stderr.log"
  radosgw "${c[@]}" -n client.rgw.gw
  wait_for_rgw
  radosgw-admin "${c[@]}" user create --uid=parley --display-name=parley --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
}

stop_ceph() {
  # Killed outright: the cluster is in memory and its folder is deleted next (a TERM makes the memstore
  # OSD write its objects out first, which takes seconds).
  local d=$1 n pids=()
  for n in client.rgw.gw osd.0 mon.a; do
    [ -f "$d/run/$n.pid" ] && pids+=("$(cat "$d/run/$n.pid")")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -9 "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 20); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.25
  done
}

case "${1:-}" in
run)
  shift
  [ $# -gt 0 ] || { echo "usage: scripts/ceph-s3.sh run CMD [ARGS...]" >&2; exit 2; }
  for tool in ceph-mon ceph-osd radosgw radosgw-admin unshare ip; do
    command -v "$tool" >/dev/null || { echo "ceph-s3: $tool is not installed (apt-get install -y radosgw ceph-mon ceph-osd)" >&2; exit 3; }
  done
  if [ "${PARLEY_CEPH_NETNS:-}" != 1 ]; then
    # Into a namespace of our own, with loopback only: nothing inside reaches other hosts.
    exec unshare -n env PARLEY_CEPH_NETNS=1 "$0" run "$@"
  fi
  ip link set lo up
  dir=$(mktemp -d /tmp/parley-ceph-XXXXXX)
  mkdir -p "$dir/log"
  trap 'stop_ceph "$dir"; rm -rf "$dir"' EXIT
  started=$EPOCHREALTIME
  if ! start_ceph "$dir" >"$dir/log/start.log" 2>&1; then
    cat "$dir/log/start.log" >&2
    echo "ceph-s3: Ceph did not start" >&2
    exit 3
  fi
  echo "ceph-s3: radosgw up in $(LC_NUMERIC=C awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
  export PARLEY_CEPH_DIR=$dir
  export PARLEY_S3_URL="s3://parley-test-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')?endpoint=http://127.0.0.1:7480&region=us-east-1&forcePathStyle=true&accessKeyId=$ACCESS_KEY&secretAccessKey=$SECRET_KEY"
  # In the background, so that a TERM (a test runner's timeout) stops it and then Ceph (the EXIT trap).
  "$@" &
  child=$!
  trap 'kill "$child" 2>/dev/null || true; exit 143' TERM INT
  status=0
  wait "$child" || status=$?
  exit "$status"
  ;;
start-radosgw)
  : "${PARLEY_CEPH_DIR:?start-radosgw needs PARLEY_CEPH_DIR}"
  radosgw -c "$PARLEY_CEPH_DIR/ceph.conf" -n client.rgw.gw
  wait_for_rgw
  ;;
*)
  echo "usage: scripts/ceph-s3.sh run CMD [ARGS...] | start-radosgw" >&2
  exit 2
  ;;
esac
