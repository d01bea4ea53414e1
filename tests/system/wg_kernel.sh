#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The agent's kernel backend for real: Debian's cloud kernel (WireGuard as a
# module) under qemu -accel tcg (tests/lib/vm.sh), with wiregui-agent and
# agentctl in the initramfs. In the guest the agent creates wg0 over
# rtnetlink and programs it over generic netlink; the checks compare
# `wg show wg0 dump` with what was asked for, and a second kernel interface
# wg1 (set up with wg/ip, moved to netns b, endpoints over 127.0.0.1 as in
# the kernel's selftest) pings through the agent's wg0. TAP output: the guest
# prints "VMTAP ok NAME" / "VMTAP not ok NAME" / "VMTAP # text" on the serial
# console and this script numbers them.
#
# Root only. Skipped only when qemu cannot run or no kernel can be fetched.
# Env: WIREGUI_VM_PEERS (default 300: several netlink messages each way),
# WIREGUI_VM_TIMEOUT (seconds, default 600), WIREGUI_AGENTCTL (agentctl path),
# and those of tests/lib/vm.sh.
# Predicates run through check() and cleanup through trap: shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$src/tests/lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/vm.sh
. "$src/tests/lib/vm.sh"

if [[ $(id -u) -ne 0 ]]; then
	echo "1..0 # SKIP needs root (qemu's guest is fine, but the kernel package cache is not)"
	exit 0
fi
if ! vm_can_run; then
	echo "1..0 # SKIP qemu cannot run: $VM_ERROR"
	exit 0
fi
if ! vm_kernel; then
	echo "1..0 # SKIP no kernel to boot: $VM_ERROR"
	exit 0
fi

agent=$build/agent/wiregui-agent
agentctl=${WIREGUI_AGENTCTL:-}
if [[ -z $agentctl ]]; then
	for f in "$build/tests/system/agentctl" "$build/tests/lib/agentctl" "$build/tests/agentctl"; do
		[[ -x $f ]] && agentctl=$f && break
	done
fi
if [[ -z $agentctl ]]; then
	agentctl=$(find "$build/tests" -name agentctl -type f -perm -u+x -print -quit 2>/dev/null)
fi

T=$(mktemp -d /tmp/wiregui-wg-kernel.XXXXXX)
cleanup() {
	if ((tap_failed == 0)) && [[ -z ${WIREGUI_VM_KEEP:-} ]]; then
		rm -rf "$T"
	else
		echo "# files kept in $T (console log: $T/vm.log)"
	fi
}
trap cleanup EXIT
trap "exit 143" TERM

for f in "$agent" "$agentctl"; do
	if [[ ! -x $f ]]; then
		tap "built: ${f:-agentctl} (run ninja)" 1
		tap_done
		exit
	fi
done

asan=false
if ldd "$agent" 2>/dev/null | grep 'libasan\.' >/dev/null; then
	asan=true
fi

# --- the guest's test script (busybox sh) ---------------------------------
cat >"$T/test.sh" <<'GUEST'
umask 077
IP=/usr/sbin/ip
SOCK=/run/wiregui/agent.sock
CONF=/etc/wiregui/agent.conf
ctl() { agentctl -s "$SOCK" "$@"; }
failed=0

vt() { # NAME STATUS
	if [ "$2" -eq 0 ]; then
		echo "VMTAP ok $1"
	else
		failed=$((failed + 1))
		echo "VMTAP not ok $1"
	fi
}
diag() { sed -n "1,${1:-30}p" | sed 's/^/VMTAP # /'; }
# check NAME CMD...: the command's output is shown only when it fails
check() {
	_name=$1
	shift
	if "$@" >/tmp/check.out 2>&1; then
		vt "$_name" 0
	else
		vt "$_name" 1
		diag 40 </tmp/check.out
	fi
}

