#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# wiregui-web's health endpoint against real PostgreSQL, Redis and
# wiregui-agent processes that are stopped and started again; TAP output.
# Waits are polls with a generous limit, never assertions on timing.
# Predicates run through check() and cleanup through trap: shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
web_bin=$build/frontend/wiregui-web
agent_bin=$build/agent/wiregui-agent
# shellcheck source-path=SCRIPTDIR source=../lib/services.sh
. "$src/tests/lib/services.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/netns.sh
. "$src/tests/lib/netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$src/tests/lib/common.sh"

if [[ -z $_svc_pgbin ]]; then
	echo "1..0 # SKIP PostgreSQL server not installed (postgresql-15)"
	exit 0
fi

# The agent creates its WireGuard interface: in a namespace of our own.
netns_require
ns=wiregui-wh-$$
wg_if=wgwh$$
netns_add "$ns"
netns_track_wg "$ns" "$wg_if"

# Long enough for the 10 s backoff ceiling plus a slow (sanitizer) build.
POLL_LIMIT=45

T=$(mktemp -d /tmp/wiregui-web-health.XXXXXX)
chmod 0755 "$T" # PostgreSQL runs as user postgres
web_pid=
agent_pid=
fd_pid=

# PID: SIGTERM, SIGKILL after 20 s (a sanitizer build is slow); its exit status
stop_pid() { netns_stop_pid "$1" 20; }

cleanup() {
	stop_pid "$web_pid" || true
	stop_pid "$fd_pid" || true
	stop_pid "$agent_pid" || true
	netns_cleanup
	redis_stop "$T/redis" || true
	pg_stop "$T/pg" || true
	test_scratch_done "$T"
}
test_traps

# shellcheck source=tests/lib/tap.sh
. "$src/tests/lib/tap.sh"
tap_diagnose() {
	echo "#   last: ${last:-}"
	tail -n 15 "$T/web.log" 2>/dev/null | sed 's/^/#   web: /'
}

pg_port=$(free_port)
redis_port=$(free_port)
http_port=$(free_port)
base=http://127.0.0.1:$http_port

# The agent makes its socket's directory 0750: keep it away from $T.
mkdir -p "$T/agent"
cat >"$T/agent.conf" <<EOF
[agent]
socket = $T/agent/agent.sock
frontend_user = $(id -u)
log_level = debug
[wireguard]
interface = $wg_if
private_key_file = $T/wg/private.key
[firewall]
table = wiregui_test
EOF

cat >"$T/web.conf" <<EOF
[http]
address = 127.0.0.1:$http_port
max_header_size = 1024
max_body_size = 1024
timeout = 10
[database]
url = $(pg_url "$T/pg" "$pg_port" wiregui)
[redis]
address = 127.0.0.1:$redis_port
[agent]
socket = $T/agent/agent.sock
[log]
level = debug
EOF

start_agent() {
	ip netns exec "$ns" "$agent_bin" -c "$T/agent.conf" >>"$T/agent.log" 2>&1 &
	agent_pid=$!
	wait_for test -S "$T/agent/agent.sock"
}
stop_agent() {
	stop_pid "$agent_pid" || true
	agent_pid=
}
start_pg() {
	pg_start "$T/pg" "$pg_port" && pg_createdb "$T/pg" "$pg_port" wiregui
}

# GET (or other curl arguments) PATH: status in $code, body in $T/body, headers in $T/headers.
request() {
	code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 10 "$@") || true
	[[ -n $code ]] || code=000
}
# "CODE STATUS POSTGRESQL REDIS AGENT" for PATH, e.g. "200 ok up up up", in $last.
health() {
	request "$base${1:-/api/health}"
	last="$code $(jq -j '[.status, .postgresql.status, .redis.status, .agent.status] | join(" ")' \
		"$T/body" 2>/dev/null || echo invalid)"
}
health_is() { # EXPECTED [PATH]
	health "${2:-}"
	[[ $last == "$1" ]]
}
poll_health() { # EXPECTED [PATH]: until the report says EXPECTED, at most POLL_LIMIT s
	local deadline=$((SECONDS + POLL_LIMIT))
	while ((SECONDS < deadline)); do
		health_is "$@" && return 0
		sleep 0.2
	done
	return 1
}
body_is() { # JQ-EXPRESSION: true on the last body
	jq -e "$1" "$T/body" >/dev/null 2>&1
}
header_is() { # NAME VALUE (case-insensitive name, exact value)
	grep -qi "^$1: $2"$'\r'"\$" "$T/headers"
}
code_is() { # PATTERN (glob) for the last status code
	# shellcheck disable=SC2053
	[[ $code == $1 ]]
}
security_headers() {
	header_is X-Content-Type-Options nosniff && header_is Cache-Control no-store &&
		header_is X-Frame-Options DENY && header_is Referrer-Policy no-referrer
}
json_reply() { # CODE JQ-EXPRESSION: the last reply was JSON with the security headers
	code_is "$1" && body_is "$2" && header_is Content-Type application/json && security_headers
}
web_alive() {
	kill -0 "$web_pid" 2>/dev/null && [[ $(ps -o stat= -p "$web_pid") != Z* ]]
}

# --- Started while PostgreSQL, Redis and the agent are all down -------------
"$web_bin" -c "$T/web.conf" >"$T/web.log" 2>&1 &
web_pid=$!
wait_for curl -s -o /dev/null "$base/healthz"

check "all down: 503 degraded, every component down" poll_health "503 degraded down down down"
check "all down: each component says why" \
	body_is '[.postgresql, .redis, .agent] | all(.error | type == "string" and length > 0)'
