# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
#
# Network namespaces, veth pairs, wireguard-go and wiregui-agent processes for
# the system tests. Source it; it sets no shell options, and every function is
# safe under `set -uo pipefail`. Give namespaces and interfaces names with the
# test's pid: /var/run/wireguard/<ifname>.sock is shared by all namespaces.
#
#   netns_require           unless root with ip netns, /dev/net/tun, wireguard-go,
#                           wg and ping: print "1..0 # SKIP <why>" and exit 0
#                           (meson's TAP protocol reads an exit status 77 as an
#                           error, the TAP plan as a skip)
#   netns_add NS            new namespace NS with lo up
#   netns_veth NS1 IF1 CIDR1 NS2 IF2 CIDR2
#                           veth pair between two namespaces, addressed and up
#   netns_kernel_wireguard  true when the kernel can create WireGuard links
#   netns_wg_go NS IF [LOG] wireguard-go for IF in NS (in the foreground, so its
#                           pid is ours), once its UAPI socket answers
#   netns_track_wg NS IF    delete WireGuard interface IF of NS at cleanup (one
#                           the agent made: wireguard-go exits when it goes)
#   netns_poll LIMIT CMD... run CMD every 0.1 s until it succeeds, LIMIT seconds
#   netns_stop_pid PID [SECONDS]
#                           SIGTERM, SIGKILL after SECONDS (10); the process's
#                           status
#   netns_agent_start NS CONF LOG SOCKET
#                           wiregui-agent in NS (pid in $agent_pid) once SOCKET
#                           answers a Ping; 1 if it exited or never answered
#   netns_agent_kill [SIGNAL]
#                           signal the agent (TERM: wait up to 10 s, then KILL),
#                           reap it; its exit status
#   netns_cleanup           undo all of the above; call it from the EXIT trap
#
# Needs $agent_bin and $agentctl_bin for netns_agent_start.

NETNS_UAPI_DIR=/var/run/wireguard
_netns_list=()
_netns_pids=()
_netns_wgs=()
agent_pid=

_netns_skip() {
	echo "1..0 # SKIP $*"
	exit 0
}

netns_require() {
	local cmd probe=wiregui-probe-$$
	[[ $(id -u) -eq 0 ]] || _netns_skip "needs root (network namespaces, wireguard-go)"
	for cmd in ip wg wireguard-go ping; do
		command -v "$cmd" >/dev/null 2>&1 || _netns_skip "$cmd not installed"
	done
	[[ -c /dev/net/tun ]] || _netns_skip "no /dev/net/tun for wireguard-go"
	ip netns add "$probe" >/dev/null 2>&1 || _netns_skip "ip netns add does not work here"
	ip netns del "$probe" >/dev/null 2>&1
}

netns_poll() { # LIMIT CMD...
	local deadline=$((SECONDS + $1))
	shift
	while ((SECONDS < deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@" >/dev/null 2>&1
}

netns_add() { # NS
	ip netns add "$1" || return 1
	_netns_list+=("$1")
	ip -n "$1" link set lo up
}

netns_veth() { # NS1 IF1 CIDR1 NS2 IF2 CIDR2
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" &&
		ip -n "$1" addr add "$3" dev "$2" &&
		ip -n "$4" addr add "$6" dev "$5" &&
		ip -n "$1" link set "$2" up &&
		ip -n "$4" link set "$5" up
}

netns_kernel_wireguard() {
	local probe=wiregui-probe-$$ rc=1
	ip netns add "$probe" >/dev/null 2>&1 || return 1
	ip -n "$probe" link add wgprobe type wireguard >/dev/null 2>&1 && rc=0
	ip netns del "$probe" >/dev/null 2>&1
	return "$rc"
}

_netns_uapi_up() { # IF
	[[ -S $NETNS_UAPI_DIR/$1.sock ]] && wg show "$1" listen-port
}

netns_wg_go() { # NS IF [LOG]
	ip netns exec "$1" wireguard-go -f "$2" >>"${3:-/dev/null}" 2>&1 &
	_netns_pids+=($!)
	_netns_wgs+=("$1 $2")
	netns_poll 10 _netns_uapi_up "$2"
}

netns_track_wg() { # NS IF
	_netns_wgs+=("$1 $2")
}

_netns_alive() { # PID: running and not a zombie
	kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]
}

_netns_ours() { # PID: a process inside one of this test's namespaces
	local ns where
	where=$(ip netns identify "$1" 2>/dev/null) || return 1
	for ns in "${_netns_list[@]}"; do
		[[ $where == "$ns" ]] && return 0
	done
	return 1
}

_netns_forget() { # PID
	local i
	for i in "${!_netns_pids[@]}"; do
		[[ ${_netns_pids[i]} == "$1" ]] && unset '_netns_pids[i]'
	done
}

netns_stop_pid() { # PID [SECONDS]
	local pid=$1 i rc=0 tenths=$((${2:-10} * 10))
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < tenths; i++)); do
		_netns_alive "$pid" || break
		sleep 0.1
	done
	((i < tenths)) || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