# --- canonical peer sets (tests/lib/peers.sh): canon_peers, canon_dump ---
. /peers.sh
# get(PREFIX): the field of this peer line that starts with PREFIX, or ""
AWK_GET='
function get(pre,   i) {
	for (i = 2; i <= NF; i++)
		if (index($i, pre) == 1)
			return $i
	return ""
}'
dump_is() { # FILE: the kernel's peers are exactly FILE's
	canon_peers "$1" >/tmp/want
	wg show wg0 dump | canon_dump >/tmp/have
	if ! cmp -s /tmp/want /tmp/have; then
		echo "want $(wc -l </tmp/want) peers, the kernel has $(wc -l </tmp/have); diff:"
		diff /tmp/want /tmp/have | head -n 20
		return 1
	fi
}
# allowed_list N4 N6 FROM: N4 IPv4 /32s from 10.77.250.0 + FROM and N6 IPv6
# /128s from fd77:0:0:3:: + FROM, comma separated
allowed_list() {
	awk -v n4="$1" -v n6="$2" -v from="$3" 'BEGIN {
		for (i = from; i < from + n4; i++)
			s = s "," sprintf("10.77.%d.%d/32", 250 + int(i / 256), i % 256)
		for (i = from; i < from + n6; i++)
			s = s "," sprintf("fd77:0:0:3::%x/128", i)
		print substr(s, 2)
	}'
}
# apply_patch SET PATCH: SET with PATCH's "- KEY" removed and "+ LINE" upserted
apply_patch() {
	awk 'FNR == NR {
		if ($1 == "-") del[$2] = 1
		else if ($1 == "+") { k = $2; $1 = ""; sub(/^ /, ""); up[k] = $0; order[++n] = k }
		next
	}
	($1 in del) { next }
	($1 in up) { print up[$1]; done[$1] = 1; next }
	{ print }
	END { for (i = 1; i <= n; i++) if (!(order[i] in done)) print up[order[i]] }' "$2" "$1"
}
# The dumps before and after a no-op: interface line equal; per peer key, PSK,
# endpoint, allowed IPs, handshake and keepalive equal; counters not reset.
dump_untouched() { # BEFORE AFTER
	awk 'FNR == 1 { f++ }
	f == 1 && FNR == 1 { iface = $0; next }
	f == 1 { b[$1] = $0; next }
	FNR == 1 { if ($0 != iface) { print "interface line changed"; bad = 1 }; next }
	{
		if (!($1 in b)) { print "new peer " $1; bad = 1; next }
		split(b[$1], o, "\t")
		if (o[2] != $2 || o[3] != $3 || o[4] != $4 || o[5] != $5 || o[8] != $8 || $6 < o[6] || $7 < o[7]) {
			print "changed: " b[$1]; print "     to: " $0; bad = 1
		}
		delete b[$1]
	}
	END { for (k in b) { print "peer gone " k; bad = 1 }; exit bad }' FS='\t' "$1" "$2"
}

agent_pid=
start_agent() {
	wiregui-agent -c "$CONF" >>/tmp/agent.log 2>&1 &
	agent_pid=$!
	i=0
	while [ $i -lt 600 ]; do
		ctl hello >/tmp/hello 2>/tmp/hello.err && return 0
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.2
		i=$((i + 1))
	done
	echo "the agent does not answer on $SOCK"
	cat /tmp/hello.err
	return 1
}
stop_agent() { # exit status of the agent after SIGTERM
	kill -TERM "$agent_pid" 2>/dev/null
	wait "$agent_pid"
	_rc=$?
	agent_pid=
	[ "$_rc" -eq 0 ] || echo "the agent exited with status $_rc"
	return "$_rc"
}
hello_has() { # KEY=VALUE...: each is a field of the last hello
	for kv in "$@"; do
		tr ' ' '\n' </tmp/hello | grep -qx "$kv" || {
			echo "hello lacks $kv:"
			cat /tmp/hello
			return 1
		}
	done
}
sync_ok() { # GEN FILE
	out=$(ctl -b 128 sync "$1" "$2" 2>&1)
	[ "$out" = ok ] || {
		echo "sync $1 $2: $out"
		return 1
	}
}
patch_ok() { # FILE
	out=$(ctl patch "$1" 2>&1)
	[ "$out" = ok ] || {
		echo "patch $1: $out"
		return 1
	}
}

# --- the agent creates wg0 ---------------------------------------------------
mkdir -p /etc/wiregui /var/lib/wiregui-agent
cat >"$CONF" <<EOF
[agent]
socket = $SOCK
frontend_user = root
log_level = debug
[wireguard]
interface = wg0
listen_port = 51820
private_key_file = /var/lib/wiregui-agent/private.key
address = 10.77.0.1/16, fd77::1/48
mtu = 1400
EOF

