# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
#
# Throwaway PostgreSQL and Redis instances under a directory, for integration
# tests and packaging/quickstart. Source it; it sets no shell options, and every
# function is safe under `set -euo pipefail`.
#
# DIR may be relative (to the caller's working directory).
#
#   pg_start DIR PORT          initdb DIR/pgdata if missing, start (idempotent)
#   pg_stop DIR                fast shutdown of the server on DIR/pgdata
#   pg_createdb DIR PORT NAME  create database NAME if missing
#   pg_url DIR PORT NAME       libpq URL (TCP 127.0.0.1, user postgres, trust)
#   redis_start DIR PORT       redis-server on 127.0.0.1:PORT, pidfile DIR/redis.pid
#   redis_stop DIR             stop the redis-server of DIR/redis.pid
#   free_port                  print an unused TCP port on 127.0.0.1
#   wait_for CMD...            poll CMD for up to ~10 s
#
# Functions stop only what they started: PostgreSQL through pg_ctl on its own
# data directory, Redis through its own pidfile. Callers set `trap cleanup EXIT`.
# When run as root, PostgreSQL runs as the `postgres` user (initdb refuses root),
# so DIR and its parents must be traversable by that user.

_svc_pgbin=
for _svc_d in /usr/lib/postgresql/*/bin; do
	[[ -x $_svc_d/pg_ctl ]] || continue
	if [[ -z $_svc_pgbin ]] || [[ ${_svc_d//[^0-9]/} -gt ${_svc_pgbin//[^0-9]/} ]]; then
		_svc_pgbin=$_svc_d
	fi
done
unset _svc_d
if [[ -n $_svc_pgbin ]]; then
	PATH=$_svc_pgbin:$PATH
fi

# Absolute form of a path: pg_ctl runs from / and the -o string needs it whole.
_svc_abs() {
	if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi
}

_svc_err() {
	echo "services.sh: $*" >&2
}

# Run a PostgreSQL server-side tool as the data directory's owner.
_svc_as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

_svc_pg_owned() {
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres:postgres "$@"
	fi
}

wait_for() {
	local i
	for ((i = 0; i < 100; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	_svc_err "timed out waiting for: $*"
	return 1
}

_svc_port_busy() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

free_port() {
	local i port
	for ((i = 0; i < 200; i++)); do
		port=$(((RANDOM << 15 | RANDOM) % 40001 + 20000))
		if ! _svc_port_busy "$port"; then
			echo "$port"
			return 0
		fi
	done
	_svc_err "no free port found"
	return 1
}

_svc_pg_running() {
	[[ -f $1/pgdata/PG_VERSION ]] && _svc_as_pg pg_ctl -D "$1/pgdata" status >/dev/null 2>&1
}

pg_start() {
	local dir port=$2
	dir=$(_svc_abs "$1")
	if [[ -z $_svc_pgbin ]]; then
		_svc_err "no PostgreSQL server found under /usr/lib/postgresql"
		return 1
	fi
	if [[ $dir == *"'"* ]]; then
		_svc_err "pg_start: DIR must not contain a quote: $dir"
		return 1
	fi
	mkdir -p "$dir"
	if _svc_pg_running "$dir"; then
		return 0
	fi
	if [[ $(id -u) -eq 0 ]]; then
		chmod a+x "$dir"
		if ! runuser -u postgres -- test -x "$dir"; then
			_svc_err "pg_start: user postgres cannot enter $dir (check its parents)"
			return 1
		fi
	fi
	if [[ ! -f $dir/pgdata/PG_VERSION ]]; then
		[[ -d $dir/pgdata ]] || mkdir -m 0700 "$dir/pgdata"
		_svc_pg_owned "$dir/pgdata"
		_svc_as_pg initdb -D "$dir/pgdata" -U postgres -A trust -E UTF8 \
			--locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
			_svc_err "initdb failed, see $dir/initdb.log"
			return 1
		}
	fi
	[[ -d $dir/pgsock ]] || mkdir -m 0755 "$dir/pgsock"
	touch "$dir/pg.log"
	_svc_pg_owned "$dir/pgsock" "$dir/pg.log"
	_svc_as_pg pg_ctl -D "$dir/pgdata" -l "$dir/pg.log" -w -t 30 \
		-o "-p $port -k '$dir/pgsock' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null || {
		_svc_err "PostgreSQL did not start, see $dir/pg.log"
		return 1
	}
}

pg_stop() {
	local dir
	dir=$(_svc_abs "$1")
	if _svc_pg_running "$dir"; then
		_svc_as_pg pg_ctl -D "$dir/pgdata" -m fast -w -t 30 stop >/dev/null
	fi
}

pg_url() {
	# DIR is unused: the URL goes over TCP so clients of any uid can use it.
	echo "postgresql://postgres@127.0.0.1:$2/$3"
}

pg_createdb() {
	local port=$2 name=$3 # DIR unused: over TCP
	psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-v ON_ERROR_STOP=1 -v dbname="$name" >/dev/null <<-'EOF'
		SELECT format('CREATE DATABASE %I', :'dbname')
		WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname')
		\gexec
	EOF
}

_svc_redis_pid() {
	local pid
	[[ -f $1/redis.pid ]] || return 1
	pid=$(<"$1/redis.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	# The pid must still be our redis-server, not a recycled number.
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] || return 1
	echo "$pid"
}

redis_start() {
	local dir port=$2
	dir=$(_svc_abs "$1")
	mkdir -p "$dir"
	if _svc_redis_pid "$dir" >/dev/null; then
		return 0
	fi
	rm -f "$dir/redis.pid"
	redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
		--dir "$dir" >/dev/null || {
		_svc_err "redis-server did not start, see $dir/redis.log"
		return 1
	}
	wait_for _svc_redis_ping "$port" || {
		_svc_err "Redis did not answer, see $dir/redis.log"
		return 1
	}
}

_svc_redis_ping() {
	[[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

redis_stop() {
	local dir pid
	dir=$(_svc_abs "$1")
	pid=$(_svc_redis_pid "$dir") || return 0
	kill "$pid" 2>/dev/null || true
	wait_for _svc_pid_gone "$pid"
}

_svc_pid_gone() {
	! kill -0 "$1" 2>/dev/null
}
