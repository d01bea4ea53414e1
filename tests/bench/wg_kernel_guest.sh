#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The guest half of tests/bench/wg_kernel.sh (which says what is measured):
# runs under bash in the VM, with /bench/lib.sh and /bench/peers.sh,
# wiregui-agent, agentctl and wg in /opt, and per size N a directory /bench/N holding
# the peer sets (p0, p1, patchpeers) and the wg configs (c0, c1, anchor.key)
# that the host made with make_sets. Prints "bench:"/"ratio:" lines, "# "
# notes and "FAILED: " lines; exits with the number of failed checks.
set -uo pipefail
export LC_ALL=C WG_COLOR_MODE=never
# bash's process substitution opens /dev/fd/N, which devtmpfs lacks
[[ -e /dev/fd ]] || ln -s /proc/self/fd /dev/fd

# Set here, read by lib.sh:
# shellcheck disable=SC2034

AGENTCTL=/opt/agentctl
TESTS_LIB=/bench
SOCK=/run/wiregui/agent.sock
AGENT_LOG=/tmp/agent.log
CPU_PIDS=
failed=0
agent_pid=
fail() {
	echo "FAILED: $*"
	failed=$((failed + 1))
}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. /bench/lib.sh

agent_start() { # IF PORT: the agent creates IF in the kernel
	mkdir -p /etc/wiregui /var/lib/wiregui-agent
	agent_conf "$1" "$2" /var/lib/wiregui-agent/private.key >/etc/wiregui/agent.conf
	: >"$AGENT_LOG"
	wiregui-agent -c /etc/wiregui/agent.conf >>"$AGENT_LOG" 2>&1 &
	agent_pid=$!
	agent_wait "$1" kernel 600 0.2 && CPU_PIDS="agent=$agent_pid"
}

# wg_set_each IF WHAT: one `wg set` process per peer of $T/patchpeers,
# upserting (WHAT=upsert) or removing them, each timed into M[wg_set_WHAT]
wg_set_each() {
	local key al psk i=0 t
	while read -r key psk al; do
		i=$((i + 1))
		if [[ $2 == upsert ]]; then
			echo "${psk#psk=}" >"$T/psk1"
			timeit t wg set "$1" peer "$key" preshared-key "$T/psk1" allowed-ips "${al#allowed=}" ||
				fail "wg set (upsert $i)"
		else
			timeit t wg set "$1" peer "$key" remove || fail "wg set (remove $i)"
		fi
		rec "wg_set_$2" "$t"
	done < <(awk '{ p = ""; a = ""; for (i = 2; i <= NF; i++) { if ($i ~ /^psk=/) p = $i; if ($i ~ /^allowed=/) a = $i } print $1, p, a }' "$T/patchpeers")
}