if ! start_agent >/tmp/start.out 2>&1; then
	vt "agent starts and answers hello" 1
	diag 20 </tmp/start.out
	echo "VMTAP # agent log:"
	diag 40 </tmp/agent.log
	sed 's/^/VMLOG /' /tmp/agent.log
	exit 1
fi
vt "agent starts and answers hello" 0
check "hello: backend=kernel, wg0, port 51820, mtu 1400, no peers" \
	hello_has backend=kernel interface=wg0 listen_port=51820 mtu=1400 peers=0 peers_generation=0
key_matches() {
	pub=$(wg show wg0 public-key) && [ -n "$pub" ] &&
		[ "$(wg pubkey </var/lib/wiregui-agent/private.key)" = "$pub" ] &&
		hello_has "public_key=$pub"
}
check "the kernel's key is the key file's and hello reports its public key" key_matches
key_private() { [ "$(stat -c %a /var/lib/wiregui-agent/private.key)" = 600 ]; }
check "private key file created 0600" key_private
check "wg0 listen port 51820" test "$(wg show wg0 listen-port)" = 51820
link_ok() {
	$IP -d link show wg0 >/tmp/link || return 1
	grep -q 'mtu 1400' /tmp/link && grep -q 'wireguard' /tmp/link && grep -q ',UP' /tmp/link ||
		{ cat /tmp/link; return 1; }
}
check "wg0 is a wireguard link, up, mtu 1400" link_ok
addrs_ok() {
	$IP addr show dev wg0 >/tmp/addr || return 1
	grep -q 'inet 10.77.0.1/16' /tmp/addr && grep -q 'inet6 fd77::1/48' /tmp/addr ||
		{ cat /tmp/addr; return 1; }
}
check "wg0 has 10.77.0.1/16 and fd77::1/48" addrs_ok

# --- full sync of N peers (several netlink messages each way) ---------------
agentctl genpeers "$VM_PEERS" 10.77.0.0/17 fd77::/64 1 >/tmp/set1
check "genpeers $VM_PEERS" test "$(wc -l </tmp/set1)" -eq "$VM_PEERS"
check "full sync of $VM_PEERS peers" sync_ok 1 /tmp/set1
check "wg show wg0 dump is the $VM_PEERS peers" dump_is /tmp/set1
ctl hello >/tmp/hello 2>&1
check "hello: peers=$VM_PEERS peers_generation=1" hello_has "peers=$VM_PEERS" peers_generation=1

# --- patch: remove 10, add 5, change 2 ----------------------------------------
{
	sed -n '1,10p' /tmp/set1 | awk '{ print "-", $1 }'
	agentctl genpeers 5 10.77.128.0/24 fd77:0:0:1::/64 2 | sed 's/^/+ /'
	# keepalive on and new allowed IPs; the PSK dropped
	sed -n '20p' /tmp/set1 | awk "$AWK_GET"'{ print "+", $1, get("psk="), "keepalive=25",
		"allowed=10.77.200.1/32,fd77:0:0:1::ff/128" }'
	sed -n '21p' /tmp/set1 | awk "$AWK_GET"'{ print "+", $1, get("allowed=") }'
} >/tmp/patch1
apply_patch /tmp/set1 /tmp/patch1 >/tmp/set2
check "patch: remove 10, add 5, change 2" patch_ok /tmp/patch1
check "wg show wg0 dump reflects the patch" dump_is /tmp/set2
echo "+ $(sed -n 30p /tmp/set1 | awk '{ print $1 }') allowed=192.0.2.1/32" >/tmp/patch-bad
wg show wg0 dump >/tmp/dump-before
bad_patch() {
	out=$(ctl patch /tmp/patch-bad 2>&1)
	case $out in "error NOT_ALLOWED"*) ;; *)
		echo "patch outside the pools: $out"
		return 1
		;;
	esac
	wg show wg0 dump | cmp -s /tmp/dump-before - || { echo "the dump changed"; return 1; }
}
check "patch outside the peer networks: NOT_ALLOWED, nothing written" bad_patch

# One peer whose 256 allowed IPs (the agent's maximum) take several netlink
# messages each way: SET continues the peer without REPLACE_ALLOWEDIPS, the
# dump splits it and the agent merges it back.
BIG=$(agentctl genpeers 1 10.77.130.0/24 fd77:0:0:4::/64 4 | awk "$AWK_GET"'{ print $1, get("psk=") }')
echo "+ $BIG allowed=$(allowed_list 56 200 1)" >/tmp/patch-big
apply_patch /tmp/set2 /tmp/patch-big >/tmp/set2b
check "patch: a peer with 256 allowed IPs (split netlink messages)" patch_ok /tmp/patch-big
check "wg show wg0 dump has the 256 allowed IPs" dump_is /tmp/set2b

