#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Benchmark: the agent's peer writes against wireguard-tools, on wireguard-go
# in a network namespace, for 1k and 10k peers (each with a PSK, one IPv4 /32
# and one IPv6 /128: agentctl genpeers), all measured in this one run:
#
#   cold full sync (fresh interface)   vs  wg setconf (fresh interface)
#   no-op full sync                    vs  wg syncconf with the same config
#   full sync changing 1% of the peers vs  wg syncconf with the same change
#   one-peer patch                     vs  one `wg set` process per peer
#                                          (N of them: total and per peer)
#
# and the kernel backend's netlink messages for those peer sets (wg_nlcount).
# tests/bench/wg_kernel.sh makes the same comparisons on the kernel backend.
#
# What is timed (milliseconds, wall clock):
#   ours (cold_sync, noop_sync, change_1pct_sync, patch_one_peer): what the
#     web waits for. It keeps one connection open and said Hello long ago, so
#     a sync is timed from sending PeersSyncBegin to PeersSyncEnd's Result
#     (agentctl -T: encoding and sending the batches, the agent validating
#     them, dumping the device, diffing and writing the difference), a patch
#     from sending PeersPatch to its Result (agentctl patcheach). Not counted:
#     reading the peer file, connecting, the Hello (which makes the agent dump
#     the device to report its peer count).
#   ours as a command (*_agentctl): the whole agentctl process, Hello and
#     its dump included: what a shell script driving the agent would pay.
#   the anchors (wg_setconf, wg_syncconf, wg_set): whole `wg` processes (start,
#     reading and parsing the config file, the UAPI round trips), as their
#     users run them.
# Both clients run in the host namespace: wg reaches wireguard-go's UAPI
# socket in /var/run/wireguard, agentctl the agent's socket; wireguard-go and
# the agent run in the namespace. Medians of 3 for the cold writes (each on
# a new interface), of 5 for the no-op, of 6 (3 there, 3 back) for the 1%
# change, of 20 for the patches.
# Ours and the anchor take turns, each on an interface of its own.
#
# CPU split (*_cpu_*, ms of CPU time over the same span): "client" is
# agentctl (ours) or wg (the anchors), "agent" the agent (all its work, the
# kernel's on its behalf included), "backend" wireguard-go (all threads; it
# answers a dump with the whole text at once, and parses and applies writes).
#
# Prints "bench: NAME VALUE UNIT" and "ratio: NAME VALUE" (ours / anchor), and
# fails (exit 1) when a check does not hold: the dump after each sync is the
# desired set, and the no-op sync writes nothing (the dump is the same before
# and after, and the agent's log says 0 added, 0 changed, 0 removed).
#
# Root only; exit 77 (skip) without ip netns or wireguard-go.
# Env: WIREGUI_BENCH_SIZES (default "1000 10000"), WIREGUI_BUILD_DIR.
set -uo pipefail
export LC_ALL=C WG_COLOR_MODE=never

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
agent=$build/agent/wiregui-agent
AGENTCTL=$build/tests/system/agentctl
nlcount=$build/tests/bench/wg_nlcount
sizes=${WIREGUI_BENCH_SIZES:-1000 10000}

