#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Benchmark: the agent's nftables firewall writes, in a network namespace,
# for 1k and 10k users (agentctl genfw: one device each, v4 and v6 address,
# 2 rules each), all measured in this one run:
#
#   full sync into no table (a fresh    vs  the same nft -f into no table
#   agent), and replacing a table of
#   the same size (the agent's, the
#   other default action)               vs  nft -f of the same table's text in
#                                           one transaction ("table inet X;
#                                           delete table inet X; table inet X
#                                           { ... }", the text being
#                                           `nft list table` of the agent's
#                                           table after its sync, renamed X)
#                                       vs  one `nft add element` process per
#                                           map element (Firezone 0.7's way);
#                                           ESTIMATED: 500 such processes are
#                                           timed on the full table and the
#                                           time scaled to all 2N elements
#   one-user patch (a user upserted     }
#   with a changed rule), one-user      }   at 1k and at 10k users: flat in N?
#   disable/enable, one global rule     }   (ratio 10k / 1k)
#   added, removed                      }
#
# What is timed (milliseconds, wall clock):
#   ours: on a connection that already said Hello, from the first request to
#     the last Result (agentctl -T), as the web waits for them: a full sync
#     from FirewallSyncBegin to the End's Result (encoding and sending the
#     batches, the agent validating them, building and committing the
#     transaction), a patch from sending it to its Result. full_sync_agentctl
#     is the whole agentctl process (reading the spec file, Hello included).
#   the anchors: whole nft processes (start, parsing the file, the cache
#     they fetch, the transaction), as their users run them.
#   *_cpu_agent: the agent's CPU time over the same span (all its threads,
#     the kernel's work on its behalf included: building the batch and the
#     transaction itself); *_cpu_agent_sys its kernel part (clock ticks).
# Medians of 3 for the syncs into no table (each by a fresh agent) and nft -f
# into no table; of 5 for the full syncs and nft -f replacing a table of the
# same size (ours alternate between two states that differ in the default
# action, so that every one writes); of 20 for each kind of patch.
#
# Prints "bench: NAME VALUE UNIT" and "ratio: NAME VALUE" (ours / anchor, or
# 10k / 1k for the patches). Targets (not asserted): full sync <= 0.5 x nft -f;
# a patch < 5 ms and flat in N. Fails (exit 1) when a check does not hold:
# every request answered ok, the table has N user chains and 2N map elements (+ 2 catch-alls)
# after the syncs, the anchor's table the same counts.
#
# Root only; exit 77 (skip) without ip netns, nft or wireguard-go.
# Env: WIREGUI_BENCH_SIZES (default "1000 10000"), WIREGUI_BUILD_DIR.
set -uo pipefail
export LC_ALL=C WG_COLOR_MODE=never

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
agent=$build/agent/wiregui-agent
AGENTCTL=$build/tests/system/agentctl
sizes=${WIREGUI_BENCH_SIZES:-1000 10000}
SAMPLE=500
PATCHES=20

skip() {
	echo "SKIP: $*"
	exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces)"
command -v nft >/dev/null || skip "nft (nftables) not installed"
command -v jq >/dev/null || skip "jq not installed"
command -v wireguard-go >/dev/null || skip "wireguard-go not installed"
ip netns list >/dev/null 2>&1 || skip "ip netns does not work here"
for f in "$agent" "$AGENTCTL"; do
	[[ -x $f ]] || {
		echo "bench: $f is not built (ninja -C $build)" >&2
		exit 1
	}
done

umask 077
T=$(mktemp -d /tmp/wiregui-bench-nft.XXXXXX)
SOCK=$T/agent.sock
AGENT_LOG=$T/agent.log
CPU_PIDS=
NS=nftbench-$$
IFN=wgn$$
TABLE=wiregui_bench
ANCHOR=anchor
failed=0
agent_pid=
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$src/tests/bench/lib.sh"

cleanup() {
	if [[ -n $agent_pid ]]; then
		kill -TERM "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
	fi
	# wireguard-go, when the agent started it, ends with its interface
	ip -n "$NS" link del "$IFN" 2>/dev/null
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -z $(ip netns pids "$NS" 2>/dev/null) ]] && break
		sleep 0.1
	done
	ip netns del "$NS" 2>/dev/null
	rm -f "/var/run/wireguard/$IFN.sock"
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
nsnft() { ip netns exec "$NS" nft "$@"; }

