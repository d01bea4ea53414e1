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
#
# Times are wall clock of the whole client command (agentctl or wg: process
# start, parsing, the socket round trips), both run from the host namespace:
# wg reaches wireguard-go's UAPI socket in /var/run/wireguard, agentctl the
# agent's socket; wireguard-go and the agent run in the namespace. The patch
# is also timed from request to Result on one open connection (wg_patchtime:
# what the web pays, it keeps its connection; agentctl's Hello makes the agent
# dump the device for its peer count). Medians of 3 for the no-op and the 1%
# change, of 20 for the patches; the cold writes run once.
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
agentctl=$build/tests/system/agentctl
nlcount=$build/tests/bench/wg_nlcount
patchtime=$build/tests/bench/wg_patchtime
sizes=${WIREGUI_BENCH_SIZES:-1000 10000}

skip() {
	echo "SKIP: $*"
	exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
command -v wireguard-go >/dev/null || skip "wireguard-go not installed"
command -v wg >/dev/null || skip "wg (wireguard-tools) not installed"
ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"
for f in "$agent" "$agentctl" "$nlcount" "$patchtime"; do
	[[ -x $f ]] || {
		echo "bench: $f is not built (ninja -C $build)" >&2
		exit 1
	}
done

umask 077
T=$(mktemp -d /tmp/wiregui-bench.XXXXXX)
NS=wgbench-$$
ifbase=wgb$$
failed=0
agent_pid=
wggo_pids=()

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

# --- measuring -------------------------------------------------------------
# timeit VAR CMD...: run CMD (output to $T/cmd.out), VAR = wall time in ms
timeit() {
	local -n _ms=$1
	shift
	local t0 t1 rc=0
	t0=${EPOCHREALTIME/./}
	"$@" >"$T/cmd.out" 2>&1 || rc=$?
	t1=${EPOCHREALTIME/./}
	_ms=$(((t1 - t0) / 1000)).$(printf '%03d' $(((t1 - t0) % 1000)))
	if ((rc != 0)); then
		echo "# '$*' failed ($rc):"
		sed -n '1,10s/^/#   /p' "$T/cmd.out"
	fi
	return "$rc"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }'; }
bench() { echo "bench: $1 $2 $3"; }

# --- interfaces and the agent -------------------------------------------------
# wggo_start IF: a fresh wireguard-go interface IF in the namespace
wggo_start() {
	local i
	# ip netns exec execs the program: $! is its pid (a shell function would fork)
	LOG_LEVEL=error ip netns exec "$NS" wireguard-go -f "$1" >>"$T/wireguard-go.log" 2>&1 &
	wggo_pids+=($!)
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
		[[ -S /var/run/wireguard/$1.sock ]] || return 0
		sleep 0.1
	done
}

SOCK=$T/agent.sock
ctl() { "$agentctl" -s "$SOCK" "$@"; }
# agent_start IF PORT: the agent on IF (already made by wireguard-go)
agent_start() {
	local i
	cat >"$T/agent.conf" <<-EOF
		[agent]
		socket = $SOCK
		frontend_user = root
		log_level = debug
		[wireguard]
		interface = $1
		listen_port = $2
		private_key_file = $T/agent.key
		address = 10.80.0.1/16, fd80::1/64
	EOF
	: >"$T/agent.log"
	ip netns exec "$NS" "$agent" -c "$T/agent.conf" >>"$T/agent.log" 2>&1 &
	agent_pid=$!
	for ((i = 0; i < 300; i++)); do
		if ctl hello >"$T/hello" 2>/dev/null; then
			grep -q '^backend=userspace$' "$T/hello" && return 0
			fail "the agent on $1 does not use the userspace backend: $(tr '\n' ' ' <"$T/hello")"
			return 1
		fi
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "the agent did not start: $(tail -n 5 "$T/agent.log")"
	return 1
}
agent_stop() {
	kill -TERM "$agent_pid" 2>/dev/null
	wait "$agent_pid" 2>/dev/null
	agent_pid=
}

# --- peer sets ------------------------------------------------------------------
# wg config of a peer file: [Interface] with key and port, then the peers
to_wgconf() { # PEERFILE KEYFILE PORT
	awk -v key="$(cat "$2")" -v port="$3" '
	BEGIN { print "[Interface]"; print "PrivateKey = " key; print "ListenPort = " port }
	NF {
		print ""; print "[Peer]"; print "PublicKey = " $1
		for (i = 2; i <= NF; i++) {
			if ($i ~ /^psk=/) print "PresharedKey = " substr($i, 5)
			else if ($i ~ /^allowed=/) { a = substr($i, 9); gsub(/,/, ", ", a); print "AllowedIPs = " a }
			else if ($i ~ /^keepalive=/ && substr($i, 11) + 0 > 0) print "PersistentKeepalive = " substr($i, 11)
		}
	}' "$1"
}
# canonical peers: "PUBKEY PSK ALLOWED(sorted) KEEPALIVE", sorted
AWK_SORTLIST='
function sortlist(s,   a, n, i, j, t, r) {
	n = split(s, a, ",")
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--)
			a[j + 1] = a[j]
		a[j + 1] = t
	}
	r = a[1]
	for (i = 2; i <= n; i++)
		r = r "," a[i]
	return r
}'
canon_peers() {
	awk "$AWK_SORTLIST"'
	NF {
		psk = "(none)"; ka = "off"; al = "(none)"
		for (i = 2; i <= NF; i++) {
			if ($i ~ /^psk=/) psk = substr($i, 5)
			else if ($i ~ /^keepalive=/) { ka = substr($i, 11); if (ka == 0) ka = "off" }
			else if ($i ~ /^allowed=/) al = sortlist(substr($i, 9))
		}
		print $1, psk, al, ka
	}' "$1" | sort
}
canon_dump() { # IF
	wg show "$1" dump | awk "$AWK_SORTLIST"'
	NR > 1 { print $1, $2, ($4 == "(none)" ? $4 : sortlist($4)), $8 }' | sort
}
check_dump() { # WHAT IF PEERFILE
	canon_peers "$3" >"$T/want"
	canon_dump "$2" >"$T/have"
	cmp -s "$T/want" "$T/have" ||
		fail "$1: $2 has $(wc -l <"$T/have") peers, not the $(wc -l <"$T/want") desired ($(diff "$T/want" "$T/have" | wc -l) diff lines)"
}
# wg show dump with the peers sorted (wireguard-go lists them in map order)
dump_sorted() { # IF
	wg show "$1" dump | awk 'NR == 1 { print; next } { print | "sort" }'
}
# peers written by the sync of generation GEN, from the agent's log
written() { # GEN
	sed -n "s/.*peers sync generation $1: \([0-9]*\) added, \([0-9]*\) changed, \([0-9]*\) removed.*/\1 \2 \3/p" \
		"$T/agent.log" | tail -n 1 | awk '{ print $1 + $2 + $3 }'
}

