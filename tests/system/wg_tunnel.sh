#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# wiregui-agent drives wireguard-go in a server namespace; a client namespace
# runs its own wireguard-go, set up with wg and ip. A real tunnel and real
# pings; full syncs that write nothing when nothing differs; patches; a
# restart; bad requests answered with typed errors. TAP output, root only.
# Waits are polls with a generous limit, never assertions on timing.
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
export WG_COLOR_MODE=never

id=$$
ns_s=wiregui-$id-srv
ns_c=wiregui-$id-cli
if_s=wgt${id}s
if_c=wgt${id}c
T=$(mktemp -d /tmp/wiregui-wg-tunnel.XXXXXX)
# The agent makes its socket's directory 0750: keep it away from $T.
mkdir "$T/agent"
sock=$T/agent/agent.sock
last=

cleanup() {
	netns_cleanup
	test_scratch_done "$T"
}
test_traps

tap_diagnose() {
	printf '%s\n' "$last" | sed 's/^/#   last: /'
	tail -n 8 "$T/agent.log" 2>/dev/null | sed 's/^/#   agent: /'
}

netns_agent_conf "$sock" "$if_s" "$T" "10.3.2.1/24, fd00::3:2:1/120" wiregui_test \
	agent.log_level=debug agent.max_peers=8 wireguard.mtu=1380 \
	wireguard.userspace_implementation=wireguard-go >"$T/agent.conf"

# ---- helpers ----------------------------------------------------------------
actl() { "$agentctl_bin" -s "$sock" "$@"; }
wg_s() { ip netns exec "$ns_s" wg "$@"; }
wg_c() { ip netns exec "$ns_c" wg "$@"; }

hello() { actl hello >"$T/hello" 2>&1; }
hello_is() { # KEY VALUE: in the last hello
	last="$1=$(sed -n "s/^$1=//p" "$T/hello")"
	[[ $last == "$1=$2" ]]
}
# sync GEN FILE / patch FILE answered "ok"
sync_ok() {
	last=$(actl sync "$@" 2>&1)
	[[ $last == ok ]]
}
patch_ok() {
	last=$(actl patch "$@" 2>&1)
	[[ $last == ok ]]
}
# REGEX ARGS...: agentctl exits 1 (the agent refused, the connection kept
# serving a Ping) and prints a line matching REGEX.
refused() {
	local re=$1 rc=0
	shift
	last=$(actl "$@" 2>&1) || rc=$?
	last="exit $rc: $last"
	[[ $rc -eq 1 && $last =~ $re ]]
}
# The server's wg dump line of a peer, fields: public-key preshared-key endpoint
# allowed-ips latest-handshake rx tx keepalive.
peer_line() { wg_s show "$if_s" dump | awk -F'\t' -v k="$1" 'NR > 1 && $1 == k'; }
peer_field() { # KEY N
	peer_line "$1" | cut -f "$2"
}
peer_field_is() { # KEY N VALUE
	last=$(peer_field "$1" "$2")
	[[ $last == "$3" ]]
}
sorted_list() { tr ',' '\n' | sort | paste -sd, -; }
peer_allowed_is() { # KEY LIST
	last=$(peer_field "$1" 4 | sorted_list)
	[[ $last == "$(sorted_list <<<"$2")" ]]
}
server_peers_are() { # KEY... (exactly these, any order)
	last=$(wg_s show "$if_s" peers | sort | paste -sd' ' -)
	[[ $last == "$(printf '%s\n' "$@" | sort | paste -sd' ' -)" ]]
}
has_peer() { wg_s show "$if_s" peers | grep -xF "$1" >/dev/null; }
ping_once() { ip netns exec "$ns_c" ping -q -c 1 -W 1 "$1" >/dev/null 2>&1; }
ping_works() { # ADDR: polled, the first packets may wait for a handshake
	last="ping $1"
	netns_poll 20 ping_once "$1"
}
ping_fails() { # ADDR: no reply to 3 pings in 3 s
	last="ping $1"
	! ip netns exec "$ns_c" ping -q -c 3 -i 0.5 -w 3 "$1" >/dev/null 2>&1
}
stats_line() { actl stats 2>&1 | awk -v k="$1" '$1 == k'; }
iface_has() { # REGEX in `ip -n NS addr show IF`
	last=$(ip -n "$ns_s" addr show dev "$if_s" 2>&1)
	[[ $last =~ $1 ]]
}
# Every field of the client's peer on the server, and what the agent reports.
snapshot() { echo "dump: $(peer_line "$client_pub") stats: $(stats_line "$client_pub")"; }
same_as() { # SNAPSHOT
	last="before: $1"$'\n'"after:  $(snapshot)"
	[[ $(snapshot) == "$1" ]]
}
wg_go_count() {
	local pid n=0
	for pid in $(ip netns pids "$ns_s"); do
		[[ $(ps -o comm= -p "$pid") == wireguard-go ]] && n=$((n + 1))
	done
	echo "$n"
}

