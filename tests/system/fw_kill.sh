#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# kill -9 of wiregui-agent while it takes a 10k-user firewall full sync: the
# agent's table is afterwards exactly the old state's or exactly the new
# one's, never a mix, wherever the kill lands (during the batches, right
# after the End, and at fractions of the time the apply took earlier,
# measured in this run, and longer until one kill comes after the commit).
# The agent restarts each round; in the end a full sync of the new state
# converges, and a repeat of it, even by a restarted agent, writes nothing
# (nft monitor sees no event, the handles stay). TAP output, root only.
# "Exactly" compares a normal form of `nft -j list table`: handles dropped,
# map and set elements sorted, objects sorted, rules kept in their chain's
# order; plus the counts of chains, rules and map elements. Nothing is
# asserted about durations.
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

netns_require
netns_require_cmd nft jq sha256sum
export WG_COLOR_MODE=never

N=10000
id=$$
ns=wiregui-$id-fwk
ifn=wgk${id}f
table=wiregui_fwkill
T=$(mktemp -d /tmp/wiregui-fw-kill.XXXXXX)
mkdir "$T/agent"
sock=$T/agent/agent.sock
last=
gen=0
sync_pid=
monitor_pid=

cleanup() {
	local pid
	for pid in $sync_pid $monitor_pid; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	netns_cleanup
	test_scratch_done "$T"
}
test_traps

tap_diagnose() { netns_agent_diagnose; }

netns_agent_conf "$sock" "$ifn" "$T" "10.64.0.1/16, fd00:64::1/112" "$table" >"$T/agent.conf"

actl() { "$agentctl_bin" -s "$sock" "$@"; }
agent_start() { netns_agent_start "$ns" "$T/agent.conf" "$T/agent.log" "$sock"; }
hello_is() { # KEY VALUE
	last="$1=$(actl hello 2>&1 | sed -n "s/^$1=//p")"
	[[ $last == "$1=$2" ]]
}
# fwsync FILE: a full sync, the next generation, answered "ok"; the Result's
# trace line in $T/sync.trace
fwsync() {
	gen=$((gen + 1))
	last=$(actl -v fwsync "$gen" "$1" 2>"$T/sync.trace")
	[[ $last == ok ]] || last+=$'\n'$(tail -n 5 "$T/sync.trace")
	[[ $last == ok ]]
}

# ---- the table's normal form ---------------------------------------------------------
# canon FILE: the table in a normal form into FILE, and its summary
# ("chains C rules R elements E sha256 H") into FILE.sum; 1 without a table
canon() {
	netns_nft "$ns" -j list table inet "$table" >"$T/listing.json" 2>"$T/listing.err" || {
		echo "no table: $(head -c 200 "$T/listing.err")" >"$1.sum"
		return 1
	}
	jq -c '[.nftables[] | select(has("metainfo") | not)
		| with_entries(.value |= (del(.handle) | if has("elem") then .elem |= sort else . end))]
		| (map(select(has("rule") | not)) | sort[]),
		  (map(select(has("rule"))) | group_by(.rule.chain)[] | to_entries[] | [.key, .value])' \
		"$T/listing.json" >"$1" || return 1
	local chains rules elems
	chains=$(grep -c '^{"chain"' "$1")
	rules=$(grep -c '^\[' "$1")
	elems=$(jq -s '[.[] | (objects | .map // empty) | .elem // [] | length] | add // 0' "$1")
	echo "chains $chains rules $rules elements $elems sha256 $(sha256sum <"$1" | cut -c1-16)" >"$1.sum"
}
same_table() { # A B: two canon files
	last="$(cat "$1.sum") vs $(cat "$2.sum")"
	cmp -s "$1" "$2"
}
# the listing with its handles, to see that nothing was rewritten
raw_listing() { netns_nft "$ns" -a list table inet "$table"; }

# nft monitor in the namespace: every change to any table there
monitor_start() {
	: >"$T/monitor"
	netns_bg "$ns" "$T/monitor" nft monitor
	monitor_pid=$netns_bg_pid
	sleep 0.3
}
monitor_stop() {
	sleep 0.3
	netns_stop_pid "$monitor_pid" 2 2>/dev/null
	monitor_pid=
}
monitor_silent() {
	last="nft monitor printed $(wc -l <"$T/monitor") lines: $(head -c 300 "$T/monitor")"
	[[ ! -s $T/monitor ]]
}