_netns_agent_answers() { # SOCKET: 0 yes, 1 not yet, 2 the agent exited
	_netns_alive "$agent_pid" || return 2
	# shellcheck disable=SC2154 # the caller sets agentctl_bin
	"$agentctl_bin" -s "$1" -t 5 ping >/dev/null 2>&1 || return 1
}

netns_agent_start() { # NS CONF LOG SOCKET
	local deadline=$((SECONDS + 60)) rc
	# shellcheck disable=SC2154 # the caller sets agent_bin
	ip netns exec "$1" "$agent_bin" -c "$2" >>"$3" 2>&1 &
	agent_pid=$!
	_netns_pids+=("$agent_pid")
	# Startup may wait up to 10 s for wireguard-go; sanitizer builds are slower.
	while ((SECONDS < deadline)); do
		_netns_agent_answers "$4"
		rc=$?
		((rc == 0)) && return 0
		((rc == 2)) && return 1
		sleep 0.1
	done
	return 1
}

netns_agent_kill() { # [SIGNAL]
	local pid=$agent_pid rc=0
	agent_pid=
	[[ -n $pid ]] || return 0
	_netns_forget "$pid"
	if [[ ${1:-TERM} == TERM ]]; then
		netns_stop_pid "$pid"
		return
	fi
	kill "-$1" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

_netns_empty() { # NS: no process left in it
	[[ -z $(ip netns pids "$1" 2>/dev/null) ]]
}

netns_cleanup() {
	local pid entry ns
	# A pid is stopped only while it is still inside one of our namespaces.
	for pid in "${_netns_pids[@]}"; do
		_netns_alive "$pid" && _netns_ours "$pid" && netns_stop_pid "$pid"
	done
	# wireguard-go exits when its interface is deleted, and removes its socket.
	for entry in "${_netns_wgs[@]}"; do
		ip -n "${entry% *}" link del "${entry#* }" >/dev/null 2>&1
	done
	for ns in "${_netns_list[@]}"; do
		if ! netns_poll 10 _netns_empty "$ns"; then
			# Only this test's processes can be in its own namespace.
			for pid in $(ip netns pids "$ns"); do
				echo "# cleanup: pid $pid ($(ps -o comm= -p "$pid")) still in $ns, stopping it"
				kill -TERM "$pid" 2>/dev/null
			done
			netns_poll 5 _netns_empty "$ns"
		fi
		ip netns del "$ns" >/dev/null 2>&1
	done
	for entry in "${_netns_wgs[@]}"; do
		rm -f "$NETNS_UAPI_DIR/${entry#* }.sock"
	done
	_netns_list=()
	_netns_pids=()
	_netns_wgs=()
}

# ---- more for the firewall tests (tests/system/fw_*.sh, tests/bench/nft.sh) ----
#
#   netns_forwarding NS     IPv4 and IPv6 forwarding on in NS
#   netns_bg NS LOG CMD...  CMD in NS in the background, its pid tracked for
#                           netns_cleanup and left in $netns_bg_pid
#   netns_listen NS PROTO PORT
#                           a socat server on PORT of every address of NS (v4
#                           and v6): tcp answers each connection with the
#                           line "tcp PORT" and closes, tcpecho echoes what it
#                           reads on a connection, udp echoes each datagram;
#                           returns once the port is bound
#   netns_nft NS ARGS...    nft ARGS... in NS
#   netns_require_cmd CMD...
#                           "1..0 # SKIP CMD not installed" unless every CMD is

netns_forwarding() { # NS
	ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
}

netns_bg_pid=
netns_bg() { # NS LOG CMD...
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >>"$log" 2>&1 &
	netns_bg_pid=$!
	_netns_pids+=("$netns_bg_pid")
}

_netns_bound() { # NS PROTO PORT
	local flag=-tln
	[[ $2 == udp ]] && flag=-uln
	ip netns exec "$1" ss -H "$flag" "sport = :$3" | grep -q .
}

netns_listen() { # NS PROTO PORT
	case $2 in
	tcp)
		netns_bg "$1" /dev/null socat "TCP6-LISTEN:$3,ipv6only=0,reuseaddr,fork" \
			"SYSTEM:echo tcp $3"
		;;
	tcpecho)
		netns_bg "$1" /dev/null socat "TCP6-LISTEN:$3,ipv6only=0,reuseaddr,fork" PIPE
		;;
	udp)
		netns_bg "$1" /dev/null socat "UDP6-RECVFROM:$3,ipv6only=0,reuseaddr,fork" PIPE
		;;
	*) return 1 ;;
	esac
	netns_poll 5 _netns_bound "$1" "${2%echo}" "$3"
}

