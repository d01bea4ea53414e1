#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# kill -9 of wiregui-agent in the middle of applying a 10k-peer full sync to
# wireguard-go, a restart, and a full sync of a different set: the interface
# ends with exactly the desired peers, and a repeat of that sync changes
# nothing. TAP output, root only.
# The kill is aimed at the middle of the write: half the time the agent took
# for the same sync earlier (measured, not assumed), corrected and retried when
# it lands before or after the write. Nothing is asserted about durations.
# Predicates run through check() and cleanup through trap: shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
agent_bin=$build/agent/wiregui-agent
agentctl_bin=$build/tests/system/agentctl
# shellcheck source=tests/lib/netns.sh
. "$src/tests/lib/netns.sh"
# shellcheck source=tests/lib/tap.sh
. "$src/tests/lib/tap.sh"
# shellcheck source=tests/lib/common.sh
. "$src/tests/lib/common.sh"
# shellcheck source=tests/lib/peers.sh
. "$src/tests/lib/peers.sh"

netns_require
export WG_COLOR_MODE=never

N=10000
id=$$
ns=wiregui-$id-kill
ifn=wgk${id}s
T=$(mktemp -d /tmp/wiregui-wg-kill.XXXXXX)
mkdir "$T/agent"
sock=$T/agent/agent.sock
last=
sync_pid=

cleanup() {
	if [[ -n $sync_pid ]]; then
		kill "$sync_pid" 2>/dev/null
		wait "$sync_pid" 2>/dev/null
	fi
	netns_cleanup
	test_scratch_done "$T"
}
test_traps

tap_diagnose() { netns_agent_diagnose; }

netns_agent_conf "$sock" "$ifn" "$T" "10.64.0.1/16, fd00:64::1/112" wiregui_test >"$T/agent.conf"

actl() { "$agentctl_bin" -s "$sock" "$@"; }
wg_n() { ip netns exec "$ns" wg "$@"; }
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

hello_is() { # KEY VALUE
	last="$1=$(actl hello 2>&1 | sed -n "s/^$1=//p")"
	[[ $last == "$1=$2" ]]
}
sync_ok() { # [-b N] GEN FILE
	last=$(actl -v "${@:1:$#-2}" sync "${@: -2}" 2>"$T/sync.trace")
	[[ $last == ok ]] || last+=$'\n'$(cat "$T/sync.trace")
	echo "# $(grep '< Result' "$T/sync.trace" | tail -n 1)"
	[[ $last == ok ]]
}
agent_start() {
	netns_agent_start "$ns" "$T/agent.conf" "$T/agent.log" "$sock"
}
peer_count() { wg_n show "$ifn" peers | wc -l; }

peers_are() { # FILE: the interface has exactly its peers, fields and all
	canon_peers "$1" >"$T/want"
	wg_n show "$ifn" dump | canon_dump >"$T/have"
	last="$(wc -l <"$T/want") wanted, $(wc -l <"$T/have") present"$'\n'$(diff "$T/want" "$T/have" | head -n 10)
	cmp -s "$T/want" "$T/have"
}
full_dump() { wg_n show "$ifn" dump | tail -n +2 | sort; }

# ---- the sets -------------------------------------------------------------------
# A: peers 0..9999 of seed 1. B: peers 5000..14999 of the same seed, so half
# of A stays; of that half, 2500 get a keepalive and 500 lose their PSK.
"$agentctl_bin" genpeers $N 10.64.0.0/16 fd00:64::/112 1 >"$T/a.peers"
"$agentctl_bin" genpeers $((N * 3 / 2)) 10.64.0.0/16 fd00:64::/112 1 | tail -n $N |
	awk 'NR <= 2500 { sub(/keepalive=0/, "keepalive=25") }
	     NR > 2500 && NR <= 3000 { sub(/ psk=[^ ]*/, "") } { print }' >"$T/b.peers"
last="$(wc -l <"$T/a.peers") and $(wc -l <"$T/b.peers") lines"
check "genpeers: two sets of $N peers" test "$last" = "$N and $N lines"
last=$(cut -d' ' -f1 "$T/a.peers" "$T/b.peers" | sort | uniq -d | wc -l)
check "the sets share half their keys" test "$last" -eq $((N / 2))

