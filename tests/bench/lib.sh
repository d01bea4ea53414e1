# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
# The variables it sets are the sourcing script's to read.
# shellcheck disable=SC2034
#
# What the WireGuard benchmarks share (tests/bench/wg.sh on wireguard-go, and
# the guest script of tests/bench/wg_kernel.sh on the kernel, which runs it
# under bash in the VM): measuring, peer sets, checks. Source it after
# setting:
#
#   T        a scratch directory
#   SOCK     the agent's socket; AGENTCTL the agentctl binary
#   AGENT_LOG the agent's log file
#   CPU_PIDS processes whose CPU time the agent's operations report (the
#            agent; wireguard-go when there is one), "name=pid" words
#
# and a function fail() that counts a failed check. It sources
# tests/lib/peers.sh from $TESTS_LIB (default: ../lib beside it).
#
# Two kinds of time, in milliseconds:
#   whole commands (timeit): the wall clock of a process, from fork to exit,
#     as a shell user pays it: the anchors (`wg setconf`, `wg syncconf`,
#     `wg set`) and, for comparison, agentctl commands;
#   the agent's operations (ours_sync, ours_patches): on a connection that
#     already said Hello, from the first request to the last Result, as the
#     web (which keeps its connection) waits for them: agentctl -T.

# shellcheck source-path=SCRIPTDIR source=../lib/peers.sh
. "${TESTS_LIB:-$(dirname "${BASH_SOURCE[0]}")/../lib}/peers.sh"