# --- a tunnel: wg1 in netns b, through the loopback of the init netns --------
wg genkey >/tmp/wg1.key
WG1=$(wg pubkey </tmp/wg1.key)
tunnel_up() {
	$IP netns add b &&
		$IP link add wg1 type wireguard &&
		wg set wg1 private-key /tmp/wg1.key listen-port 51821 peer "$(wg show wg0 public-key)" \
			endpoint 127.0.0.1:51820 allowed-ips 10.77.0.1/32,fd77::1/128 &&
		$IP link set wg1 netns b &&
		$IP -n b link set lo up &&
		$IP -n b addr add 10.77.255.254/16 dev wg1 &&
		$IP -n b addr add fd77:0:0:ff::fe/48 dev wg1 nodad &&
		$IP -n b link set wg1 up
}
check "wg1 in netns b" tunnel_up
echo "+ $WG1 allowed=10.77.255.254/32,fd77:0:0:ff::fe/128" >/tmp/patch2
apply_patch /tmp/set2b /tmp/patch2 >/tmp/set3
check "patch: wg1's peer" patch_ok /tmp/patch2
check "wg show wg0 dump has wg1's peer" dump_is /tmp/set3
check "ping from netns b through wg1 to wg0 (IPv4)" $IP netns exec b ping -c 3 -w 60 10.77.0.1
check "ping from netns b through wg1 to wg0 (IPv6)" $IP netns exec b ping -6 -c 2 -w 60 fd77::1

stats_ok() {
	ctl stats >/tmp/stats || return 1
	n=$(wc -l </tmp/set3)
	[ "$(wc -l </tmp/stats)" -eq "$n" ] || { echo "$(wc -l </tmp/stats) stats lines, $n peers"; return 1; }
	# PUBKEY RX TX LATEST_HANDSHAKE ENDPOINT
	awk -v k="$WG1" '$1 == k && $2 > 0 && $3 > 0 && $4 > 0 && $5 == "127.0.0.1:51821" { f = 1 }
		END { exit !f }' /tmp/stats || { grep "$WG1" /tmp/stats; echo "(no traffic/handshake/endpoint for wg1's peer)"; return 1; }
	awk 'NF != 5 { exit 1 }' /tmp/stats || { echo "malformed:"; head -n 3 /tmp/stats; return 1; }
}
check "stats: one line per peer, wg1's with traffic, handshake and endpoint" stats_ok

# --- full sync with changes, then the same again (writes nothing) -------------
{
	sed -n '4,$p' /tmp/set3 | awk -v big="${BIG%% *}" -v al="$(allowed_list 30 150 100)" "$AWK_GET"'
		NR == 20 { print $1, get("psk="), "keepalive=10", get("allowed="); next }
		NR == 21 { print $1, get("keepalive="), get("allowed="); next }
		$1 == big { print $1, get("psk="), "allowed=" al; next }
		{ print }'
	agentctl genpeers 3 10.77.129.0/24 fd77:0:0:2::/64 3
} >/tmp/set4
check "full sync: 3 removed, 3 added, keepalive set, PSK cleared, 256 allowed IPs replaced by 180" \
	sync_ok 2 /tmp/set4
check "wg show wg0 dump is the new set" dump_is /tmp/set4
$IP netns exec b ping -c 1 -w 30 10.77.0.1 >/dev/null 2>&1
wg show wg0 dump >/tmp/dump-before
check "the same full sync again" sync_ok 3 /tmp/set4
wg show wg0 dump >/tmp/dump-after
check "no-op full sync: handshakes, endpoints, counters untouched" \
	dump_untouched /tmp/dump-before /tmp/dump-after
check "the agent logged the no-op: 0 added, 0 changed, 0 removed" \
	grep -q 'generation 3: 0 added, 0 changed, 0 removed$' /tmp/agent.log
check "the tunnel still works" $IP netns exec b ping -c 1 -w 30 10.77.0.1