# ---- namespaces, the client's wireguard-go ----------------------------------
if ! { netns_add "$ns_s" && netns_add "$ns_c" &&
	netns_veth "$ns_s" "vt${id}s" 10.201.0.1/24 "$ns_c" "vt${id}c" 10.201.0.2/24; }; then
	echo "Bail out! cannot set up the namespaces"
	exit 1
fi
netns_track_wg "$ns_s" "$if_s"
if netns_kernel_wireguard; then
	# The agent would take the kernel backend: this test is about wireguard-go.
	echo "# the kernel has WireGuard: the test starts the server's wireguard-go itself"
	netns_wg_go "$ns_s" "$if_s" "$T/wg-server.log"
fi

(umask 077 && wg genkey >"$T/client.key" && wg genpsk >"$T/psk1" && wg genpsk >"$T/psk2")
client_pub=$(wg pubkey <"$T/client.key")
stranger_pub=$(wg genkey | wg pubkey)
client_allowed=10.3.2.2/32,fd00::3:2:2/128
echo "$client_pub psk=$(cat "$T/psk1") allowed=$client_allowed" >"$T/peers.1"

if ! { netns_wg_go "$ns_c" "$if_c" "$T/wg-client.log" &&
	ip -n "$ns_c" addr add 10.3.2.2/24 dev "$if_c" &&
	ip -n "$ns_c" addr add fd00::3:2:2/120 dev "$if_c" &&
	ip -n "$ns_c" link set "$if_c" mtu 1380 up; }; then
	echo "Bail out! cannot start the client's wireguard-go"
	exit 1
fi

# ---- start: key file, interface ----------------------------------------------
check "agent starts in the server namespace" \
	netns_agent_start "$ns_s" "$T/agent.conf" "$T/agent.log" "$sock"
if [[ -z $agent_pid ]] || ! kill -0 "$agent_pid" 2>/dev/null; then
	tap_done
	exit 1
fi
last=$(stat -c '%a %U' "$T/private.key" 2>&1)
check "private key file created, mode 600, owned by root" test "$last" = "600 root"
server_pub=$(wg pubkey <"$T/private.key")

hello
check "hello: backend=userspace" hello_is backend userspace
check "hello: interface is the configured one" hello_is interface "$if_s"
check "hello: public key matches the key file" hello_is public_key "$server_pub"
last=$(wg_s show "$if_s" public-key 2>&1)
check "wireguard-go has the key file's key" test "$last" = "$server_pub"
check "hello: listen_port=51820" hello_is listen_port 51820
last=$(wg_s show "$if_s" listen-port 2>&1)
check "wireguard-go listens on 51820" test "$last" = 51820
check "hello: mtu=1380" hello_is mtu 1380
check "interface MTU is 1380" iface_has ' mtu 1380 '
check "hello: both tunnel addresses" hello_is addresses "10.3.2.1/24,fd00::3:2:1/120"
check "interface has 10.3.2.1/24" iface_has 'inet 10\.3\.2\.1/24 '
check "interface has fd00::3:2:1/120" iface_has 'inet6 fd00::3:2:1/120 '
check "interface is up" iface_has '<([^>]*,)?UP[,>]'
check "hello: no peers yet" hello_is peers 0
check "hello: peers_generation=0 after start" hello_is peers_generation 0
check "hello: max_peers from the config" hello_is max_peers 8

# The client knows the server only now that its key exists.
client_peer_set() {
	wg_c set "$if_c" private-key "$T/client.key" listen-port 51821 \
		peer "$server_pub" preshared-key "$T/psk1" endpoint 10.201.0.1:51820 \
		allowed-ips 10.3.2.0/24,fd00::3:2:0/120
}
client_peer_set

