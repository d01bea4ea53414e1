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
#   pg_createdb DIR PORT NAME [OWNER]
#                              create database NAME if missing; with OWNER, also the
#                              login role OWNER (no superuser), which then owns NAME
#   pg_url DIR PORT NAME [USER]
#                              libpq URL: TCP 127.0.0.1, USER (default postgres) with
#                              its password
#   pg_psql DIR PORT DB [ARG...]
#                              psql as the superuser postgres on database DB
#   redis_start DIR PORT       redis-server on 127.0.0.1:PORT, pidfile DIR/redis.pid
#   redis_start DIR unix:SOCK  redis-server on the UNIX socket SOCK only (mode 0770;
#                              the caller gives its directory the clients' group)
#   redis_stop DIR             stop the redis-server of DIR/redis.pid
#   free_port                  print an unused TCP port on 127.0.0.1
#   wait_for CMD...            poll CMD for up to ~10 s
#
# PostgreSQL asks for passwords: initdb runs with --auth-local=peer and
# --auth-host=scram-sha-256. Every role's password is random, made on first use
# (pg_url may come before pg_start) and kept in DIR/pgpass (PGPASSFILE format,
# mode 0600, owned by the caller). A cluster of the older layout (trust for all)
# is converted by pg_start: its superuser gets the password, pg_hba.conf the
# layout above. Redis has no password: over TCP it is for tests only.
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
		[[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# Below the kernel's ephemeral range (32768 up): an outgoing connection's
# local port cannot take it between our check and the daemon's bind.
free_port() {
	local i port
	for ((i = 0; i < 200; i++)); do
		port=$(((RANDOM << 15 | RANDOM) % 12000 + 20000))
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

# 32 random bytes in hex: safe in URLs, SQL literals and pgpass lines as they are.
_svc_random_hex() {
	local hex
	hex=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') || hex=
	if [[ ${#hex} -ne 64 ]]; then
		_svc_err "cannot read /dev/urandom"
		return 1
	fi
	echo "$hex"
}

_svc_pgpass_get() { # DIR USER
	[[ -f $1/pgpass ]] || return 1
	awk -F: -v u="$2" '$4 == u { print $5; found = 1; exit } END { exit !found }' "$1/pgpass"
}

# _svc_pg_password DIR USER: print USER's password, made and saved on first use.
_svc_pg_password() {
	local dir=$1 user=$2 pw
	if [[ ! $user =~ ^[a-z_][a-z0-9_]*$ ]]; then
		_svc_err "not a plain role name: $user"
		return 1
	fi
	if ! _svc_pgpass_get "$dir" "$user" >/dev/null; then
		mkdir -p "$dir"
		pw=$(_svc_random_hex) || return 1
		# One short O_APPEND write: concurrent callers at worst add two lines,
		# and everyone (libpq too) takes the first.
		(umask 077 && printf '*:*:*:%s:%s\n' "$user" "$pw" >>"$dir/pgpass") || return 1
	fi
	chmod 0600 "$dir/pgpass"
	_svc_pgpass_get "$dir" "$user"
}

# What initdb --auth-local=peer --auth-host=scram-sha-256 writes.
_svc_pg_hba() {
	cat <<-'EOF'
		# Written by tests/lib/services.sh.
		# TYPE  DATABASE        USER            ADDRESS                 METHOD
		local   all             all                                     peer
		host    all             all             127.0.0.1/32            scram-sha-256
		host    all             all             ::1/128                 scram-sha-256
		local   replication     all                                     peer
		host    replication     all             127.0.0.1/32            scram-sha-256
		host    replication     all             ::1/128                 scram-sha-256
	EOF
}

_svc_pg_trusting() {
	grep -Eq '^[[:space:]]*(local|host)[^#]*[[:space:]]trust([[:space:]#]|$)' "$1/pgdata/pg_hba.conf"
}

# A cluster made by the older services.sh (initdb -A trust): give the superuser
# its password while the server listens only on DIR/pgsock (mode 0700), then
# switch pg_hba.conf to peer and scram-sha-256. DIR's server is stopped.
_svc_pg_secure() {
	local dir=$1 port=$2 pw rc=0
	pw=$(_svc_pg_password "$dir" postgres) || return 1
	_svc_as_pg pg_ctl -D "$dir/pgdata" -l "$dir/pg.log" -w -t 30 \
		-o "-p $port -k '$dir/pgsock' -c listen_addresses=''" start >/dev/null || {
		_svc_err "PostgreSQL did not start, see $dir/pg.log"
		return 1
	}
	printf "ALTER ROLE postgres PASSWORD '%s';\n" "$pw" |
		_svc_as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$dir/pgsock" -p "$port" \
			-U postgres -d postgres >/dev/null || rc=1
	_svc_as_pg pg_ctl -D "$dir/pgdata" -m fast -w -t 30 stop >/dev/null || rc=1
	if ((rc == 0)); then
		_svc_pg_hba | _svc_as_pg tee "$dir/pgdata/pg_hba.conf" >/dev/null || rc=1
	fi
	((rc == 0)) || _svc_err "cannot set the superuser password of $dir/pgdata"
	return "$rc"
}

pg_start() {
	local dir port=$2 pw
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
	pw=$(_svc_pg_password "$dir" postgres) || return 1
	if [[ -f $dir/pgdata/PG_VERSION ]] && _svc_pg_trusting "$dir" && _svc_pg_running "$dir"; then
		pg_stop "$dir" || return 1 # left running by an older run: restart it converted
	fi
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
	[[ -d $dir/pgsock ]] || mkdir "$dir/pgsock"
	chmod 0700 "$dir/pgsock"
	touch "$dir/pg.log"
	chmod 0600 "$dir/pg.log" # a failed statement is logged whole, passwords too
	_svc_pg_owned "$dir/pgsock" "$dir/pg.log"
	if [[ ! -f $dir/pgdata/PG_VERSION ]]; then
		[[ -d $dir/pgdata ]] || mkdir -m 0700 "$dir/pgdata"
		_svc_pg_owned "$dir/pgdata"
		# initdb runs as postgres: it reads the password from a file of its own.
		rm -f "$dir/initdb.pw"
		(umask 077 && echo "$pw" >"$dir/initdb.pw") || return 1
		_svc_pg_owned "$dir/initdb.pw"
		_svc_as_pg initdb -D "$dir/pgdata" -U postgres --pwfile="$dir/initdb.pw" \
			--auth-local=peer --auth-host=scram-sha-256 -E UTF8 \
			--locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
			rm -f "$dir/initdb.pw"
			_svc_err "initdb failed, see $dir/initdb.log"
			return 1
		}
		rm -f "$dir/initdb.pw"
	elif _svc_pg_trusting "$dir"; then
		_svc_pg_secure "$dir" "$port" || return 1
	fi
	_svc_as_pg pg_ctl -D "$dir/pgdata" -l "$dir/pg.log" -w -t 30 \
		-o "-p $port -k '$dir/pgsock' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null || {
		_svc_err "PostgreSQL did not start, see $dir/pg.log"
		return 1
	}
	pg_psql "$dir" "$port" postgres -qtA -c 'SELECT 1' >/dev/null 2>&1 || {
		_svc_err "PostgreSQL refuses the password in $dir/pgpass (remove $dir to start afresh)"
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
	# Over TCP, so that clients of any uid can use it.
	local dir user=${4:-postgres} pw
	dir=$(_svc_abs "$1")
	pw=$(_svc_pg_password "$dir" "$user") || return 1
	echo "postgresql://$user:$pw@127.0.0.1:$2/$3"
}

pg_psql() {
	local dir port=$2 db=$3
	dir=$(_svc_abs "$1")
	shift 3
	PGPASSFILE=$dir/pgpass psql -X -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

pg_createdb() {
	local dir port=$2 name=$3 owner=${4:-} pw
	dir=$(_svc_abs "$1")
	if [[ -z $owner ]]; then
		pg_psql "$dir" "$port" postgres -q -v ON_ERROR_STOP=1 -v dbname="$name" >/dev/null <<-'EOF'
			SELECT format('CREATE DATABASE %I', :'dbname')
			WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname')
			\gexec
		EOF
		return
	fi
	pw=$(_svc_pg_password "$dir" "$owner") || return 1
	# The password goes through stdin, never on a command line.
	{
		printf '\\set pw %s\n' "'$pw'"
		cat <<-'EOF'
			SELECT format('CREATE ROLE %I', :'owner')
			WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner')
			\gexec
			ALTER ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
				NOBYPASSRLS PASSWORD :'pw';
			SELECT format('CREATE DATABASE %I OWNER %I', :'dbname', :'owner')
			WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname')
			\gexec
			SELECT format('ALTER DATABASE %I OWNER TO %I', :'dbname', :'owner')
			FROM pg_database WHERE datname = :'dbname' AND datdba <> :'owner'::regrole
			\gexec
		EOF
	} | pg_psql "$dir" "$port" postgres -q -v ON_ERROR_STOP=1 -v dbname="$name" \
		-v owner="$owner" >/dev/null || return 1
	# Objects the superuser made in NAME (as the older quickstart did) go to
	# OWNER; those of extensions stay (CREATE EXTENSION IF NOT EXISTS is no-op).
	pg_psql "$dir" "$port" "$name" -q -v ON_ERROR_STOP=1 -v owner="$owner" >/dev/null <<-'EOF'
		SELECT format('ALTER %s %s OWNER TO %I', o.kind, o.name, :'owner')
		FROM (
			SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
				WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
				ELSE 'TABLE' END, c.oid::regclass::text, c.relowner,
				'pg_class'::regclass, c.oid, c.relnamespace
			FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
			UNION ALL
			SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
				t.oid::regtype::text, t.typowner, 'pg_type'::regclass, t.oid, t.typnamespace
			FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
			WHERE t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c')
			UNION ALL
			SELECT 'ROUTINE', p.oid::regprocedure::text, p.proowner,
				'pg_proc'::regclass, p.oid, p.pronamespace
			FROM pg_proc p
			UNION ALL
			SELECT 'SCHEMA', quote_ident(n.nspname), n.nspowner,
				'pg_namespace'::regclass, n.oid, n.oid
			FROM pg_namespace n
		) AS o(kind, name, owner, classid, objid, nsp)
		JOIN pg_namespace n ON n.oid = o.nsp
		WHERE o.owner = current_user::regrole
			AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
			AND NOT EXISTS (SELECT 1 FROM pg_depend d
				WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype IN ('e', 'a', 'i'))
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
	local dir where=$2 sock args
	dir=$(_svc_abs "$1")
	if [[ $where == unix:* ]]; then
		sock=$(_svc_abs "${where#unix:}")
		where=unix:$sock
		args=(--port 0 --unixsocket "$sock" --unixsocketperm 770)
	else
		args=(--port "$where" --bind 127.0.0.1)
	fi
	mkdir -p "$dir"
	if _svc_redis_pid "$dir" >/dev/null; then
		_svc_redis_ping "$where" && return 0
		redis_stop "$dir" || return 1 # ours, but listening elsewhere: restart it
	fi
	rm -f "$dir/redis.pid"
	redis-server "${args[@]}" --save "" --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
		--dir "$dir" >/dev/null || {
		_svc_err "redis-server did not start, see $dir/redis.log"
		return 1
	}
	wait_for _svc_redis_ping "$where" || {
		_svc_err "Redis did not answer, see $dir/redis.log"
		return 1
	}
}

_svc_redis_ping() { # PORT or unix:SOCKET
	local to=(-h 127.0.0.1 -p "$1")
	[[ $1 != unix:* ]] || to=(-s "${1#unix:}")
	[[ $(redis-cli "${to[@]}" ping 2>/dev/null) == PONG ]]
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