# ---- the states -------------------------------------------------------------------------
# A: 3 users and a global rule, default drop. B: 10k users (2 rules each, the
# same first 3 users among them), default accept, isolation on.
{
	echo "settings default=drop isolation=off masq4=on masq6=off"
	"$agentctl_bin" genfw 3 10.64.0.0/16 fd00:64::/112 | grep -v '^settings'
	echo "rule 900001 prio=5 dst=203.0.113.0/24 proto=tcp ports=22 drop"
} >"$T/a.fw"
{
	echo "settings default=accept isolation=on masq4=on masq6=on"
	"$agentctl_bin" genfw $N 10.64.0.0/16 fd00:64::/112 | grep -v '^settings'
} >"$T/b.fw"
last=$(grep -c '^user ' "$T/b.fw")
check "genfw: $N users in B" test "$last" -eq $N

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
[[ -n $agent_pid ]] || {
	tap_done
	exit 1
}

check "full sync of A: ok" fwsync "$T/a.fw"
canon "$T/A"
echo "# A: $(cat "$T/A.sum")"
# has_users FILE N: a canon file with N user chains and 2N map elements
# (one v4 and one v6 address a user), plus each map's catch-all * : drop
has_users() {
	last=$(cat "$1.sum")
	# shellcheck disable=SC2016 # $n is jq's
	jq -se --argjson n "$2" '([.[] | objects | .chain // empty | select(.name | test("^u[0-9]+$"))]
		| length == $n) and ([.[] | (objects | .map // empty) | .elem | length] | add == 2 * $n + 2)' \
		"$1" >/dev/null
}
check "A's table: 3 user chains, 6 map elements" has_users "$T/A" 3

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
# sync_begin GEN FILE: agentctl -v in the background; returns when its trace
# shows PATTERN (default: the End sent)
sync_begin() { # GEN FILE [PATTERN [COUNT]]
	local pattern=${3:-'> FirewallSyncEnd'} count=${4:-1}
	: >"$T/bg.trace"
	"$agentctl_bin" -v -s "$sock" fwsync "$1" "$2" >"$T/bg.out" 2>"$T/bg.trace" &
	sync_pid=$!
	until (($(grep -c -- "$pattern" "$T/bg.trace") >= count)); do
		kill -0 "$sync_pid" 2>/dev/null || return 1
		sleep 0.002
	done
}
sync_wait() {
	local rc=0
	wait "$sync_pid" || rc=$?
	sync_pid=
	return "$rc"
}

gen=$((gen + 1))
sync_begin "$gen" "$T/b.fw"
t0=$(now_us)
sync_wait
t1=$(now_us)
apply_us=$((t1 - t0))
echo "# A -> B: $((apply_us / 1000)) ms from the End to its Result"
last=$(cat "$T/bg.out")
check "full sync of B over A: ok" test "$last" = ok
canon "$T/B"
echo "# B: $(cat "$T/B.sum")"
check "B's table: $N user chains, $((2 * N)) map elements" has_users "$T/B" $N
batches=$(grep -c '> FirewallSyncBatch' "$T/bg.trace")
echo "# B went in $batches batches"
check "full sync of A again: ok" fwsync "$T/a.fw"
canon "$T/A2"
check "back to A: the same table as the first A" same_table "$T/A2" "$T/A"

# ---- kill -9, round by round -------------------------------------------------------------
# kill_round NAME PATTERN COUNT DELAY_US: from A, a full sync of B; kill -9
# when the trace has shown PATTERN COUNT times, DELAY_US later; then the
# table must be A's or B's
mid_apply=0
left_b=0
kill_round() {
	local name=$1 pattern=$2 count=$3 delay=$4 which got_result=no
	gen=$((gen + 1))
	if ! sync_begin "$gen" "$T/b.fw" "$pattern" "$count"; then
		last="agentctl ended before '$pattern' x$count: $(tail -n 3 "$T/bg.trace")"
		check "$name: the kill point was reached" false
		sync_wait
		return
	fi
	((delay > 0)) && sleep "$((delay / 1000000)).$(printf '%06d' $((delay % 1000000)))"
	netns_agent_kill KILL
	sync_wait
	grep -q '< Result .* OK' <(grep -A1000 -- '> FirewallSyncEnd' "$T/bg.trace") && got_result=yes
	[[ $got_result == no ]] && grep -q -- '> FirewallSyncEnd' "$T/bg.trace" && mid_apply=$((mid_apply + 1))
	canon "$T/K"
	if cmp -s "$T/K" "$T/A"; then
		which=A
	elif cmp -s "$T/K" "$T/B"; then
		which=B
	else
		which="neither: $(cat "$T/K.sum")"
	fi
	echo "# $name: table $which; the End's Result before the kill: $got_result; $(tail -n 1 "$T/bg.trace")"
	last="after the kill: $(cat "$T/K.sum"); A: $(cat "$T/A.sum"); B: $(cat "$T/B.sum")"
	[[ $which == B ]] && left_b=$((left_b + 1))
	check "$name: the table is exactly A's or B's" test "${which:0:1}" != n
	check "$name: the agent starts again" agent_start
	# back to A for the next round (a restarted agent reads the table)
	check "$name: full sync of A after the restart: ok" fwsync "$T/a.fw"
	canon "$T/K"
	check "$name: the table is A's again" same_table "$T/K" "$T/A"
}

for k in 1 $(((batches + 1) / 2)) "$batches"; do
	kill_round "kill -9 after batch $k of $batches is sent" '> FirewallSyncBatch' "$k" 0
done
kill_round "kill -9 right after the End is sent" '> FirewallSyncEnd' 1 0
for pct in 10 25 50 75 85 95 100 150; do
	kill_round "kill -9 ${pct}% of the apply time after the End" '> FirewallSyncEnd' 1 \
		$((apply_us * pct / 100))
done
# Until one kill comes after the commit: longer waits, doubled each time.
delay_us=$((apply_us * 2))
for attempt in 1 2 3 4 5; do
	((left_b == 0)) || break
	kill_round "kill -9 $((delay_us / 1000)) ms after the End (attempt $attempt)" \
		'> FirewallSyncEnd' 1 "$delay_us"
	delay_us=$((delay_us * 2))
done
last="$mid_apply kills came after the End and before its Result"
check "some kill came between the End and its Result" test "$mid_apply" -gt 0
last="$left_b kills left B's table"
check "some kill came after the commit (B's table stayed)" test "$left_b" -gt 0

# ---- converging on B; no-op repeats ---------------------------------------------------------
check "full sync of B: ok" fwsync "$T/b.fw"
canon "$T/K"
check "the table is B's" same_table "$T/K" "$T/B"
check "hello: firewall_generation=$gen" hello_is firewall_generation "$gen"
raw_listing >"$T/raw.before"
monitor_start
check "the same full sync of B again: ok" fwsync "$T/b.fw"
result=$(grep '< Result' "$T/sync.trace" | tail -n 1)
monitor_stop
echo "# $result"
check "the repeated sync wrote nothing (nft monitor saw no change)" monitor_silent
raw_listing >"$T/raw.after"
last=$(diff "$T/raw.before" "$T/raw.after" | head -n 10)
check "the listing with its handles is the same" cmp -s "$T/raw.before" "$T/raw.after"
last=$result
check "its Result says unchanged" grep -qi 'unchanged' <<<"$result"
check "hello: firewall_generation=$gen" hello_is firewall_generation "$gen"

netns_agent_kill KILL
check "agent starts again after an idle kill -9" agent_start
monitor_start
check "a restarted agent: the same full sync of B: ok" fwsync "$T/b.fw"
result=$(grep '< Result' "$T/sync.trace" | tail -n 1)
monitor_stop
echo "# $result"
check "the restarted agent wrote nothing (it read the table back)" monitor_silent
raw_listing >"$T/raw.after"
last=$(diff "$T/raw.before" "$T/raw.after" | head -n 10)
check "the listing with its handles is still the same" cmp -s "$T/raw.before" "$T/raw.after"

tap_done