skip() {
	echo "SKIP: $*"
	exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
command -v wireguard-go >/dev/null || skip "wireguard-go not installed"
command -v wg >/dev/null || skip "wg (wireguard-tools) not installed"
ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"
for f in "$agent" "$AGENTCTL" "$nlcount"; do
	[[ -x $f ]] || {
		echo "bench: $f is not built (ninja -C $build)" >&2
		exit 1
	}
done

umask 077
T=$(mktemp -d /tmp/wiregui-bench.XXXXXX)
SOCK=$T/agent.sock
AGENT_LOG=$T/agent.log
CPU_PIDS=
NS=wgbench-$$
ifbase=wgb$$
failed=0
agent_pid=
wggo_pids=()
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$src/tests/bench/lib.sh"

cleanup() {
	if [[ -n $agent_pid ]]; then
		kill -TERM "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
	fi
	local link pid
	for link in $(ip -n "$NS" -o link show 2>/dev/null | awk -F': ' '{ print $2 }'); do
		[[ $link == "$ifbase"* ]] && ip -n "$NS" link del "$link" 2>/dev/null
	done
	for pid in "${wggo_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	ip netns del "$NS" 2>/dev/null
	if ((failed == 0)); then
		rm -rf "$T"
	else
		echo "# files kept in $T"
	fi
}
trap cleanup EXIT
trap "exit 143" TERM
trap "exit 130" INT
trap "exit 141" PIPE

fail() {
	echo "FAILED: $*"
	failed=$((failed + 1))
}

ip netns add "$NS" || {
	echo "cannot create netns $NS"
	exit 1
}
ip -n "$NS" link set lo up

# --- interfaces and the agent -------------------------------------------------
# wggo_start IF: a fresh wireguard-go interface IF in the namespace; its pid
# in WGGO_PID
wggo_start() {
	local i
	# ip netns exec execs the program: $! is its pid (a shell function would fork)
	LOG_LEVEL=error ip netns exec "$NS" wireguard-go -f "$1" >>"$T/wireguard-go.log" 2>&1 &
	WGGO_PID=$!
	wggo_pids+=("$WGGO_PID")
	for ((i = 0; i < 100; i++)); do
		[[ -S /var/run/wireguard/$1.sock ]] && return 0
		sleep 0.1
	done
	fail "wireguard-go $1 did not create its socket"
	return 1
}
wggo_stop() { # IF: deleting the link ends wireguard-go, which frees its port
	local i
	ip -n "$NS" link del "$1" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		[[ -S /var/run/wireguard/$1.sock ]] || break
		sleep 0.1
	done
}

# agent_start IF PORT: the agent on IF (already made by wireguard-go)
agent_start() {
	agent_conf "$1" "$2" "$T/agent.key" >"$T/agent.conf"
	: >"$AGENT_LOG"
	ip netns exec "$NS" "$agent" -c "$T/agent.conf" >>"$AGENT_LOG" 2>&1 &
	agent_pid=$!
	agent_wait "$1" userspace 300 0.1
}

# --- one size -----------------------------------------------------------------
# Ours and the anchors take turns (anchor, ours, anchor, ours...) on two
# interfaces that both stay, so that a slower spell of the machine falls on
# both sides alike.
run_size() {
	local n=$1 tag i gen=0 t noop_written=0 w1 pid_a pid_b
	tag=$(size_tag "$n")
	M=()
	echo "# $n peers"
	make_sets "$n"
	local A B C=$ifbase${tag}c
	anchor() { CPU_PIDS="backend=$pid_a"; }
	ours() { CPU_PIDS="agent=$agent_pid backend=$pid_b"; }

	# cold, three times: wg setconf on a new A, the agent's first sync on a
	# new B (and a new agent); the last A and B stay for what follows
	for i in 1 2 3; do
		[[ -z ${A:-} ]] || wggo_stop "$A"
		A=$ifbase${tag}a$i
		wggo_start "$A" || return 1
		pid_a=$WGGO_PID
		anchor
		timeit t wg setconf "$A" "$T/c0" || fail "wg setconf"
		rec_anchor wg_setconf "$t"
		check_dump "wg setconf" "$A" "$T/p0"
		if [[ -n ${B:-} ]]; then
			agent_stop
			wggo_stop "$B"
		fi
		B=$ifbase${tag}b$i
		wggo_start "$B" || return 1
		pid_b=$WGGO_PID
		agent_start "$B" 51901 || return 1
		ours
		gen=1
		ours_sync "$gen" "$T/p0" || fail "agent cold full sync"
		rec_ours cold_sync
		check_dump "cold full sync" "$B" "$T/p0"
	done

	# no-op: wg syncconf with the same config, a full sync with the same peers
	for i in 1 2 3 4 5; do
		anchor
		timeit t wg syncconf "$A" "$T/c0" || fail "wg syncconf"
		rec_anchor wg_syncconf "$t"
		dump_sorted "$B" >"$T/before"
		gen=$((gen + 1))
		ours
		ours_sync "$gen" "$T/p0" || fail "agent no-op full sync"
		rec_ours noop_sync
		dump_sorted "$B" >"$T/after"
		cmp -s "$T/before" "$T/after" || fail "no-op full sync changed wg show dump"
		noop_count noop_written "$gen"
	done
	((noop_written == 0)) || fail "no-op full syncs wrote $noop_written peers (agent log)"

	# 1%: to the changed set and back, three times each side
	for i in 1 2 3; do
		anchor
		timeit t wg syncconf "$A" "$T/c1" || fail "wg syncconf (1%)"
		rec_anchor wg_syncconf_1pct "$t"
		gen=$((gen + 1))
		ours
		ours_sync "$gen" "$T/p1" || fail "agent 1% full sync"
		rec_ours change_1pct_sync
		if ((i == 1)); then
			check_dump "wg syncconf (1%)" "$A" "$T/p1"
			check_dump "1% full sync" "$B" "$T/p1"
		fi
		anchor
		timeit t wg syncconf "$A" "$T/c0" || fail "wg syncconf (1% back)"
		rec_anchor wg_syncconf_1pct "$t"
		gen=$((gen + 1))
		ours
		ours_sync "$gen" "$T/p0" || fail "agent 1% full sync back"
		rec_ours change_1pct_sync
	done
	check_dump "wg syncconf (1% and back)" "$A" "$T/p0"
	# the peers a 1% sync wrote: K removed + K added
	w1=$(($(written $((gen - 1))) + 0))

	# one-peer patches: 20 upserts then 20 removals on one connection, and
	# the same upserts with one agentctl process each (Hello, its dump, patch)
	ours_patches "$B"
	agent_stop
	wggo_stop "$B"
	wggo_stop "$A"

	# one wg set process per peer onto a fresh interface, PSKs in files
	# made beforehand
	wggo_start "$C" || return 1
	CPU_PIDS="backend=$WGGO_PID"
	mkdir -p "$T/psk"
	awk -v d="$T/psk" '{ for (i = 2; i <= NF; i++) if ($i ~ /^psk=/) print substr($i, 5) > (d "/" NR) }' "$T/p0"
	awk '{ a = ""; for (i = 2; i <= NF; i++) if ($i ~ /^allowed=/) a = substr($i, 9); print $1, a }' \
		"$T/p0" >"$T/setargs"
	wgset_all() {
		local key al i=0
		while read -r key al; do
			i=$((i + 1))
			wg set "$C" peer "$key" preshared-key "$T/psk/$i" allowed-ips "$al" || return 1
		done <"$T/setargs"
	}
	timeit t wgset_all || fail "wg set per peer"
	rec wg_set_all "$t"
	check_dump "wg set per peer" "$C" "$T/p0"
	wggo_stop "$C"
	rm -rf "$T/psk"
	CPU_PIDS=''

	local per_peer cpu
	per_peer=$(awk -v t="$(med wg_set_all)" -v n="$n" 'BEGIN { printf "%.3f\n", t / n }')
	print_op() { # OURS_NAME BENCH_NAME: ours, as a command, and the CPU split
		bench "${2}_$tag" "$(med "$1")" ms
		bench "${2}_agentctl_$tag" "$(med "${1}_agentctl")" ms
		for cpu in client agent backend; do
			bench "${2}_cpu_${cpu}_$tag" "$(med "${1}_cpu_$cpu")" ms
		done
	}
	print_anchor() { # NAME BENCH_NAME
		bench "${2}_$tag" "$(med "$1")" ms
		for cpu in client backend; do
			bench "${2}_cpu_${cpu}_$tag" "$(med "${1}_cpu_$cpu")" ms
		done
	}
	print_op cold_sync cold_sync
	print_anchor wg_setconf wg_setconf_cold
	echo "ratio: cold_sync_vs_wg_setconf_$tag $(ratio "$(med cold_sync)" "$(med wg_setconf)")"
	bench "wg_set_all_$tag" "$(med wg_set_all)" ms
	bench "wg_set_per_peer_$tag" "$per_peer" ms
	echo "ratio: cold_sync_vs_wg_set_all_$tag $(ratio "$(med cold_sync)" "$(med wg_set_all)")"
	print_op noop_sync noop_sync
	bench "noop_sync_peers_written_$tag" "$noop_written" peers
	print_anchor wg_syncconf wg_syncconf_noop
	echo "ratio: noop_sync_vs_wg_syncconf_$tag $(ratio "$(med noop_sync)" "$(med wg_syncconf)")"
	echo "ratio: noop_sync_agentctl_vs_wg_syncconf_$tag $(ratio "$(med noop_sync_agentctl)" "$(med wg_syncconf)")"
	print_op change_1pct_sync change_1pct_sync
	bench "change_1pct_peers_written_$tag" "$w1" peers
	print_anchor wg_syncconf_1pct wg_syncconf_1pct
	echo "ratio: change_1pct_sync_vs_wg_syncconf_$tag $(ratio "$(med change_1pct_sync)" "$(med wg_syncconf_1pct)")"
	bench "patch_one_peer_$tag" "$(med patch)" ms
	bench "patch_remove_one_peer_$tag" "$(med unpatch)" ms
	bench "patch_one_peer_agentctl_$tag" "$(med patch_agentctl)" ms
	echo "ratio: patch_one_peer_vs_wg_set_$tag $(ratio "$(med patch)" "$per_peer")"
	echo "ratio: patch_one_peer_agentctl_vs_wg_set_$tag $(ratio "$(med patch_agentctl)" "$per_peer")"
}

for n in $sizes; do
	run_size "$n" || fail "$n peers: setup"
done
# shellcheck disable=SC2086 # one argument per size
"$nlcount" $sizes || fail "wg_nlcount"
echo "# $failed check(s) failed"
((failed == 0))