netns_nft() { # NS ARGS...
	local ns=$1
	shift
	ip netns exec "$ns" nft "$@"
}

netns_require_cmd() { # CMD...
	local cmd
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 || _netns_skip "$cmd not installed"
	done
}

# netns_agent_conf SOCKET INTERFACE DIR ADDRESS TABLE [SECTION.KEY=VALUE...]:
# a test agent's config on stdout: root may connect, its key in
# DIR/private.key, port 51820, log level info unless agent.log_level= says
# otherwise; each other SECTION.KEY=VALUE (wireguard.mtu=1380) in its section.
netns_agent_conf() {
	local sock=$1 ifn=$2 dir=$3 address=$4 table=$5 level=info kv
	shift 5
	for kv; do
		[[ $kv == agent.log_level=* ]] && level=${kv#*=}
	done
	printf '[agent]\nsocket = %s\nfrontend_user = root\nlog_level = %s\n' "$sock" "$level"
	_netns_conf_extra agent "$@"
	printf '[wireguard]\ninterface = %s\nlisten_port = 51820\nprivate_key_file = %s\naddress = %s\n' \
		"$ifn" "$dir/private.key" "$address"
	_netns_conf_extra wireguard "$@"
	printf '[firewall]\ntable = %s\n' "$table"
	_netns_conf_extra firewall "$@"
}

_netns_conf_extra() { # SECTION SECTION.KEY=VALUE...
	local section=$1 kv
	shift
	for kv; do
		[[ $kv == "$section".* && $kv != agent.log_level=* ]] || continue
		kv=${kv#*.}
		echo "${kv%%=*} = ${kv#*=}"
	done
}

# netns_agent_diagnose: for tap_diagnose, the last output ($last) and the
# end of the agent's log ($T/agent.log)
netns_agent_diagnose() {
	# shellcheck disable=SC2154 # the caller sets last and T
	printf '%s\n' "$last" | head -n 20 | sed 's/^/#   last: /'
	tail -n 8 "$T/agent.log" 2>/dev/null | sed 's/^/#   agent: /'
}