netns_add "$ns" || {
	echo "Bail out! cannot create the namespace"
	exit 1
}
netns_track_wg "$ns" "$ifn"
if netns_kernel_wireguard; then
	echo "# the kernel has WireGuard: the test starts wireguard-go itself"
	netns_wg_go "$ns" "$ifn" "$T/wg.log"
fi
check "agent starts" agent_start
check "hello: backend=userspace" hello_is backend userspace
[[ -n $agent_pid ]] || {
	tap_done
	exit 1
}

# ---- how long does the write take? ----------------------------------------------
# sync_begin GEN FILE: agentctl in the background; returns once it has sent
# the End, the moment the agent starts to apply.
sync_begin() {
	: >"$T/sync.trace"
	"$agentctl_bin" -v -s "$sock" sync "$1" "$2" >"$T/sync.out" 2>"$T/sync.trace" &
	sync_pid=$!
	until grep -q '> PeersSyncEnd' "$T/sync.trace"; do
		kill -0 "$sync_pid" 2>/dev/null || return 1
		sleep 0.005
	done
}
sync_wait() { # status of the background agentctl
	local rc=0
	wait "$sync_pid" || rc=$?
	sync_pid=
	return "$rc"
}

sync_begin 1 "$T/a.peers"
t0=$(now_us)
sync_wait
t1=$(now_us)
apply_us=$((t1 - t0))
echo "# a cold sync of $N peers took $((apply_us / 1000)) ms from End to Result"
check "cold full sync of $N peers: ok" test "$(cat "$T/sync.out")" = ok
check "all $N peers are there" peers_are "$T/a.peers"
check "full sync of no peers: ok" sync_ok 2 /dev/null
last=$(peer_count)
check "every peer removed" test "$last" -eq 0

# ---- kill -9 in the middle ---------------------------------------------------------
delay_us=$((apply_us / 2))
present=0
middle=false
for attempt in 1 2 3 4 5; do
	sync_begin 3 "$T/a.peers"
	sleep "$((delay_us / 1000000)).$(printf '%06d' $((delay_us % 1000000)))"
	netns_agent_kill KILL
	sync_wait
	present=$(peer_count)
	echo "# attempt $attempt: kill -9 $((delay_us / 1000)) ms after End: $present of $N peers" \
		"present; agentctl: $(tail -n 1 "$T/sync.trace")"
	if ((present > 0 && present < N)); then
		middle=true
		break
	fi
	# Too early: wait longer; too late: cut the wait.
	if ((present == 0)); then
		delay_us=$((delay_us * 2 + 10000))
	else
		delay_us=$((delay_us / 3))
	fi
	if ! agent_start || ! actl sync 2 /dev/null >/dev/null; then
		break
	fi
done
last="$present of $N peers present at the kill"
check "kill -9 landed in the middle of the apply" $middle

check "agent starts again after kill -9" agent_start
check "after restart: hello reports the peers the kill left" hello_is peers "$present"
check "after restart: peers_generation=0" hello_is peers_generation 0

# ---- a different desired set ---------------------------------------------------------
check "full sync of the other set: ok" sync_ok 4 "$T/b.peers"
check "wg show dump has exactly the desired peers" peers_are "$T/b.peers"
check "hello: peers=$N" hello_is peers $N
check "hello: peers_generation=4" hello_is peers_generation 4
last=$(actl stats 2>&1 | wc -l)
check "stats lists all $N peers (several StatsReplies)" test "$last" -eq $N
full_dump >"$T/dump.before"
# Other batch boundaries, the same peers.
check "the same full sync again, 777 a batch: ok" sync_ok -b 777 5 "$T/b.peers"
full_dump >"$T/dump.after"
last=$(diff "$T/dump.before" "$T/dump.after" | head -n 10)
check "the repeated sync left the dump equal" cmp -s "$T/dump.before" "$T/dump.after"
check "hello: max_batch=1000" hello_is max_batch 1000
refused() { # REGEX ARGS...: agentctl exits 1 with a line matching REGEX
	local re=$1 rc=0
	shift
	last=$(actl "$@" 2>&1) || rc=$?
	last="exit $rc: $last"
	[[ $rc -eq 1 && $last =~ $re ]]
}
check "a batch of 1001 peers: LIMIT" refused '^exit 1: error LIMIT ' -b 1001 sync 6 "$T/a.peers"
full_dump >"$T/dump.after"
last=$(diff "$T/dump.before" "$T/dump.after" | head -n 10)
check "  nothing applied" cmp -s "$T/dump.before" "$T/dump.after"

tap_done