# timeit VAR CMD...: run CMD (output to $T/cmd.out), VAR = wall time in ms,
# and CPU_WG / CPU_WG_SYS the CPU time (ms) of CMD's processes and its
# kernel part, CPU_BACKEND that of the CPU_PIDS entry "backend"
# (wireguard-go) meanwhile
timeit() {
	local -n _ms=$1
	shift
	local t0 t1 rc=0 c0 c1 s0 s1 b0 b1
	children_cpu c0 s0
	pid_cpu b0 backend
	t0=${EPOCHREALTIME/./}
	"$@" >"$T/cmd.out" 2>&1 || rc=$?
	t1=${EPOCHREALTIME/./}
	pid_cpu b1 backend
	children_cpu c1 s1
	_ms=$(us_ms $((t1 - t0)))
	CPU_WG=$(us_ms $((c1 - c0)))
	CPU_WG_SYS=$(us_ms $((s1 - s0)))
	CPU_BACKEND=$(us_ms $((b1 - b0)))
	if ((rc != 0)); then
		echo "# '$*' failed ($rc):"
		sed -n '1,10s/^/#   /p' "$T/cmd.out"
	fi
	return "$rc"
}
us_ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# children_cpu VAR SYSVAR: user + system time of the children waited for so
# far, and the system time alone (us). No subshells here: they would count
# themselves.
children_cpu() {
	local -n _us=$1 _sys=$2
	local u s ua sa
	times >"$T/times"
	{
		read -r _
		read -r u s
	} <"$T/times"
	tm_us ua "$u"
	tm_us sa "$s"
	_us=$((ua + sa))
	_sys=$sa
}
tm_us() { # VAR 1m2.345s: VAR = microseconds
	local -n _t=$1
	local m=${2%%m*} sec=${2#*m}
	sec=${sec%s}
	local i=${sec%.*} f=${sec#*.}000000
	_t=$(((10#$m * 60 + 10#$i) * 1000000 + 10#${f:0:6}))
}
# pid_cpu VAR NAME: CPU time (us) of all threads of CPU_PIDS' NAME, 0 without
pid_cpu() {
	local -n _cpu=$1
	local w pid='' f a sum=0
	for w in $CPU_PIDS; do
		[[ ${w%%=*} == "$2" ]] && pid=${w#*=}
	done
	if [[ -n $pid ]]; then
		for f in /proc/"$pid"/task/*/schedstat; do
			read -r a _ <"$f" 2>/dev/null && sum=$((sum + a / 1000))
		done
	fi
	_cpu=$sum
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }'; }
bench() { echo "bench: $1 $2 $3"; }

ctl() { "$AGENTCTL" -s "$SOCK" "$@"; }

# --- the agent -------------------------------------------------------------------
# agent_conf IF PORT KEYFILE: the agent's config for IF, on stdout
agent_conf() {
	cat <<-EOF
		[agent]
		socket = $SOCK
		frontend_user = root
		log_level = debug
		[wireguard]
		interface = $1
		listen_port = $2
		private_key_file = $3
		address = 10.80.0.1/16, fd80::1/64
	EOF
}
# agent_wait IF BACKEND TRIES PAUSE: 0 once the agent just started (pid in
# agent_pid) answers a Hello, trying TRIES times PAUSE s apart, and reports
# BACKEND ("userspace", "kernel"); else a failed check and 1
agent_wait() {
	local i
	for ((i = 0; i < $3; i++)); do
		if ctl hello >"$T/hello" 2>/dev/null; then
			grep -q "^backend=$2\$" "$T/hello" || {
				fail "the agent on $1 does not use the $2 backend: $(tr '\n' ' ' <"$T/hello")"
				return 1
			}
			return 0
		fi
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep "$4"
	done
	fail "the agent did not start: $(tail -n 5 "$AGENT_LOG")"
	return 1
}
agent_stop() {
	kill -TERM "$agent_pid" 2>/dev/null
	wait "$agent_pid" 2>/dev/null
	agent_pid=
	CPU_PIDS=''
}

# Series of measurements: rec NAME VALUE per run, med NAME their median.
declare -A M
rec() { M[$1]="${M[$1]:-} $2"; }
med() {
	# shellcheck disable=SC2086 # the values, one word each
	median ${M[$1]}
}
# rec_ours NAME: ours_sync's OURS and its CPU split under NAME
rec_ours() {
	rec "$1" "$OURS"
	rec "${1}_agentctl" "$OURS_WHOLE"
	rec "${1}_cpu_client" "$OURS_CPU_CLIENT"
	rec "${1}_cpu_agent" "$OURS_CPU_AGENT"
	rec "${1}_cpu_agent_sys" "$OURS_CPU_AGENT_SYS"
	rec "${1}_cpu_backend" "$OURS_CPU_BACKEND"
}
# rec_anchor NAME MS: the anchor's time and CPU split (timeit's CPU_*)
rec_anchor() {
	rec "$1" "$2"
	rec "${1}_cpu_client" "$CPU_WG"
	rec "${1}_cpu_client_sys" "$CPU_WG_SYS"
	rec "${1}_cpu_backend" "$CPU_BACKEND"
}

# ours_sync GEN FILE: a full sync over agentctl -T. Sets OURS (the sync on
# its connection, ms), OURS_WHOLE (the agentctl process, Hello included),
# OURS_CPU_CLIENT / OURS_CPU_AGENT / OURS_CPU_BACKEND (CPU ms during the
# sync: agentctl, the agent, wireguard-go) and OURS_CPU_AGENT_SYS (the
# agent's in the kernel: whole clock ticks). 1 unless the agent said ok.
ours_sync() {
	local w p opts=() rc=0 sys
	for w in $CPU_PIDS; do
		opts+=(-P "${w#*=}")
	done
	timeit OURS_WHOLE ctl -T "${opts[@]}" sync "$1" "$2" || rc=1
	OURS=
	OURS_CPU_CLIENT=0 OURS_CPU_AGENT=0 OURS_CPU_BACKEND=0 OURS_CPU_AGENT_SYS=0
	local key val
	while read -r key p val _ sys; do
		case $key in
		elapsed_ms) OURS=$p ;;
		cpu_ms)
			[[ $p == self ]] && OURS_CPU_CLIENT=$val
			for w in $CPU_PIDS; do
				[[ ${w#*=} == "$p" && ${w%%=*} == agent ]] &&
					OURS_CPU_AGENT=$val OURS_CPU_AGENT_SYS=${sys:-0}
				[[ ${w#*=} == "$p" && ${w%%=*} == backend ]] && OURS_CPU_BACKEND=$val
			done
			;;
		esac
	done <"$T/cmd.out"
	grep -qx ok "$T/cmd.out" || rc=1
	[[ -n $OURS ]] || {
		echo "# agentctl -T printed no elapsed_ms"
		rc=1
	}
	return "$rc"
}

# ours_patches IF: the one-peer patches of $T/patchpeers on IF, which has
# $T/p0's peers: each upserted then each removed on one connection
# (agentctl patcheach) into M[patch] and M[unpatch], then each upserted by
# an agentctl process of its own (Hello, its dump, the patch) into
# M[patch_agentctl]; the dump is checked after each part
ours_patches() {
	local -a a
	local line t
	ctl patcheach "$T/patchpeers" >"$T/patchtimes" || fail "agentctl patcheach"
	check_dump "one-peer patches added and removed" "$1" "$T/p0"
	mapfile -t a < <(awk '$1 == "upsert" { print $2 }' "$T/patchtimes")
	M[patch]="${a[*]}"
	mapfile -t a < <(awk '$1 == "remove" { print $2 }' "$T/patchtimes")
	M[unpatch]="${a[*]}"
	while read -r line; do
		echo "+ $line" >"$T/patch"
		timeit t ctl patch "$T/patch" || fail "agentctl one-peer patch"
		rec patch_agentctl "$t"
	done <"$T/patchpeers"
	check_dump "agentctl one-peer patches" "$1" "$T/p0+"
}

# --- peer sets -----------------------------------------------------------------
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
# check_dump WHAT IF PEERFILE: IF has exactly PEERFILE's peers (the
# canonical form of PEERFILE is kept beside it as PEERFILE.canon)
check_dump() {
	[[ -s $3.canon || ! -s $3 ]] || canon_peers "$3" >"$3.canon"
	wg show "$2" dump | canon_dump >"$T/have"
	cmp -s "$3.canon" "$T/have" ||
		fail "$1: $2 has $(wc -l <"$T/have") peers, not the $(wc -l <"$3.canon") desired ($(diff "$3.canon" "$T/have" | wc -l) diff lines)"
}
# wg show dump with the peers sorted (wireguard-go lists them in map order)
dump_sorted() { # IF
	wg show "$1" dump | awk 'NR == 1 { print; next } { print | "sort" }'
}
# peers written by the sync of generation GEN, from the agent's log
written() { # GEN
	sed -n "s/.*peers sync generation $1: \([0-9]*\) added, \([0-9]*\) changed, \([0-9]*\) removed.*/\1 \2 \3/p" \
		"$AGENT_LOG" | tail -n 1 | awk '{ print $1 + $2 + $3 }'
}
# noop_count VAR GEN: VAR += the peers the no-op sync of generation GEN
# wrote (the agent's log); a failed check when the log does not say
noop_count() {
	local -n _sum=$1
	local w
	w=$(written "$2")
	[[ -n $w ]] || {
		fail "the agent's log has no 'peers sync generation $2: ...' line for a no-op"
		w=0
	}
	_sum=$((_sum + w))
}
# make_sets N: $T/p0 (N peers), $T/p1 (its first 1% replaced by others),
# $T/patchpeers (20 more), $T/p0+ (p0 and those), $T/anchor.key, $T/c0 and
# $T/c1 (wg configs of p0 and p1 with that key and port 51900); K = the 1%
# count
make_sets() {
	local n=$1
	K=$((n / 100))
	((K > 0)) || K=1
	"$AGENTCTL" genpeers "$n" 10.80.0.0/16 fd80::/64 1 >"$T/p0"
	{
		sed -n "$((K + 1)),\$p" "$T/p0"
		"$AGENTCTL" genpeers "$K" 10.80.128.0/17 fd80:0:0:0:1::/80 2
	} >"$T/p1"
	"$AGENTCTL" genpeers 20 10.80.200.0/24 fd80:0:0:0:2::/80 3 >"$T/patchpeers"
	wg genkey >"$T/anchor.key"
	to_wgconf "$T/p0" "$T/anchor.key" 51900 >"$T/c0"
	to_wgconf "$T/p1" "$T/anchor.key" 51900 >"$T/c1"
	cat "$T/p0" "$T/patchpeers" >"$T/p0+"
	rm -f "$T"/*.canon
}
size_tag() { # N -> 1k, 10k, 300
	if (($1 % 1000 == 0)); then echo "$(($1 / 1000))k"; else echo "$1"; fi
}