# Under timeit (which sends the output to $T/cmd.out): no subshell in the
# measured time.
sync_ok() { # GEN FILE
	ctl sync "$1" "$2" && [[ $(<"$T/cmd.out") == ok* ]]
}

# --- one size -----------------------------------------------------------------
run_size() {
	local n=$1 tag k=$(($1 / 100)) i gen=0
	local t_cold t_setconf t_set_all t_noop t_sync t_1pct t_sync1 t tmp line
	local t_patch t_unpatch t_patch_proc
	local -a a b
	tag=$n
	((n % 1000 == 0)) && tag=$((n / 1000))k
	((k > 0)) || k=1
	echo "# $n peers"

	"$agentctl" genpeers "$n" 10.80.0.0/16 fd80::/64 1 >"$T/p0"
	# 1%: the first k peers replaced by k others
	{
		sed -n "$((k + 1)),\$p" "$T/p0"
		"$agentctl" genpeers "$k" 10.80.128.0/17 fd80:0:0:0:1::/80 2
	} >"$T/p1"
	"$agentctl" genpeers 20 10.80.200.0/24 fd80:0:0:0:2::/80 3 >"$T/patchpeers"
	wg genkey >"$T/anchor.key"
	to_wgconf "$T/p0" "$T/anchor.key" 51900 >"$T/c0"
	to_wgconf "$T/p1" "$T/anchor.key" 51900 >"$T/c1"

	# wireguard-tools
	local A=$ifbase${tag}a C=$ifbase${tag}c
	wggo_start "$A" || return 1
	timeit t_setconf wg setconf "$A" "$T/c0" || fail "wg setconf"
	check_dump "wg setconf" "$A" "$T/p0"
	a=()
	for i in 1 2 3; do
		timeit t wg syncconf "$A" "$T/c0" || fail "wg syncconf"
		a+=("$t")
	done
	t_sync=$(median "${a[@]}")
	a=()
	for i in 1 2 3; do
		timeit t wg syncconf "$A" "$T/c1" || fail "wg syncconf (1%)"
		a+=("$t")
		timeit tmp wg syncconf "$A" "$T/c0" || fail "wg syncconf (1% back)"
		a+=("$tmp")
	done
	t_sync1=$(median "${a[@]}")
	check_dump "wg syncconf (1%)" "$A" "$T/p0"
	wggo_stop "$A"

	# one wg set process per peer, PSKs in files made beforehand
	wggo_start "$C" || return 1
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
	timeit t_set_all wgset_all || fail "wg set per peer"
	check_dump "wg set per peer" "$C" "$T/p0"
	wggo_stop "$C"
	rm -rf "$T/psk"

	# the agent
	local B=$ifbase${tag}b
	wggo_start "$B" || return 1
	agent_start "$B" 51901 || return 1
	gen=$((gen + 1))
	timeit t_cold sync_ok "$gen" "$T/p0" || fail "agent cold full sync"
	check_dump "cold full sync" "$B" "$T/p0"
	a=()
	b=()
	for i in 1 2 3; do
		dump_sorted "$B" >"$T/before"
		gen=$((gen + 1))
		timeit t sync_ok "$gen" "$T/p0" || fail "agent no-op full sync"
		a+=("$t")
		dump_sorted "$B" >"$T/after"
		cmp -s "$T/before" "$T/after" || fail "no-op full sync changed wg show dump"
		b+=("$(written "$gen")")
	done
	t_noop=$(median "${a[@]}")
	a=()
	for i in 1 2 3; do
		gen=$((gen + 1))
		timeit t sync_ok "$gen" "$T/p1" || fail "agent 1% full sync"
		a+=("$t")
		check_dump "1% full sync" "$B" "$T/p1"
		gen=$((gen + 1))
		timeit tmp sync_ok "$gen" "$T/p0" || fail "agent 1% full sync back"
		a+=("$tmp")
	done
	t_1pct=$(median "${a[@]}")
	# the peers a 1% sync wrote: k removed + k added
	local w1=$(($(written $((gen - 1))) + 0))
	# one-peer patches: 20 upserts then 20 removals on one connection, and
	# the same upserts with one agentctl process each (Hello, its dump, patch)
	"$patchtime" "$SOCK" "$T/patchpeers" >"$T/patchtimes" || fail "wg_patchtime"
	check_dump "one-peer patches added and removed" "$B" "$T/p0"
	mapfile -t a < <(awk '$1 == "upsert" { print $2 }' "$T/patchtimes")
	t_patch=$(median "${a[@]}")
	mapfile -t a < <(awk '$1 == "remove" { print $2 }' "$T/patchtimes")
	t_unpatch=$(median "${a[@]}")
	a=()
	while read -r line; do
		echo "+ $line" >"$T/patch"
		timeit t ctl patch "$T/patch" || fail "agentctl one-peer patch"
		a+=("$t")
	done <"$T/patchpeers"
	t_patch_proc=$(median "${a[@]}")
	cat "$T/p0" "$T/patchpeers" >"$T/p0+"
	check_dump "agentctl one-peer patches" "$B" "$T/p0+"
	agent_stop
	wggo_stop "$B"

	local noop_written=0 x
	for x in "${b[@]}"; do
		[[ -n $x ]] || {
			fail "the agent's log has no 'peers sync generation N: ...' line for a no-op"
			x=0
		}
		noop_written=$((noop_written + x))
	done
	((noop_written == 0)) || fail "no-op full syncs wrote $noop_written peers (agent log)"

	local per_peer
	per_peer=$(awk -v t="$t_set_all" -v n="$n" 'BEGIN { printf "%.3f\n", t / n }')
	bench "cold_sync_$tag" "$t_cold" ms
	bench "wg_setconf_cold_$tag" "$t_setconf" ms
	echo "ratio: cold_sync_vs_wg_setconf_$tag $(ratio "$t_cold" "$t_setconf")"
	bench "wg_set_all_$tag" "$t_set_all" ms
	bench "wg_set_per_peer_$tag" "$per_peer" ms
	echo "ratio: cold_sync_vs_wg_set_all_$tag $(ratio "$t_cold" "$t_set_all")"
	bench "noop_sync_$tag" "$t_noop" ms
	bench "noop_sync_peers_written_$tag" "$noop_written" peers
	bench "wg_syncconf_noop_$tag" "$t_sync" ms
	echo "ratio: noop_sync_vs_wg_syncconf_$tag $(ratio "$t_noop" "$t_sync")"
	bench "change_1pct_sync_$tag" "$t_1pct" ms
	bench "change_1pct_peers_written_$tag" "$w1" peers
	bench "wg_syncconf_1pct_$tag" "$t_sync1" ms
	echo "ratio: change_1pct_sync_vs_wg_syncconf_$tag $(ratio "$t_1pct" "$t_sync1")"
	bench "patch_one_peer_$tag" "$t_patch" ms
	bench "patch_remove_one_peer_$tag" "$t_unpatch" ms
	bench "patch_one_peer_agentctl_$tag" "$t_patch_proc" ms
	echo "ratio: patch_one_peer_vs_wg_set_$tag $(ratio "$t_patch" "$per_peer")"
	echo "ratio: patch_one_peer_agentctl_vs_wg_set_$tag $(ratio "$t_patch_proc" "$per_peer")"
}

for n in $sizes; do
	run_size "$n" || fail "$n peers: setup"
done
# shellcheck disable=SC2086 # one argument per size
"$nlcount" $sizes || fail "wg_nlcount"
echo "# $failed check(s) failed"
((failed == 0))
