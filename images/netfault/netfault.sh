#!/bin/sh
# pgha-netfault: network faults inside one container's network namespace, run by
# failover-test in a helper container that shares it (--network container:<member>,
# NET_ADMIN only). Everything it adds lives in the chain PGHA-FAULT and the root qdisc
# of the interface to the cluster network, so that `clear` undoes all of it.
#
#   pgha-netfault hold SECONDS drop IP...          drop every packet to or from the IPs
#   pgha-netfault hold SECONDS lossy PERCENT RATE  drop PERCENT% of packets at random, both
#                                                  ways, and cap the egress at RATE (tc tbf)
#   pgha-netfault clear                            undo all of it (idempotent)
#   pgha-netfault show                             print what is in place
#
# hold applies the fault, prints "pgha-netfault: in place", and keeps it until it is
# stopped (SIGTERM) or SECONDS have passed, then undoes it: a fault whose pgha died
# lifts itself.
set -u
CHAIN=PGHA-FAULT
ipt() { iptables -w 5 "$@"; }

iface() {
	# The interface of the default route: the cluster network (the only one).
	ip -o route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i+1); exit }}'
}

clear_all() {
	while ipt -D INPUT -j "$CHAIN" 2>/dev/null; do :; done
	while ipt -D OUTPUT -j "$CHAIN" 2>/dev/null; do :; done
	ipt -F "$CHAIN" 2>/dev/null
	ipt -X "$CHAIN" 2>/dev/null
	dev=$(iface)
	if [ -n "$dev" ] && tc qdisc show dev "$dev" | grep -q '^qdisc tbf'; then
		tc qdisc del dev "$dev" root
	fi
	if ipt -n -L "$CHAIN" >/dev/null 2>&1; then
		echo "pgha-netfault: chain $CHAIN still present" >&2
		return 1
	fi
	return 0
}

new_chain() {
	clear_all || exit 1
	ipt -N "$CHAIN" || exit 1
	# Loopback stays: the node's own processes talk to each other over it.
	ipt -A "$CHAIN" -i lo -j RETURN
	ipt -A "$CHAIN" -o lo -j RETURN
}

apply() {
	kind=$1; shift
	case "$kind" in
	drop)
		new_chain
		for ip in "$@"; do
			ipt -A "$CHAIN" -s "$ip" -j DROP || return 1
			ipt -A "$CHAIN" -d "$ip" -j DROP || return 1
		done
		;;
	lossy)
		percent=$1 rate=$2
		new_chain
		prob=$(awk -v p="$percent" 'BEGIN { printf "%.4f", p / 100 }')
		ipt -A "$CHAIN" -m statistic --mode random --probability "$prob" -j DROP || return 1
		dev=$(iface)
		[ -n "$dev" ] || { echo "pgha-netfault: no default route" >&2; return 1; }
		tc qdisc add dev "$dev" root tbf rate "$rate" burst 32kbit latency 400ms || return 1
		;;
	*)
		echo "pgha-netfault: unknown fault $kind" >&2
		return 2
		;;
	esac
	ipt -I INPUT 1 -j "$CHAIN" || return 1
	ipt -I OUTPUT 1 -j "$CHAIN" || return 1
}

case "${1:-}" in
hold)
	seconds=$2; shift 2
	trap 'clear_all; echo "pgha-netfault: cleared"; exit 0' TERM INT
	if ! apply "$@"; then
		clear_all
		exit 1
	fi
	echo "pgha-netfault: in place"
	sleep "$seconds" &
	wait $!
	clear_all
	echo "pgha-netfault: cleared after ${seconds}s (deadline)"
	;;
clear)
	clear_all && echo "pgha-netfault: cleared"
	;;
show)
	ipt -S "$CHAIN" 2>/dev/null || echo "no chain $CHAIN"
	dev=$(iface)
	[ -n "$dev" ] && tc qdisc show dev "$dev"
	;;
*)
	echo "usage: pgha-netfault hold SECONDS drop IP... | hold SECONDS lossy PERCENT RATE | clear | show" >&2
	exit 2
	;;
esac