# ---- full sync: a tunnel -------------------------------------------------------
check "full sync with the client peer: ok" sync_ok 1 "$T/peers.1"
hello
check "hello: peers=1 after the sync" hello_is peers 1
check "hello: peers_generation=1" hello_is peers_generation 1
check "wg show: the client's PSK" peer_field_is "$client_pub" 2 "$(cat "$T/psk1")"
check "wg show: the client's allowed IPs" peer_allowed_is "$client_pub" "$client_allowed"
check "wg show: no keepalive" peer_field_is "$client_pub" 8 off
check "ping from the client over the tunnel (IPv4)" ping_works 10.3.2.1
check "ping from the client over the tunnel (IPv6)" ping_works fd00::3:2:1

stats_has_client() {
	local key rx tx hs ep
	last=$(stats_line "$client_pub")
	read -r key rx tx hs ep <<<"$last"
	[[ $key == "$client_pub" && $ep == 10.201.0.2:51821 && $rx -gt 0 && $tx -gt 0 && $hs -gt 0 ]]
}
check "stats: client's endpoint, handshake, non-zero rx/tx" stats_has_client

# ---- the same full sync again writes nothing -----------------------------------
# A fresh exchange first: the client's passive keepalive then comes 10 s later,
# well after the two snapshots.
ping_once 10.3.2.1
before=$(snapshot)
check "identical full sync: ok" sync_ok 2 "$T/peers.1"
check "identical full sync: handshake, rx/tx and stats untouched" same_as "$before"
hello
check "hello: peers_generation=2" hello_is peers_generation 2

# ---- a peer added by hand goes at the next full sync ---------------------------
wg_s set "$if_s" peer "$stranger_pub" allowed-ips 10.3.2.99/32
check "a peer added with wg set is there" has_peer "$stranger_pub"
handshake=$(peer_field "$client_pub" 5)
check "full sync after the manual change: ok" sync_ok 3 "$T/peers.1"
check "the manually added peer was removed" server_peers_are "$client_pub"
check "the client's peer kept its handshake" peer_field_is "$client_pub" 5 "$handshake"

# ---- patch: remove, then upsert ---------------------------------------------------
echo "- $client_pub" >"$T/patch.remove"
echo "+ $(cat "$T/peers.1")" >"$T/patch.upsert"
check "patch removing the client: ok" patch_ok "$T/patch.remove"
check "the client's peer is gone" server_peers_are
check "ping fails without the peer" ping_fails 10.3.2.1
check "patch upserting the client back: ok" patch_ok "$T/patch.upsert"
check "the client's peer is back with its PSK" peer_field_is "$client_pub" 2 "$(cat "$T/psk1")"
check "and its allowed IPs" peer_allowed_is "$client_pub" "$client_allowed"
# The client still holds a session the server forgot: start it afresh rather
# than wait for its 15 s handshake retry.
wg_c set "$if_c" peer "$server_pub" remove
client_peer_set
check "ping works again" ping_works 10.3.2.1

# ---- keepalive and PSK through full syncs -------------------------------------------
echo "$client_pub psk=$(cat "$T/psk2") keepalive=25 allowed=$client_allowed" >"$T/peers.2"
check "full sync with a new PSK and keepalive 25: ok" sync_ok 4 "$T/peers.2"
check "wg show: the new PSK" peer_field_is "$client_pub" 2 "$(cat "$T/psk2")"
check "wg show: keepalive 25" peer_field_is "$client_pub" 8 25
echo "$client_pub allowed=$client_allowed" >"$T/peers.3"
check "full sync without PSK and keepalive: ok" sync_ok 5 "$T/peers.3"
check "wg show: PSK cleared, (none)" peer_field_is "$client_pub" 2 "(none)"
check "wg show: keepalive cleared, off" peer_field_is "$client_pub" 8 off
wg_c set "$if_c" peer "$server_pub" preshared-key /dev/null

# ---- restart: the peers stay, an equal sync is a no-op ---------------------------
# Neither the restart (key and port already right) nor the sync may write.
ping_once 10.3.2.1
before=$(snapshot)
rc=0
netns_agent_kill TERM || rc=$?
last="exit status $rc"
check "SIGTERM: the agent exits 0" test "$rc" -eq 0
check "the peer outlives the agent" server_peers_are "$client_pub"
check "agent starts again" netns_agent_start "$ns_s" "$T/agent.conf" "$T/agent.log" "$sock"
hello
check "after restart: backend=userspace" hello_is backend userspace
check "after restart: hello reports the peer" hello_is peers 1
check "after restart: peers_generation=0" hello_is peers_generation 0
last="wireguard-go processes: $(wg_go_count)"
check "after restart: still one wireguard-go" test "$last" = "wireguard-go processes: 1"
check "after restart: a sync equal to the state: ok" sync_ok 6 "$T/peers.3"
check "restart and equal sync: handshake, rx/tx, stats as before the restart" \
	same_as "$before"