check "all down: /healthz says the same" health_is "503 degraded down down down" /healthz
check "all down: the web is still running" web_alive

start_pg
redis_start "$T/redis" "$redis_port"
start_agent
check "all started: 200 ok, every component up" poll_health "200 ok up up up"
check "all up: JSON with the security headers" json_reply 200 '.status == "ok"'
check "all up: version and no error fields" \
	body_is '.version == "0.1.0" and ([.postgresql, .redis, .agent] | all(has("error") | not))'
check "all up: the agent's backend and interfaces are reported" \
	body_is '(.agent.backend | IN("none", "kernel", "userspace")) and .agent.interfaces == ["'"$wg_if"'"]'
check "all up: /healthz 200 ok" health_is "200 ok up up up" /healthz

# --- Redis ------------------------------------------------------------------
redis_stop "$T/redis"
check "redis stopped: 503 degraded, redis down, others up" poll_health "503 degraded up down up"
check "redis stopped: redis error reported" body_is '.redis.error | length > 0'
check "redis stopped: /healthz the same" health_is "503 degraded up down up" /healthz
redis_start "$T/redis" "$redis_port"
check "redis started again: back to 200 ok" poll_health "200 ok up up up"

# --- PostgreSQL -------------------------------------------------------------
pg_stop "$T/pg"
check "postgresql stopped: 503 degraded, postgresql down, others up" \
	poll_health "503 degraded down up up"
check "postgresql stopped: error reported" body_is '.postgresql.error | length > 0'
check "postgresql stopped: /healthz the same" health_is "503 degraded down up up" /healthz
start_pg
check "postgresql started again: back to 200 ok" poll_health "200 ok up up up"

# --- Agent ------------------------------------------------------------------
stop_agent
check "agent stopped: 503 degraded, agent down, others up" poll_health "503 degraded up up down"
check "agent stopped: error reported, no stale backend" \
	body_is '(.agent.error | length > 0) and (.agent | has("backend") | not)'
check "agent stopped: /healthz the same" health_is "503 degraded up up down" /healthz
start_agent
check "agent started again: back to 200 ok" poll_health "200 ok up up up"

# A hung agent (stopped, its socket still open) is noticed by the web's Ping.
kill -STOP "$agent_pid"
check "agent hung: 503 degraded, agent down" poll_health "503 degraded up up down"
check "agent hung: says it does not answer" body_is '.agent.error | test("no answer")'
kill -CONT "$agent_pid"
check "agent resumed: back to 200 ok" poll_health "200 ok up up up"

# --- HTTP behaviour ---------------------------------------------------------
request "$base/no/such/path"
last="$code $(cat "$T/body")"
check "unknown path: 404 {\"error\":\"not_found\"} as JSON" \
	json_reply 404 '. == {"error": "not_found"}'

request -X POST --data-binary '{}' "$base/api/health"
last="$code $(cat "$T/body")"
check "POST /api/health: 405 as JSON" json_reply 405 '.error == "method_not_allowed"'
check "POST /api/health: Allow: GET, HEAD" header_is Allow "GET, HEAD"

big=$(head -c 4000 /dev/zero | tr '\0' x)
request -H "X-Big: $big" "$base/api/health"
last="$code"
check "headers over max_header_size: 4xx" code_is '4[0-9][0-9]'
check "after oversized headers: the server still answers" health_is "200 ok up up up"

head -c 8192 /dev/zero | tr '\0' x >"$T/big-body"
request -X POST --data-binary "@$T/big-body" "$base/api/health"
last="$code"
check "body over max_body_size: 413" code_is 413
check "after an oversized body: the server still answers" health_is "200 ok up up up"
request -I "$base/healthz"
last="$code"
check "HEAD /healthz: 200" code_is 200

# --- Out of file descriptors: pause accepting, do not spin, recover ---------
fd_port=$(free_port)
sed "s/^address = .*/address = 127.0.0.1:$fd_port/" "$T/web.conf" >"$T/web-fd.conf"
(
	ulimit -n 40
	exec "$web_bin" -c "$T/web-fd.conf"
) >>"$T/web-fd.log" 2>&1 &
fd_pid=$!
wait_for curl -s -o /dev/null "http://127.0.0.1:$fd_port/healthz"
# 80 half-sent requests held open for 3 s: more than the daemon may have descriptors.
python3 - "$fd_port" <<'EOF'
import socket, sys, time
held = []
for _ in range(80):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
        s.sendall(b"GET /healthz HT")
        held.append(s)
    except OSError:
        pass
time.sleep(3)
EOF
last="$(grep -c accept "$T/web-fd.log") accept log lines"
check "out of descriptors: still running" kill -0 "$fd_pid"
check "out of descriptors: says it pauses accepting" grep -q "not accepting connections" "$T/web-fd.log"
fd_quiet() { (($(grep -c accept "$T/web-fd.log") < 50)); }
check "out of descriptors: no log flood" fd_quiet
fd_answers() {
	local deadline=$((SECONDS + POLL_LIMIT))
	while ((SECONDS < deadline)); do
		curl -s --max-time 5 "http://127.0.0.1:$fd_port/healthz" | grep -q '"status"' && return 0
		sleep 0.5
	done
	return 1
}
check "out of descriptors: answers again once they are closed" fd_answers
stop_pid "$fd_pid" || true
fd_pid=

# --- Clean shutdown (under ASan this is also the leak check) -----------------
rc=0
stop_pid "$web_pid" || rc=$?
web_pid=
last="exit status $rc"
check "SIGTERM: wiregui-web exits 0" test "$rc" -eq 0
check "SIGTERM: logged the shutdown" grep -q "shutting down" "$T/web.log"

tap_done