# --- restart: the existing link, the kernel as the state ----------------------
check "agent stops on SIGTERM with status 0" stop_agent
check "wg0 is still there" $IP link show wg0
restart() {
	start_agent && hello_has backend=kernel interface=wg0 peers="$(wc -l </tmp/set4)" peers_generation=0
}
check "agent restarts on the existing wg0 (kernel backend, the peers kept)" restart
wg show wg0 dump >/tmp/dump-before
check "full sync after the restart" sync_ok 1 /tmp/set4
wg show wg0 dump >/tmp/dump-after
check "it wrote nothing" dump_untouched /tmp/dump-before /tmp/dump-after
check "the agent logged it: 0 added, 0 changed, 0 removed" \
	grep -q 'generation 1: 0 added, 0 changed, 0 removed$' /tmp/agent.log
check "agent stops again with status 0" stop_agent

# A config naming a link that is not WireGuard (lo, by mistake) must leave it
# as it is: the kernel has WireGuard here, so only the link-kind check stops it.
sed -e 's/^interface = .*/interface = lo/' "$CONF" >/tmp/lo.conf
$IP -o addr show dev lo >/tmp/lo-before
lo_refused() {
	rc=0
	timeout 20 /opt/wiregui-agent -c /tmp/lo.conf >/tmp/lo.log 2>&1 || rc=$?
	$IP -o addr show dev lo >/tmp/lo-after
	[ "$rc" -eq 1 ] && cmp -s /tmp/lo-before /tmp/lo-after || {
		echo "exit $rc"
		cat /tmp/lo.log
		diff /tmp/lo-before /tmp/lo-after
		return 1
	}
}
check "an agent configured for lo refuses to start and leaves lo untouched" lo_refused

if [ "$failed" -ne 0 ]; then
	echo "VMTAP # agent log (last 60 lines):"
	tail -n 60 /tmp/agent.log | diag 60
fi
sed 's/^/VMLOG /' /tmp/agent.log
exit "$failed"
GUEST

# --- build the initramfs and boot it -------------------------------------------
root=$T/root
if ! vm_root_new "$root" ||
	! vm_add_bin "$root" "$agent" /opt/wiregui-agent ||
	! vm_add_bin "$root" "$agentctl" /opt/agentctl ||
	! vm_add_file "$root" "$src/tests/lib/peers.sh" /peers.sh ||
	! vm_add_file "$root" "$T/test.sh" /test.sh; then
	tap "initramfs with the agent ($VM_ERROR)" 1
	tap_done
	exit
fi
vm_add_env "$root" VM_PEERS "${WIREGUI_VM_PEERS:-300}"
if $asan; then
	# The sanitizers as tests/run sets them; the guest has no symbolizer.
	vm_add_env "$root" ASAN_OPTIONS "${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
	vm_add_env "$root" UBSAN_OPTIONS "${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
	vm_add_env "$root" LSAN_OPTIONS "${LSAN_OPTIONS:-}"
fi
if ! vm_pack "$root" "$T/initramfs.cpio.gz"; then
	tap "initramfs packed" 1
	tap_done
	exit
fi
echo "# kernel $VM_KV ($VM_KERNEL)$($asan && echo ', ASan agent')"

start=$SECONDS
rc=0
vm_run "$T/initramfs.cpio.gz" "$T/vm.log" "${WIREGUI_VM_TIMEOUT:-600}" || rc=$?
echo "# VM ran $((SECONDS - start)) s, VM_RC=$rc"

while IFS= read -r line; do
	case $line in
	"VMTAP ok "*) tap "${line#VMTAP ok }" 0 ;;
	"VMTAP not ok "*) tap "${line#VMTAP not ok }" 1 ;;
	"VMTAP # "*) echo "# ${line#VMTAP # }" ;;
	esac
done < <(grep -ao 'VMTAP .*' "$T/vm.log")
# The agent's log, which the guest prints at the end.
sed -n 's/^VMLOG //p' "$T/vm.log" >"$T/agent.log"

tap_diagnose() {
	echo "# console log, last 40 lines:"
	grep -av -e 'VMTAP ' -e '^VMLOG ' "$T/vm.log" | tail -n 40 | sed 's/^/#   /'
}
case $rc in
0) tap "guest script finished" 0 ;;
124) tap "guest script finished (the VM timed out)" 1 ;;
99) tap "guest script finished (no VM_RC marker: panic or crash)" 1 ;;
*) tap "guest script finished (VM_RC=$rc: $rc failed)" $((tap_failed > 0 ? 0 : 1)) ;;
esac
tap_done