check "after restart: the tunnel works" ping_works 10.3.2.1

# ---- bad requests: typed errors, nothing applied, the agent keeps serving -----------
b64_of_random() { head -c "$1" /dev/urandom | base64 -w0; }
agent_serves() {
	last=$(actl ping 2>&1)
	[[ $last == ok ]] && kill -0 "$agent_pid"
}

{
	cat "$T/peers.3"
	echo "$stranger_pub allowed=10.3.2.3/32,10.9.9.9/32"
} >"$T/bad.pool"
check "allowed IP outside peer_networks: NOT_ALLOWED naming it" \
	refused '^exit 1: error NOT_ALLOWED peers\[1\]\.allowed_ips\[1\]: ' sync 7 "$T/bad.pool"
check "  nothing applied" server_peers_are "$client_pub"
check "  the agent keeps serving" agent_serves

{
	cat "$T/peers.3"
	echo "$(b64_of_random 31) allowed=10.3.2.4/32"
} >"$T/bad.key"
check "31-byte public key: INVALID_FIELD naming it" \
	refused '^exit 1: error INVALID_FIELD peers\[1\]\.public_key: ' sync 8 "$T/bad.key"
check "  the agent keeps serving" agent_serves

{
	cat "$T/peers.3"
	echo "$stranger_pub psk=$(b64_of_random 31) allowed=10.3.2.4/32"
} >"$T/bad.psk"
check "31-byte PSK: INVALID_FIELD naming it" \
	refused '^exit 1: error INVALID_FIELD peers\[1\]\.preshared_key: ' sync 9 "$T/bad.psk"
check "  nothing applied" server_peers_are "$client_pub"

"$agentctl_bin" genpeers 9 10.3.2.0/24 fd00::3:2:0/120 >"$T/bad.limit"
check "9 peers with max_peers = 8: LIMIT" refused '^exit 1: error LIMIT ' sync 10 "$T/bad.limit"
check "  nothing applied" server_peers_are "$client_pub"
check "  the agent keeps serving" agent_serves

check "a sync for another interface: NOT_ALLOWED interface" \
	refused '^exit 1: error NOT_ALLOWED interface: ' -i "wgx${id}" sync 11 "$T/peers.3"

echo "- $(b64_of_random 31)" >"$T/bad.remove"
check "patch removing a 31-byte key: INVALID_FIELD naming it" \
	refused '^exit 1: error INVALID_FIELD remove\[0\]: ' patch "$T/bad.remove"
echo "+ $stranger_pub allowed=10.9.9.9/32" >"$T/bad.upsert"
check "patch upserting outside peer_networks: NOT_ALLOWED naming it" \
	refused '^exit 1: error NOT_ALLOWED upsert\[0\]\.allowed_ips\[0\]: ' patch "$T/bad.upsert"
check "  nothing applied" server_peers_are "$client_pub"

hello
check "after the errors: hello still reports the one peer" hello_is peers 1
check "after the errors: the tunnel works" ping_works 10.3.2.1

# A config naming an interface that is not WireGuard (a typo: the veth) must
# not cost it its address, MTU or state: the agent refuses to start.
sed -e "s/^interface = .*/interface = vt${id}s/" -e "s|^socket = .*|socket = $T/other/agent.sock|" \
	"$T/agent.conf" >"$T/veth.conf"
veth_before=$(ip -n "$ns_s" -o addr show dev "vt${id}s"; ip -n "$ns_s" -o link show dev "vt${id}s")
rc=0
timeout 30 ip netns exec "$ns_s" "$agent_bin" -c "$T/veth.conf" >"$T/veth.log" 2>&1 || rc=$?
last="exit $rc: $(tail -n 1 "$T/veth.log")"
check "an agent configured for a veth refuses to start" test "$rc" -eq 1
veth_after=$(ip -n "$ns_s" -o addr show dev "vt${id}s"; ip -n "$ns_s" -o link show dev "vt${id}s")
check "  the veth is untouched" test "$veth_before" = "$veth_after"

tap_done