# the agent on IFN (it starts wireguard-go for it when the kernel has no
# WireGuard), its firewall in table inet $TABLE
{
	agent_conf "$IFN" 51950 "$T/agent.key"
	printf '[firewall]\ntable = %s\n' "$TABLE"
} >"$T/agent.conf"
ip netns exec "$NS" "$agent" -c "$T/agent.conf" >>"$AGENT_LOG" 2>&1 &
agent_pid=$!
agent_wait "$IFN" '[a-z]*' 600 0.1 || exit 1
CPU_PIDS="agent=$agent_pid"

# ours_fw NAME CMD...: an agentctl -T command; rec NAME its elapsed_ms,
# NAME_agentctl the whole process, NAME_cpu_agent and NAME_cpu_agent_sys the
# agent's CPU time meanwhile and the kernel's part of it (clock ticks); 1
# unless it said ok
ours_fw() {
	local name=$1 t ms
	shift
	timeit t ctl -T -P "$agent_pid" "$@" || {
		fail "agentctl $*"
		return 1
	}
	grep -qx ok "$T/cmd.out" || {
		fail "agentctl $* did not say ok: $(head -n 3 "$T/cmd.out")"
		return 1
	}
	ms=$(awk '$1 == "elapsed_ms" { print $2 }' "$T/cmd.out")
	[[ -n $ms ]] || {
		fail "agentctl -T printed no elapsed_ms"
		return 1
	}
	rec "$name" "$ms"
	rec "${name}_agentctl" "$t"
	rec "${name}_cpu_agent" "$(awk -v p="$agent_pid" '$1 == "cpu_ms" && $2 == p { print $3 }' "$T/cmd.out")"
	rec "${name}_cpu_agent_sys" "$(awk -v p="$agent_pid" '$1 == "cpu_ms" && $2 == p { print $5 }' "$T/cmd.out")"
}

# table_counts TABLE: "chains C rules R elements E" of inet TABLE
table_counts() {
	nsnft -j list table inet "$1" | jq -r '
		[.nftables[]] as $o
		| "chains \([$o[] | select(.chain)] | length)"
		+ " rules \([$o[] | select(.rule)] | length)"
		+ " elements \([$o[] | select(.map) | .map.elem // [] | length] | add // 0)"'
}
user_chains() { # TABLE
	nsnft -j list table inet "$1" | jq '[.nftables[] | select(.chain) | .chain.name
		| select(test("^u[0-9]+$"))] | length'
}
check_table() { # WHAT TABLE N: N user chains, 2N map elements and the two catch-alls
	local c e
	c=$(user_chains "$2")
	e=$(table_counts "$2" | awk '{ print $6 }')
	((c == $3 && e == 2 * $3 + 2)) ||
		fail "$1: $c user chains and $e map elements, not $3 and $(($3 * 2 + 2))"
}

# ns_time VAR CMD...: CMD run in the namespace, VAR = its wall time in ms,
# measured in there (the anchors' processes start in the namespace, as they
# would on a host: `ip netns exec` is not counted)
ns_time() {
	local -n _t=$1
	local us
	shift
	# shellcheck disable=SC2016 # the inner shell's variables
	us=$(ip netns exec "$NS" bash -c 't0=${EPOCHREALTIME/[.,]/}
		"$@" >"$0" 2>&1 || exit 1
		t1=${EPOCHREALTIME/[.,]/}
		echo $((t1 - t0))' "$T/cmd.out" "$@") || {
		echo "# '$*' failed:"
		sed -n '1,10s/^/#   /p' "$T/cmd.out"
		return 1
	}
	_t=$(us_ms "$us")
}
# one nft process per element, in the namespace: the anchor's sample
add_elements() { # FILE of "MAP ELEMENT" lines
	local map el
	while read -r map el; do
		nft add element inet "$ANCHOR" "$map" "{ $el }" || return 1
	done <"$1"
}

