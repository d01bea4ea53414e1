#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The agent's nftables firewall with real packets. Four namespaces:
#
#   client 1 (wireguard-go, 10.3.2.2 fd00::3:2:2) ---\            veth
#                                                    server ------------- target
#   client 2 (wireguard-go, 10.3.2.3 fd00::3:2:3) ---/  (agent, its      192.0.2.10-15
#                                                       wireguard-go,    2001:db8::10-14
#                                                       forwarding)      socat listeners
#
# The clients reach the server over veths and the tunnel; the server routes
# to the target. One case at a time, set by a full sync (agentctl fwsync) or
# a patch (fwpatch), is shown with TCP connections, UDP datagrams and pings:
# accept and drop rules, port ranges, priority order, default-deny, user
# rules before global ones, runs of rules that become set lookups, client
# isolation, disabling and removing a user (an established TCP flow
# included), masquerade, IPv6. A probe that must not pass goes to a port
# that has a listener and must time out (refused or unreachable is another
# failure). TAP output, root only.
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
netns_require_cmd nft socat ss
export WG_COLOR_MODE=never

id=$$
ns_s=wiregui-$id-fws
ns_t=wiregui-$id-fwt
ns_1=wiregui-$id-fc1
ns_2=wiregui-$id-fc2
if_s=wgf${id}s
if_1=wgf${id}a
if_2=wgf${id}b
table=wiregui_fwtest
T4=192.0.2.10
T6=2001:db8::10
C1=10.3.2.2
C1_6=fd00::3:2:2
C2=10.3.2.3
C2_6=fd00::3:2:3
T=$(mktemp -d /tmp/wiregui-fw-traffic.XXXXXX)
mkdir "$T/agent"
sock=$T/agent/agent.sock
last=
gen=0
flow_pid=

cleanup() {
	if [[ -n $flow_pid ]]; then
		kill "$flow_pid" 2>/dev/null
		wait "$flow_pid" 2>/dev/null
	fi
	netns_cleanup
	test_scratch_done "$T"
}
test_traps

tap_diagnose() {
	printf '%s\n' "$last" | head -n 20 | sed 's/^/#   last: /'
	sed 's/^/#   spec: /' "$T/fw.last" 2>/dev/null
	netns_nft "$ns_s" list table inet "$table" 2>&1 | head -n 60 | sed 's/^/#   nft: /'
	tail -n 5 "$T/agent.log" 2>/dev/null | sed 's/^/#   agent: /'
}

netns_agent_conf "$sock" "$if_s" "$T" "10.3.2.1/24, fd00::3:2:1/120" "$table" \
	agent.log_level=debug wireguard.mtu=1380 wireguard.userspace_implementation=wireguard-go \
	>"$T/agent.conf"

# ---- helpers ----------------------------------------------------------------
actl() { "$agentctl_bin" -s "$sock" "$@"; }

# fwsync LINE...: a full sync of these spec lines (the next generation),
# answered "ok"; fwpatch LINE...: one patch, answered "ok"
fwsync() {
	gen=$((gen + 1))
	printf '%s\n' "$@" >"$T/fw.last"
	last=$(actl fwsync "$gen" "$T/fw.last" 2>&1)
	[[ $last == ok ]]
}
fwpatch() {
	printf '%s\n' "$@" >"$T/fw.last"
	last=$(actl fwpatch "$T/fw.last" 2>&1)
	[[ $last == ok ]]
}
hello_is() { # KEY VALUE
	last="$1=$(actl hello 2>&1 | sed -n "s/^$1=//p")"
	[[ $last == "$1=$2" ]]
}

