#!/usr/bin/env bash
# The multi-machine recipe, on one Linux box: two network namespaces ("machines" A and B)
# joined by a veth pair with loopback-range addresses (127.0.1.1 and 127.0.1.2), one
# dtokd rank in each, rendezvous at A's address, Gloo bound to each side's veth
# (GLOO_SOCKET_IFNAME). On real machines run the same two commands with your addresses
# and interface names (docs/data_parallel.md). Needs root (ip netns) and a built dtokd.
# Usage: scripts/two_machines.sh OUT train|distill [options...]
#   e.g. scripts/two_machines.sh runs/two-machines train --model cnn_small --epochs 1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dtokd="${DTOKD:-$here/build/pipelines/dtokd}"
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
out="$1"; shift
[ "$(id -u)" = 0 ] || { echo "two_machines.sh: needs root (ip netns)" >&2; exit 1; }
a=dtokd-a b=dtokd-b port=29511
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add "$a"
ip netns add "$b"
ip link add veth-a netns "$a" type veth peer name veth-b netns "$b"
for side in a b; do
  ns="dtokd-$side" addr=$([ "$side" = a ] && echo 127.0.1.1 || echo 127.0.1.2)
  # 127/8 off the loopback device needs route_localnet.
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.veth-$side.route_localnet=1
  ip netns exec "$ns" ip addr add "$addr/24" dev "veth-$side"
  ip netns exec "$ns" ip link set "veth-$side" up
  ip netns exec "$ns" ip link set lo up
done
ip netns exec "$a" ip route get 127.0.1.2 | grep -q veth-a   # B is reached through the veth pair
rank() {  # side, then the dtokd subcommand and its options
  local side=$1 r=$([ "$1" = a ] && echo 0 || echo 1)
  shift
  ip netns exec "dtokd-$side" env RANK=$r LOCAL_RANK=0 WORLD_SIZE=2 LOCAL_WORLD_SIZE=1 \
    MASTER_ADDR=127.0.1.1 MASTER_PORT=$port GLOO_SOCKET_IFNAME=veth-$side \
    "$dtokd" --dist-timeout 60 "$@" --out "$out"
}
rank b "$@" --no-progress > "$out.rank1.log" 2>&1 &
pid_b=$!
status=0
rank a "$@" || status=$?
wait "$pid_b" || status=$?
stat() { ip netns exec "$a" cat "/sys/class/net/veth-a/statistics/$1"; }
echo "two_machines.sh: A's veth sent $(stat tx_bytes) bytes and received $(stat rx_bytes) bytes" >&2
[ "$status" = 0 ] && rm -f "$out.rank1.log" || cat "$out.rank1.log" >&2
exit "$status"