run_size() {
	local n=$1 tag i gen=0 t
	tag=$(size_tag "$n")
	M=()
	echo "# $n users"
	"$AGENTCTL" genfw "$n" 10.80.0.0/16 fd80::/64 >"$T/s0" || {
		fail "agentctl genfw"
		return 1
	}
	# the same users and rules, the other default action
	if grep -q '^settings' "$T/s0"; then
		sed 's/^settings.*/settings default=drop/' "$T/s0" >"$T/s1"
	else
		{
			echo "settings default=drop"
			cat "$T/s0"
		} >"$T/s1"
	fi

	# the table from nothing, three times: no table, a fresh agent
	nsnft delete table inet "$ANCHOR" 2>/dev/null
	for i in 1 2 3; do
		agent_stop
		nsnft delete table inet "$TABLE" 2>/dev/null
		agent_restart || return 1
		gen=1
		ours_fw cold fwsync "$gen" "$T/s0" || return 1
	done
	check_table "cold full sync" "$TABLE" "$n"
	# full syncs, each replacing the table
	for i in 1 2 3 4 5; do
		gen=$((gen + 1))
		ours_fw full fwsync "$gen" "$T/s$((i % 2))" || return 1
	done
	check_table "full sync" "$TABLE" "$n"
	# full syncs of what the table already is: read back, compared, nothing written
	for i in 1 2 3; do
		gen=$((gen + 1))
		ours_fw noop fwsync "$gen" "$T/s1" || return 1
	done

	# the anchor: the agent's table as text, renamed, in one nft -f
	{
		echo "table inet $ANCHOR"
		echo "delete table inet $ANCHOR"
		nsnft list table inet "$TABLE" | sed "1s/^table inet $TABLE /table inet $ANCHOR /"
	} >"$T/anchor.nft"
	nsnft -f "$T/anchor.nft" || {
		fail "nft -f of the agent's table text"
		return 1
	}
	check_table "nft -f" "$ANCHOR" "$n"
	for i in 1 2 3; do
		nsnft delete table inet "$ANCHOR"
		ns_time t nft -f "$T/anchor.nft" || fail "nft -f (no table before)"
		rec nft_f_cold "$t"
	done
	for i in 1 2 3 4 5; do
		ns_time t nft -f "$T/anchor.nft" || fail "nft -f"
		rec nft_f "$t"
	done

	# the per-element anchor: SAMPLE elements of the full table taken out in
	# one transaction, then put back one nft process each
	# lines "MAP KEY [comment "C"] : VERDICT", as nft takes them
	nsnft -j list table inet "$ANCHOR" | jq -r '.nftables[] | select(.map) | .map as $m
		| $m.elem[]
		| (if (.[0] | type) == "object" then .[0].elem else {val: .[0]} end) as $k
		| (.[1] | keys[0]) as $v
		| "\($m.name) \($k.val)\(if $k.comment then " comment \"\($k.comment)\"" else "" end)"
		  + " : \($v) \(.[1][$v] | .target? // "")"' |
		awk -v k=$((SAMPLE / 2)) '$1 != last { c = 0; last = $1 } c++ < k' >"$T/sample"
	awk -v t="$ANCHOR" '{ print "delete element inet " t " " $1 " { " $2 " }" }' \
		"$T/sample" >"$T/sample.del"
	nsnft -f "$T/sample.del" || fail "deleting the sample elements"
	ns_time t bash -c "$(declare -f add_elements); ANCHOR=$ANCHOR add_elements $T/sample" ||
		fail "nft add element per element"
	check_table "nft add element per element" "$ANCHOR" "$n"
	local per_el all_el
	per_el=$(awk -v t="$t" -v k="$(wc -l <"$T/sample")" 'BEGIN { printf "%.3f\n", t / k }')
	all_el=$(awk -v p="$per_el" -v n="$n" 'BEGIN { printf "%.1f\n", p * 2 * n }')
	nsnft delete table inet "$ANCHOR"

	# patches: a user upserted with a changed rule, a user disabled and
	# enabled, a global rule added and removed; one agentctl process each
	local k user addr rules
	for ((i = 1; i <= PATCHES; i++)); do
		k=$((i * (n / PATCHES)))
		user=$(grep -m1 "^user $k " "$T/s0")
		addr=${user#*addr=}
		addr=${addr%% *}
		rules=$(grep "^rule .* user=$k " "$T/s0")
		{
			echo "user $k active addr=$addr"
			sed "0,/ports=[0-9]*/s// ports=$((3000 + i))/; s/  */ /g" <<<"$rules"
		} >"$T/patch.user"
		ours_fw patch_user fwpatch "$T/patch.user" || return 1
		echo "user $k disabled addr=$addr" >"$T/patch.off"
		printf '%s\n' "$rules" >>"$T/patch.off"
		ours_fw patch_disable fwpatch "$T/patch.off" || return 1
		echo "user $k active addr=$addr" >"$T/patch.on"
		printf '%s\n' "$rules" >>"$T/patch.on"
		ours_fw patch_enable fwpatch "$T/patch.on" || return 1
		echo "rule $((990000 + i)) prio=$((5 + i)) dst=198.18.$i.0/24 proto=tcp ports=$((4000 + i)) drop" \
			>"$T/patch.rule"
		ours_fw patch_rule fwpatch "$T/patch.rule" || return 1
		echo "- rule $((990000 + i))" >"$T/patch.unrule"
		ours_fw patch_unrule fwpatch "$T/patch.unrule" || return 1
	done
	check_table "after the patches" "$TABLE" "$n"

	bench "full_sync_cold_$tag" "$(med cold)" ms
	bench "full_sync_cold_cpu_agent_$tag" "$(med cold_cpu_agent)" ms
	bench "nft_f_cold_$tag" "$(med nft_f_cold)" ms
	echo "ratio: full_sync_cold_vs_nft_f_cold_$tag $(ratio "$(med cold)" "$(med nft_f_cold)")"
	bench "full_sync_$tag" "$(med full)" ms
	bench "full_sync_cpu_agent_$tag" "$(med full_cpu_agent)" ms
	bench "full_sync_cpu_agent_sys_$tag" "$(med full_cpu_agent_sys)" ms
	bench "full_sync_agentctl_$tag" "$(med full_agentctl)" ms
	bench "nft_f_$tag" "$(med nft_f)" ms
	bench "full_sync_noop_$tag" "$(med noop)" ms
	echo "ratio: full_sync_vs_nft_f_$tag $(ratio "$(med full)" "$(med nft_f)")"
	echo "ratio: full_sync_agentctl_vs_nft_f_$tag $(ratio "$(med full_agentctl)" "$(med nft_f)")"
	echo "# nft add element: $(wc -l <"$T/sample") processes timed on the full table" \
		"($t ms), scaled linearly to all $((2 * n)) map elements: an estimate"
	bench "nft_add_element_per_process_$tag" "$per_el" ms
	bench "nft_add_element_all_estimated_$tag" "$all_el" ms
	echo "ratio: full_sync_vs_nft_add_element_estimated_$tag $(ratio "$(med full)" "$all_el")"
	bench "patch_one_user_$tag" "$(med patch_user)" ms
	bench "patch_disable_user_$tag" "$(med patch_disable)" ms
	bench "patch_enable_user_$tag" "$(med patch_enable)" ms
	bench "patch_add_global_rule_$tag" "$(med patch_rule)" ms
	bench "patch_remove_global_rule_$tag" "$(med patch_unrule)" ms
	bench "patch_one_user_agentctl_$tag" "$(med patch_user_agentctl)" ms
	bench "patch_one_user_cpu_agent_$tag" "$(med patch_user_cpu_agent)" ms
	for p in patch_user patch_disable patch_rule; do
		PATCH_MED[${p}_$tag]=$(med "$p")
	done
}

agent_restart() { # agent_stop is lib.sh's
	[[ -z $agent_pid ]] || agent_stop
	ip netns exec "$NS" "$agent" -c "$T/agent.conf" >>"$AGENT_LOG" 2>&1 &
	agent_pid=$!
	CPU_PIDS="agent=$agent_pid"
	agent_wait "$IFN" '[a-z]*' 600 0.1
}

declare -A PATCH_MED
for n in $sizes; do
	run_size "$n" || fail "$n users: setup"
done
# flat in N: the patches at the largest size against the smallest
# shellcheck disable=SC2086 # one word per size
read -r small large <<<"$(printf '%s\n' $sizes | sort -n | sed -n '1p;$p' | paste -sd' ')"
if [[ -n ${large:-} && $large != "$small" ]]; then
	for p in patch_user patch_disable patch_rule; do
		at_large=${PATCH_MED[${p}_$(size_tag "$large")]:-}
		at_small=${PATCH_MED[${p}_$(size_tag "$small")]:-}
		[[ -n $at_large && -n $at_small ]] &&
			echo "ratio: ${p}_$(size_tag "$large")_vs_$(size_tag "$small") $(ratio "$at_large" "$at_small")"
	done
fi
echo "# $failed check(s) failed"
((failed == 0))