run_size() { # N
	local n=$1 tag i gen=0 t noop_written=0 w1 cpu
	T=/bench/$n
	tag=$(size_tag "$n")
	M=()
	echo "# $n peers"
	K=$((n / 100))
	((K > 0)) || K=1

	# Ours and the anchors take turns (anchor, ours, anchor, ours...) on two
	# interfaces, so that a slower spell of the machine falls on both sides.
	# The interfaces stay until the guest powers off: deleting one waits an
	# RCU grace period per peer (netif_napi_del), minutes for 10k emulated.
	local A=wgka$tag B=wgkb$tag

	# cold: wg setconf on a new A, the agent's first sync on the B it makes
	ip link add "$A" type wireguard || {
		fail "ip link add $A type wireguard"
		return 1
	}
	timeit t wg setconf "$A" "$T/c0" || fail "wg setconf"
	rec_anchor wg_setconf "$t"
	agent_start "$B" 51901 || return 1
	gen=$((gen + 1))
	ours_sync "$gen" "$T/p0" || fail "agent cold full sync"
	rec_ours cold_sync
	check_dump "wg setconf" "$A" "$T/p0"
	check_dump "cold full sync" "$B" "$T/p0"
	phase "cold syncs done"

	# no-op: every one is checked by the agent's count of peers written, the
	# first also by the dumps before and after (seconds each, emulated)
	wg show "$B" dump >"$T/before"
	for i in 1 2 3 4 5; do
		timeit t wg syncconf "$A" "$T/c0" || fail "wg syncconf"
		rec_anchor wg_syncconf "$t"
		gen=$((gen + 1))
		ours_sync "$gen" "$T/p0" || fail "agent no-op full sync"
		rec_ours noop_sync
		if ((i == 1)); then
			wg show "$B" dump >"$T/after"
			cmp -s "$T/before" "$T/after" || fail "no-op full sync changed wg show dump"
		fi
		noop_count noop_written "$gen"
	done
	((noop_written == 0)) || fail "no-op full syncs wrote $noop_written peers (agent log)"
	phase "no-op syncs done"

	# 1%: to the changed set and back, three times each side
	for i in 1 2 3; do
		timeit t wg syncconf "$A" "$T/c1" || fail "wg syncconf (1%)"
		rec_anchor wg_syncconf_1pct "$t"
		gen=$((gen + 1))
		ours_sync "$gen" "$T/p1" || fail "agent 1% full sync"
		rec_ours change_1pct_sync
		if ((i == 1)); then
			check_dump "wg syncconf (1%)" "$A" "$T/p1"
			check_dump "1% full sync" "$B" "$T/p1"
		fi
		timeit t wg syncconf "$A" "$T/c0" || fail "wg syncconf (1% back)"
		rec_anchor wg_syncconf_1pct "$t"
		gen=$((gen + 1))
		ours_sync "$gen" "$T/p0" || fail "agent 1% full sync back"
		rec_ours change_1pct_sync
	done
	w1=$(($(written $((gen - 1))) + 0))
	phase "1% syncs done"

	# one-peer patches: `wg set` per peer on A, then the agent's on B
	wg_set_each "$A" upsert
	check_dump "wg set per peer" "$A" "$T/p0+"
	wg_set_each "$A" remove
	check_dump "wg syncconf and wg set ... remove per peer" "$A" "$T/p0"
	ours_patches "$B"
	agent_stop
	# down, it frees its port for the next size's agent
	ip link set "$B" down
	phase "patches done"

	local p=kernel_
	print_op() { # NAME
		bench "$p${1}_$tag" "$(med "$1")" ms
		bench "$p${1}_agentctl_$tag" "$(med "${1}_agentctl")" ms
		for cpu in client agent agent_sys; do
			bench "$p${1}_cpu_${cpu}_$tag" "$(med "${1}_cpu_$cpu")" ms
		done
	}
	print_anchor() { # NAME BENCH_NAME
		bench "$p${2}_$tag" "$(med "$1")" ms
		bench "$p${2}_cpu_client_$tag" "$(med "${1}_cpu_client")" ms
		bench "$p${2}_cpu_client_sys_$tag" "$(med "${1}_cpu_client_sys")" ms
	}
	print_op cold_sync
	print_anchor wg_setconf wg_setconf_cold
	echo "ratio: ${p}cold_sync_vs_wg_setconf_$tag $(ratio "$(med cold_sync)" "$(med wg_setconf)")"
	print_op noop_sync
	bench "${p}noop_sync_peers_written_$tag" "$noop_written" peers
	print_anchor wg_syncconf wg_syncconf_noop
	echo "ratio: ${p}noop_sync_vs_wg_syncconf_$tag $(ratio "$(med noop_sync)" "$(med wg_syncconf)")"
	echo "ratio: ${p}noop_sync_agentctl_vs_wg_syncconf_$tag $(ratio "$(med noop_sync_agentctl)" "$(med wg_syncconf)")"
	print_op change_1pct_sync
	bench "${p}change_1pct_peers_written_$tag" "$w1" peers
	print_anchor wg_syncconf_1pct wg_syncconf_1pct
	echo "ratio: ${p}change_1pct_sync_vs_wg_syncconf_$tag $(ratio "$(med change_1pct_sync)" "$(med wg_syncconf_1pct)")"
	bench "${p}patch_one_peer_$tag" "$(med patch)" ms
	bench "${p}patch_remove_one_peer_$tag" "$(med unpatch)" ms
	bench "${p}patch_one_peer_agentctl_$tag" "$(med patch_agentctl)" ms
	bench "${p}wg_set_one_peer_$tag" "$(med wg_set_upsert)" ms
	bench "${p}wg_set_remove_one_peer_$tag" "$(med wg_set_remove)" ms
	echo "ratio: ${p}patch_one_peer_vs_wg_set_$tag $(ratio "$(med patch)" "$(med wg_set_upsert)")"
	echo "ratio: ${p}patch_remove_one_peer_vs_wg_set_$tag $(ratio "$(med unpatch)" "$(med wg_set_remove)")"
	echo "ratio: ${p}patch_one_peer_agentctl_vs_wg_set_$tag $(ratio "$(med patch_agentctl)" "$(med wg_set_upsert)")"
}

# phase NAME: how long the guest took so far, to see where the minutes go
phase() { echo "# $((SECONDS - run_start)) s: $1"; }
for n in $BENCH_SIZES; do
	run_start=$SECONDS
	run_size "$n" || fail "$n peers: setup"
	phase "$n peers done"
done
if ((failed > 0)); then
	echo "# agent log, last 30 lines:"
	tail -n 30 "$AGENT_LOG" | sed 's/^/#   /'
fi
exit "$failed"