hostport() { # ADDR PORT: socat's form
	if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi
}
# probe NS tcp|udp|icmp ADDR [PORT]: prints open, dropped (no answer in
# 1 s), refused, or what else happened
probe() {
	local ns=$1 proto=$2 addr=$3 port=${4:-} out token
	case $proto in
	tcp)
		out=$(ip netns exec "$ns" socat -T2 STDIO \
			"TCP:$(hostport "$addr" "$port"),connect-timeout=1" </dev/null 2>&1)
		case $out in
		"tcp $port") echo open ;;
		*"timed out"*) echo dropped ;;
		*"refused"*) echo refused ;;
		*) echo "other: ${out//$'\n'/ }" ;;
		esac
		;;
	udp)
		token=udp-$RANDOM$RANDOM
		out=$(echo "$token" | ip netns exec "$ns" socat -T1 STDIO \
			"UDP:$(hostport "$addr" "$port")" 2>&1)
		case $out in
		"$token") echo open ;;
		"") echo dropped ;;
		*"refused"*) echo refused ;;
		*) echo "other: ${out//$'\n'/ }" ;;
		esac
		;;
	icmp)
		if ip netns exec "$ns" ping -q -n -c 1 -W 1 "$addr" >"$T/ping.out" 2>&1; then
			echo open
		elif grep -q ' 0 received' "$T/ping.out" && ! grep -q 'errors' "$T/ping.out"; then
			echo dropped
		else
			echo "other: $(tr '\n' ' ' <"$T/ping.out")"
		fi
		;;
	esac
}
# is WANT NS PROTO ADDR [PORT...]: every port (or the one ping) gets WANT.
# A probe that should pass is tried 3 times: a WireGuard handshake may hold
# its first packet.
is() {
	local want=$1 ns=$2 proto=$3 addr=$4 port got
	shift 4
	(($# > 0)) || set -- ''
	last=
	for port in "$@"; do
		for _ in 1 2 3; do
			got=$(probe "$ns" "$proto" "$addr" "$port")
			[[ $want == open && $got != open ]] || break
		done
		last+="${ns##*-} $proto $addr${port:+ port $port}: $got (want $want)"$'\n'
		[[ $got == "$want" ]] || return 1
	done
}
open() { is open "$@"; }
dropped() { is dropped "$@"; }

# the kernel's table in nft's JSON form, and what is in it
table_json() { netns_nft "$ns_s" -j list table inet "$table"; }
table_exists() { last=$(table_json 2>&1); }
# set_has N: some set of the table has N elements
set_has() { # N
	last=$(table_json 2>&1 | jq -c '[.nftables[] | select(.set) | .set | {name, n: (.elem // [] | length)}]')
	jq -e --argjson n "$1" 'any(.[]; .n == $n)' <<<"$last" >/dev/null
}

# ---- namespaces ----------------------------------------------------------------
setup() {
	netns_add "$ns_s" && netns_add "$ns_t" && netns_add "$ns_1" && netns_add "$ns_2" &&
		netns_veth "$ns_s" "vf${id}a" 10.201.0.1/24 "$ns_1" "vf${id}A" 10.201.0.2/24 &&
		netns_veth "$ns_s" "vf${id}b" 10.202.0.1/24 "$ns_2" "vf${id}B" 10.202.0.2/24 &&
		netns_veth "$ns_s" "vf${id}t" 192.0.2.1/24 "$ns_t" "vf${id}T" $T4/24 &&
		ip -n "$ns_s" addr add 2001:db8::1/64 dev "vf${id}t" nodad &&
		ip -n "$ns_t" addr add $T6/64 dev "vf${id}T" nodad &&
		netns_forwarding "$ns_s" || return 1
	local i
	for i in 11 12 13 14 15; do
		ip -n "$ns_t" addr add "192.0.2.$i/24" dev "vf${id}T" || return 1
	done
	for i in 11 12 13 14; do
		ip -n "$ns_t" addr add "2001:db8::$i/64" dev "vf${id}T" nodad || return 1
	done
	routes_back
}
# the target's routes to the pools, through the server
routes_back() {
	ip -n "$ns_t" route replace 10.3.2.0/24 via 192.0.2.1 &&
		ip -n "$ns_t" route replace fd00::3:2:0/120 via 2001:db8::1
}
no_routes_back() {
	ip -n "$ns_t" route del 10.3.2.0/24 &&
		ip -n "$ns_t" route del fd00::3:2:0/120
}
if ! setup; then
	echo "Bail out! cannot set up the namespaces"
	exit 1
fi

tcp_ports=(22 80 443 999 1000 1500 2000 2001 2500 8080 8001 8002 8003 8004 8005 8006 8007)
listening=true
for p in "${tcp_ports[@]}"; do
	netns_listen "$ns_t" tcp "$p" || listening=false
done
for p in 53 1500 2500; do
	netns_listen "$ns_t" udp "$p" || listening=false
done
netns_listen "$ns_t" tcpecho 9000 || listening=false
netns_listen "$ns_2" tcp 80 || listening=false
netns_listen "$ns_1" tcp 80 || listening=false
$listening || {
	echo "Bail out! cannot start the socat listeners"
	exit 1
}

# A table that is not the agent's: it must stay as it is.
netns_nft "$ns_s" -f - <<EOF
table inet decoy {
	chain forward { type filter hook forward priority 10; policy accept; counter; }
}
EOF
decoy_before=$(netns_nft "$ns_s" list table inet decoy | grep -v counter)

netns_track_wg "$ns_s" "$if_s"
if netns_kernel_wireguard; then
	echo "# the kernel has WireGuard: the test starts the server's wireguard-go itself"
	netns_wg_go "$ns_s" "$if_s" "$T/wg-server.log"
fi
check "agent starts in the server namespace" \
	netns_agent_start "$ns_s" "$T/agent.conf" "$T/agent.log" "$sock"
if [[ -z $agent_pid ]]; then
	tap_done
	exit 1
fi
server_pub=$(wg pubkey <"$T/private.key")

# the clients: wireguard-go, the server as their one peer for the pools and
# the target's networks
client_up() { # NS IF ADDR4 ADDR6 VETH_SERVER_ADDR KEYFILE
	netns_wg_go "$1" "$2" "$T/wg-$2.log" &&
		ip netns exec "$1" wg set "$2" private-key "$6" \
			peer "$server_pub" endpoint "$5:51820" \
			allowed-ips 10.3.2.0/24,fd00::3:2:0/120,192.0.2.0/24,2001:db8::/64 &&
		ip -n "$1" addr add "$3/24" dev "$2" &&
		ip -n "$1" addr add "$4/120" dev "$2" &&
		ip -n "$1" link set "$2" mtu 1380 up &&
		ip -n "$1" route add 192.0.2.0/24 dev "$2" &&
		ip -n "$1" route add 2001:db8::/64 dev "$2"
}
(umask 077 && wg genkey >"$T/c1.key" && wg genkey >"$T/c2.key")
{
	echo "$(wg pubkey <"$T/c1.key") allowed=$C1/32,$C1_6/128"
	echo "$(wg pubkey <"$T/c2.key") allowed=$C2/32,$C2_6/128"
} >"$T/peers"
last=$(actl sync 1 "$T/peers" 2>&1)
check "peers sync: the two clients" test "$last" = ok
if ! client_up "$ns_1" "$if_1" $C1 $C1_6 10.201.0.1 "$T/c1.key" ||
	! client_up "$ns_2" "$if_2" $C2 $C2_6 10.202.0.1 "$T/c2.key"; then
	echo "Bail out! cannot start the clients' wireguard-go"
	exit 1
fi

# ---- before any firewall sync --------------------------------------------------
tunnel_up() { [[ $(probe "$1" tcp "$2" 80) == open ]]; }
last="client 1 -> $T4 tcp 80 over the tunnel"
check "no firewall yet: client 1 reaches the target (TCP, IPv4)" netns_poll 20 tunnel_up "$ns_1" $T4
last="client 2 -> $T6 tcp 80 over the tunnel"
check "no firewall yet: client 2 reaches the target (TCP, IPv6)" netns_poll 20 tunnel_up "$ns_2" $T6
check "no firewall yet: client 1 pings client 2" open "$ns_1" icmp $C2

U1="user 1 active addr=$C1,$C1_6"
U2="user 2 active addr=$C2,$C2_6"
U1_OFF="user 1 disabled addr=$C1,$C1_6"

# ---- default accept, no rules ----------------------------------------------------
check "fwsync: default accept, two users, no rules: ok" \
	fwsync "settings default=accept isolation=off masq4=off masq6=off" "$U1" "$U2"
check "hello: nft_table is the configured one" hello_is nft_table "$table"
check "hello: firewall_generation=$gen" hello_is firewall_generation "$gen"
check "the table exists in the server namespace" table_exists
check "default accept: TCP 80, 443, 8080 pass" open "$ns_1" tcp $T4 80 443 8080
check "default accept: UDP 53, 1500 pass" open "$ns_1" udp $T4 53 1500
check "default accept: ping passes" open "$ns_1" icmp $T4
check "default accept: TCP 80 passes over IPv6" open "$ns_1" tcp $T6 80
check "default accept: ping passes over IPv6" open "$ns_1" icmp $T6

# ---- one drop rule ------------------------------------------------------------------
check "fwsync: user 1 drops TCP 80 to the target" \
	fwsync "settings default=accept" "$U1" "$U2" \
	"rule 101 user=1 prio=10 dst=$T4/32 proto=tcp ports=80 drop"
check "drop rule: client 1's TCP 80 is dropped" dropped "$ns_1" tcp $T4 80
check "drop rule: client 1's TCP 443 and 8080 pass" open "$ns_1" tcp $T4 443 8080
check "drop rule: client 1's UDP 53 passes" open "$ns_1" udp $T4 53
check "drop rule: client 1's ping passes" open "$ns_1" icmp $T4
check "drop rule: an IPv4 rule leaves IPv6 TCP 80 alone" open "$ns_1" tcp $T6 80
check "drop rule: client 2 (another user) still reaches TCP 80" open "$ns_2" tcp $T4 80

check "fwsync: user 1 drops UDP 1500 to the target" \
	fwsync "settings default=accept" "$U1" "$U2" \
	"rule 102 user=1 prio=10 dst=$T4/32 proto=udp ports=1500 drop"
check "UDP drop rule: UDP 1500 is dropped" dropped "$ns_1" udp $T4 1500
check "UDP drop rule: UDP 53 passes" open "$ns_1" udp $T4 53
check "UDP drop rule: TCP 1500 passes" open "$ns_1" tcp $T4 1500

check "fwsync: user 1 drops everything to the target's IPv6 address" \
	fwsync "settings default=accept" "$U1" "$U2" \
	"rule 103 user=1 prio=10 dst=$T6/128 drop"
check "IPv6 drop rule: TCP 80 and 443 to $T6 dropped" dropped "$ns_1" tcp $T6 80 443
check "IPv6 drop rule: ping6 dropped" dropped "$ns_1" icmp $T6
check "IPv6 drop rule: another v6 address of the target passes" open "$ns_1" icmp 2001:db8::11
check "IPv6 drop rule: IPv4 passes" open "$ns_1" tcp $T4 80

# ---- default-deny -----------------------------------------------------------------------
check "fwsync: default drop, no rules" fwsync "settings default=drop" "$U1" "$U2"
check "default drop: TCP 80, 443 dropped" dropped "$ns_1" tcp $T4 80 443
check "default drop: UDP 1500 dropped" dropped "$ns_1" udp $T4 1500
check "default drop: ping dropped" dropped "$ns_1" icmp $T4
check "default drop: IPv6 TCP 80 dropped" dropped "$ns_1" tcp $T6 80
check "default drop: ping6 dropped" dropped "$ns_1" icmp $T6
check "default drop: client 2 dropped too" dropped "$ns_2" tcp $T4 80

check "fwsync: default drop, user 1 accepts TCP 443" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 201 user=1 prio=10 dst=$T4/32 proto=tcp ports=443 accept"
check "accept rule: TCP 443 passes" open "$ns_1" tcp $T4 443
check "accept rule: exactly its port, TCP 80 and 8080 dropped" dropped "$ns_1" tcp $T4 80 8080
check "accept rule: exactly its protocol, UDP 1500 dropped" dropped "$ns_1" udp $T4 1500
check "accept rule: ping dropped" dropped "$ns_1" icmp $T4
check "accept rule: exactly its address, IPv6 TCP 443 dropped" dropped "$ns_1" tcp $T6 443
check "accept rule: exactly its user, client 2's TCP 443 dropped" dropped "$ns_2" tcp $T4 443

check "fwsync: default drop, user 1 accepts anything to $T4 and $T6" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 202 user=1 prio=10 dst=$T4/32 accept" "rule 203 user=1 prio=10 dst=$T6/128 accept"
check "any-protocol accept: TCP 80 passes" open "$ns_1" tcp $T4 80
check "any-protocol accept: UDP 1500 passes" open "$ns_1" udp $T4 1500
check "any-protocol accept: ping passes" open "$ns_1" icmp $T4
check "any-protocol accept: IPv6 TCP 80 passes" open "$ns_1" tcp $T6 80
check "any-protocol accept: ping6 passes" open "$ns_1" icmp $T6
check "any-protocol accept: another address of the target dropped" dropped "$ns_1" icmp 192.0.2.11

# ---- port ranges -----------------------------------------------------------------------
check "fwsync: default drop, user 1 accepts TCP and UDP 1000-2000" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 301 user=1 prio=10 dst=$T4/32 proto=tcp ports=1000-2000 accept" \
	"rule 302 user=1 prio=10 dst=$T4/32 proto=udp ports=1000-2000 accept"
check "accept range: TCP 1000, 1500, 2000 pass (ends included)" open "$ns_1" tcp $T4 1000 1500 2000
check "accept range: TCP 999, 2001, 2500 dropped" dropped "$ns_1" tcp $T4 999 2001 2500
check "accept range: UDP 1500 passes" open "$ns_1" udp $T4 1500
check "accept range: UDP 2500 and 53 dropped" dropped "$ns_1" udp $T4 2500 53

check "fwsync: default accept, user 1 drops TCP and UDP 1000-2000" \
	fwsync "settings default=accept" "$U1" "$U2" \
	"rule 303 user=1 prio=10 dst=192.0.2.0/24 proto=tcp ports=1000-2000 drop" \
	"rule 304 user=1 prio=10 dst=192.0.2.0/24 proto=udp ports=1000-2000 drop"
check "drop range: TCP 1000, 1500, 2000 dropped" dropped "$ns_1" tcp $T4 1000 1500 2000
check "drop range: TCP 999, 2001, 2500 pass" open "$ns_1" tcp $T4 999 2001 2500
check "drop range: UDP 1500 dropped" dropped "$ns_1" udp $T4 1500
check "drop range: UDP 2500 passes" open "$ns_1" udp $T4 2500

# ---- priority order ------------------------------------------------------------------------
# Listed against their priority order, so that only the priority can order them.
check "fwsync: accept 192.0.2.0/24 at 20, drop TCP 80 at 10, default drop" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 401 user=1 prio=20 dst=192.0.2.0/24 accept" \
	"rule 402 user=1 prio=10 dst=$T4/32 proto=tcp ports=80 drop"
check "priority: the drop at 10 wins for TCP 80" dropped "$ns_1" tcp $T4 80
check "priority: the accept at 20 lets TCP 443 and ping through" open "$ns_1" tcp $T4 443
check "priority: ping passes through the accept at 20" open "$ns_1" icmp $T4

check "fwpatch: user 1 with the priorities swapped (accept 10, drop 20)" \
	fwpatch "$U1" \
	"rule 401 user=1 prio=10 dst=$T4/32 proto=tcp ports=80 accept" \
	"rule 402 user=1 prio=20 dst=192.0.2.0/24 drop"
check "priority: now the accept at 10 wins for TCP 80" open "$ns_1" tcp $T4 80
check "priority: the drop at 20 takes TCP 443" dropped "$ns_1" tcp $T4 443
check "priority: and ping" dropped "$ns_1" icmp $T4

# ---- user rules before global rules ------------------------------------------------------------
check "fwsync: global drop 192.0.2.0/24 at 1, user 1 accepts TCP 80 at 100" \
	fwsync "settings default=accept" "$U1" "$U2" \
	"rule 501 prio=1 dst=192.0.2.0/24 drop" \
	"rule 502 user=1 prio=100 dst=$T4/32 proto=tcp ports=80 accept"
check "user rule first, whatever the priority: client 1's TCP 80 passes" open "$ns_1" tcp $T4 80
check "global drop: client 1's TCP 443 dropped" dropped "$ns_1" tcp $T4 443
check "global drop: client 2's TCP 80 dropped" dropped "$ns_2" tcp $T4 80
check "global drop: client 2's ping dropped" dropped "$ns_2" icmp $T4
check "global drop: IPv6 untouched for client 2" open "$ns_2" tcp $T6 80

check "fwsync: global accept TCP 80 at 1, user 1 drops TCP 80 at 100, default drop" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 503 prio=1 dst=$T4/32 proto=tcp ports=80 accept" \
	"rule 504 user=1 prio=100 dst=$T4/32 proto=tcp ports=80 drop"
check "user drop first: client 1's TCP 80 dropped" dropped "$ns_1" tcp $T4 80
check "global accept: client 2's TCP 80 passes" open "$ns_2" tcp $T4 80
check "default drop after the global rules: client 2's TCP 443 dropped" dropped "$ns_2" tcp $T4 443

check "fwpatch: add a global drop for TCP 80 at 0" fwpatch "rule 505 prio=0 dst=$T4/32 proto=tcp ports=80 drop"
check "patched global rule: client 2's TCP 80 dropped at once" dropped "$ns_2" tcp $T4 80
check "fwpatch: remove it" fwpatch "- rule 505"
check "removed global rule: client 2's TCP 80 passes again" open "$ns_2" tcp $T4 80

# ---- runs of rules: set lookups ---------------------------------------------------------------
check "fwsync: default drop, user 1 accepts 6 TCP ports, 4 over IPv6; 4 global host accepts" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 601 user=1 prio=10 dst=$T4/32 proto=tcp ports=8001 accept" \
	"rule 602 user=1 prio=11 dst=$T4/32 proto=tcp ports=8002 accept" \
	"rule 603 user=1 prio=12 dst=$T4/32 proto=tcp ports=8003 accept" \
	"rule 604 user=1 prio=13 dst=$T4/32 proto=tcp ports=8004 accept" \
	"rule 605 user=1 prio=14 dst=$T4/32 proto=tcp ports=8005 accept" \
	"rule 606 user=1 prio=15 dst=$T4/32 proto=tcp ports=8006 accept" \
	"rule 611 user=1 prio=20 dst=$T6/128 proto=tcp ports=8001 accept" \
	"rule 612 user=1 prio=21 dst=$T6/128 proto=tcp ports=8002 accept" \
	"rule 613 user=1 prio=22 dst=$T6/128 proto=tcp ports=8003 accept" \
	"rule 614 user=1 prio=23 dst=$T6/128 proto=tcp ports=8004 accept" \
	"rule 621 prio=10 dst=192.0.2.11/32 accept" \
	"rule 622 prio=11 dst=192.0.2.12/32 accept" \
	"rule 623 prio=12 dst=192.0.2.13/32 accept" \
	"rule 624 prio=13 dst=192.0.2.14/32 accept"
check "the table has a set of 6 elements (the 6 TCP ports)" set_has 6
check "the table has a set of 4 elements" set_has 4
check "set run: TCP 8001-8006 pass" open "$ns_1" tcp $T4 8001 8002 8003 8004 8005 8006
check "set run: TCP 8007 and 80 dropped" dropped "$ns_1" tcp $T4 8007 80
check "set run: UDP 1500 dropped" dropped "$ns_1" udp $T4 1500
check "IPv6 set run: TCP 8001-8004 pass" open "$ns_1" tcp $T6 8001 8002 8003 8004
check "IPv6 set run: TCP 8005 dropped" dropped "$ns_1" tcp $T6 8005
check "set run: client 2 gets none of user 1's ports" dropped "$ns_2" tcp $T4 8001
for i in 11 12 13 14; do
	check "global host set: client 2 pings 192.0.2.$i" open "$ns_2" icmp "192.0.2.$i"
done
check "global host set: 192.0.2.15 dropped" dropped "$ns_2" icmp 192.0.2.15
check "global host set: $T4 dropped" dropped "$ns_2" icmp $T4

check "fwsync: default drop, 4 port-range accepts (TCP and UDP)" \
	fwsync "settings default=drop" "$U1" "$U2" \
	"rule 631 user=1 prio=10 dst=$T4/32 proto=udp ports=50-60 accept" \
	"rule 632 user=1 prio=11 dst=$T4/32 proto=udp ports=1400-1600 accept" \
	"rule 633 user=1 prio=12 dst=$T4/32 proto=udp ports=3000-3100 accept" \
	"rule 634 user=1 prio=13 dst=$T4/32 proto=udp ports=4000-4100 accept" \
	"rule 641 user=1 prio=20 dst=$T4/32 proto=tcp ports=20-30 accept" \
	"rule 642 user=1 prio=21 dst=$T4/32 proto=tcp ports=1400-1600 accept" \
	"rule 643 user=1 prio=22 dst=$T4/32 proto=tcp ports=3000-3100 accept" \
	"rule 644 user=1 prio=23 dst=$T4/32 proto=tcp ports=8003-8005 accept"
check "range set run: UDP 53 and 1500 pass" open "$ns_1" udp $T4 53 1500
check "range set run: UDP 2500 dropped" dropped "$ns_1" udp $T4 2500
check "range set run: TCP 22, 1500, 8003, 8005 pass" open "$ns_1" tcp $T4 22 1500 8003 8005
check "range set run: TCP 80, 2500, 8002, 8006 dropped" dropped "$ns_1" tcp $T4 80 2500 8002 8006

# ---- client isolation -----------------------------------------------------------------------------
check "fwsync: isolation on, default accept" fwsync "settings default=accept isolation=on" "$U1" "$U2"
check "isolation: client 1 cannot ping client 2" dropped "$ns_1" icmp $C2
check "isolation: nor over IPv6" dropped "$ns_1" icmp $C2_6
check "isolation: nor reach its TCP 80" dropped "$ns_1" tcp $C2 80
check "isolation: client 2 cannot ping client 1" dropped "$ns_2" icmp $C1
check "isolation: the target is still reachable" open "$ns_1" tcp $T4 80
# A reply of a flow the rules let through passes (ct direction reply): one
# rule one way is enough, and it opens nothing the other way.
check "fwsync: isolation on, default drop, user 1 may reach client 2's TCP 80 and ping it" \
	fwsync "settings default=drop isolation=on" "$U1" "$U2" \
	"rule 711 user=1 prio=10 dst=$C2/32 proto=tcp ports=80 accept" \
	"rule 712 user=1 prio=11 dst=$C2/32 accept"
check "one-way rule: client 1 reaches client 2's TCP 80 (the replies pass)" open "$ns_1" tcp $C2 80
check "one-way rule: client 1 pings client 2" open "$ns_1" icmp $C2
check "one-way rule: client 2 cannot ping client 1" dropped "$ns_2" icmp $C1
check "one-way rule: nor reach client 1's TCP 80" dropped "$ns_2" tcp $C1 80
check "fwsync: isolation on, each user accepts the other's addresses" \
	fwsync "settings default=accept isolation=on" "$U1" "$U2" \
	"rule 701 user=1 prio=10 dst=$C2/32 accept" "rule 702 user=2 prio=10 dst=$C1/32 accept" \
	"rule 703 user=1 prio=10 dst=$C2_6/128 accept" "rule 704 user=2 prio=10 dst=$C1_6/128 accept"
check "isolation with accept rules: client 1 pings client 2" open "$ns_1" icmp $C2
check "isolation with accept rules: and reaches its TCP 80" open "$ns_1" tcp $C2 80
check "isolation with accept rules: IPv6 too" open "$ns_1" icmp $C2_6
check "fwsync: isolation on, a global accept for the pool before the isolation drops" \
	fwsync "settings default=accept isolation=on" "$U1" "$U2" \
	"rule 705 prio=10 dst=10.3.2.0/24 accept"
check "global accept: client 1 pings client 2" open "$ns_1" icmp $C2
check "global accept: IPv6 still isolated" dropped "$ns_1" icmp $C2_6
check "fwsync: isolation off" fwsync "settings default=accept isolation=off" "$U1" "$U2"
check "isolation off: client 1 pings client 2" open "$ns_1" icmp $C2
check "isolation off: over IPv6 too" open "$ns_1" icmp $C2_6

# ---- disabling and removing a user ------------------------------------------------------------------
# A TCP connection from client 1 to the target's echo port, open across the patches.
coproc FLOW { exec ip netns exec "$ns_1" socat -T60 STDIO "TCP:$T4:9000,connect-timeout=2"; }
# shellcheck disable=SC2153 # coproc sets FLOW_PID
flow_pid=$FLOW_PID
flow_say() { echo "$1" >&"${FLOW[1]}"; }
flow_hears() { # WORD SECONDS: the echo comes back within SECONDS
	local line
	last="waiting $2 s for '$1' on the established flow"
	read -r -t "$2" line <&"${FLOW[0]}" || return 1
	last+=": read '$line'"
	[[ $line == "$1" ]]
}
flow_silent() { # SECONDS: nothing comes back
	local line
	last="established flow: expected silence"
	! read -r -t "$1" line <&"${FLOW[0]}" || {
		last+=", read '$line'"
		return 1
	}
}
flow_say one
check "established TCP flow: echo before the disable" flow_hears one 5
check "fwpatch: user 1 disabled" fwpatch "$U1_OFF"
flow_say two
check "disabled: the established flow's data is dropped at once" flow_silent 2
check "disabled: new TCP 80 dropped" dropped "$ns_1" tcp $T4 80
check "disabled: ping dropped" dropped "$ns_1" icmp $T4
check "disabled: IPv6 dropped" dropped "$ns_1" tcp $T6 80
check "disabled: client 2 (active) still reaches the target" open "$ns_2" tcp $T4 80
check "fwpatch: user 1 active again" fwpatch "$U1"
check "re-enabled: the flow's held data arrives (retransmitted)" flow_hears two 15
flow_say three
check "re-enabled: the same flow echoes again" flow_hears three 5
check "re-enabled: new TCP 80 passes" open "$ns_1" tcp $T4 80
check "re-enabled: IPv6 passes" open "$ns_1" tcp $T6 80
kill "$flow_pid" 2>/dev/null
wait "$flow_pid" 2>/dev/null
flow_pid=

check "fwpatch: remove user 2" fwpatch "- user 2"
check "removed user: client 2's address is no device address, TCP 80 dropped" dropped "$ns_2" tcp $T4 80
check "removed user: its ping6 dropped" dropped "$ns_2" icmp $T6
check "removed user: client 1 unaffected" open "$ns_1" tcp $T4 80
check "fwpatch: user 2 back" fwpatch "$U2"
check "user back: client 2's TCP 80 passes" open "$ns_2" tcp $T4 80

# ---- masquerade ------------------------------------------------------------------------------------
no_routes_back
check "fwsync: masquerade off, the target has no route to the pools" \
	fwsync "settings default=accept masq4=off masq6=off" "$U1" "$U2"
check "masquerade off: no answer from the target (IPv4)" dropped "$ns_1" tcp $T4 80
check "masquerade off: nor IPv6" dropped "$ns_1" tcp $T6 80
check "fwsync: masquerade IPv4 on" fwsync "settings default=accept masq4=on masq6=off" "$U1" "$U2"
check "masq4: the target answers over IPv4 (TCP)" open "$ns_1" tcp $T4 80
check "masq4: and ping" open "$ns_1" icmp $T4
check "masq4: IPv6 still unanswered" dropped "$ns_1" tcp $T6 80
check "fwsync: masquerade IPv6 on too" fwsync "settings default=accept masq4=on masq6=on" "$U1" "$U2"
check "masq6: the target answers over IPv6" open "$ns_1" tcp $T6 80
check "masq6: and client 2's ping6" open "$ns_2" icmp $T6
check "masquerade: a drop rule still applies before it" \
	fwsync "settings default=accept masq4=on masq6=on" "$U1" "$U2" \
	"rule 801 user=1 prio=10 dst=$T4/32 proto=tcp ports=80 drop"
check "masquerade with a drop rule: TCP 80 dropped" dropped "$ns_1" tcp $T4 80
check "masquerade with a drop rule: TCP 443 passes" open "$ns_1" tcp $T4 443
routes_back
check "masquerade off again, routes back: traffic keeps its source" \
	fwsync "settings default=accept" "$U1" "$U2"
check "routes back: the target answers" open "$ns_1" tcp $T4 80

# ---- the rest of the server's ruleset -------------------------------------------------------------
decoy_after=$(netns_nft "$ns_s" list table inet decoy | grep -v counter)
last="before: $decoy_before"$'\n'"after: $decoy_after"
check "another table of the server namespace is untouched" test "$decoy_before" = "$decoy_after"
last=$(netns_nft "$ns_s" list tables 2>&1 | sort)
check "the namespace has exactly the two tables" \
	test "$last" = "table inet decoy"$'\n'"table inet $table"
check "the agent is still running" kill -0 "$agent_pid"

tap_done
