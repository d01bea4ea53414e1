#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# `wiregui migrate` against a throwaway PostgreSQL; TAP output.
set -euo pipefail

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
cli=$build/frontend/wiregui
badcli=$build/tests/integration/wiregui-badsql
# shellcheck source-path=SCRIPTDIR source=../lib/services.sh
. "$src/tests/lib/services.sh"

if [[ -z $_svc_pgbin ]]; then
	echo "1..0 # SKIP PostgreSQL server not installed (postgresql-15)"
	exit 0
fi

T=$(mktemp -d /tmp/wiregui-migrate.XXXXXX)
chmod 0755 "$T" # PostgreSQL runs as user postgres
cleanup() {
	pg_stop "$T/pg" || true
	rm -rf "$T"
}
trap cleanup EXIT
trap "exit 143" TERM
trap "exit 130" INT

# shellcheck source=tests/lib/tap.sh
. "$src/tests/lib/tap.sh"
tap_diagnose() {
	sed 's/^/# /' "$T/out" "$T/err" 2>/dev/null || true
}

port=$(free_port)
pg_start "$T/pg" "$port"

url() { pg_url "$T/pg" "$port" "$1"; }
newdb() {
	pg_createdb "$T/pg" "$port" "$1"
}
sql() { # DB QUERY
	psql -X -qtA -v ON_ERROR_STOP=1 "$(url "$1")" -c "$2"
}
# Run a migrate binary: BIN DB [ARGS...]; sets rc, output in $T/out and $T/err.
migrate() {
	local bin=$1 db=$2
	shift 2
	rc=0
	WIREGUI_DATABASE_URL=$(url "$db") "$bin" migrate "$@" >"$T/out" 2>"$T/err" || rc=$?
}
advisory_held() { [[ $(sql "$1" "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == 1 ]]; }
out_has() { grep -qF -- "$1" "$T/out"; }
err_has() { grep -qF -- "$1" "$T/err"; }

files=()
for f in "$src"/sql/[0-9][0-9][0-9][0-9]_*.sql; do files+=("${f##*/}"); done
k=${#files[@]}
expected_rows=$(for f in "${files[@]}"; do
	echo "$((10#${f:0:4}))|$f|$(sha256sum "$src/sql/$f" | cut -d' ' -f1)"
done)

# A fresh database gets every migration, once.
newdb fresh
migrate "$cli" fresh
check "fresh database: exit 0" test "$rc" -eq 0
check "fresh database: applied $k, at version $k" \
	out_has "migrated: applied $k migration(s), schema at version $k"
check "schema_migrations rows equal sql/*.sql" \
	test "$(sql fresh 'SELECT version, name, checksum FROM schema_migrations ORDER BY version')" \
	= "$expected_rows"
check "0001_base.sql ran: citext installed" \
	test "$(sql fresh "SELECT count(*) FROM pg_extension WHERE extname = 'citext'")" = 1
migrate "$cli" fresh
check "second run: exit 0, applied 0" \
	out_has "migrated: applied 0 migration(s), schema at version $k"
check "second run: still $k rows" test "$(sql fresh 'SELECT count(*) FROM schema_migrations')" = "$k"

# -c selects the configuration file.
printf '[database]\nurl = %s\n' "$(url fresh)" >"$T/wiregui.conf"
rc=0
env -u WIREGUI_DATABASE_URL "$cli" migrate -c "$T/wiregui.conf" >"$T/out" 2>"$T/err" || rc=$?
check "-c CONFIG: database url from the file" test "$rc" -eq 0
rc=0
"$cli" migrate -c "$T/missing.conf" >"$T/out" 2>"$T/err" || rc=$?
check "-c missing file: exit 1" test "$rc" -eq 1

# A database ahead of this binary is refused.
newdb newer
migrate "$cli" newer
sql newer "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')"
migrate "$cli" newer
check "newer database: exit 1" test "$rc" -eq 1
check "newer database: says upgrade wiregui" \
	err_has "database schema is at version 9999, this wiregui knows up to $k: upgrade wiregui"

# An applied migration edited afterwards is refused.
newdb tampered
migrate "$cli" tampered
sql tampered "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1"
migrate "$cli" tampered
check "tampered checksum: exit 1" test "$rc" -eq 1
check "tampered checksum: names the file" err_has "${files[0]} was changed after it was applied"

# Two migrators at once: both succeed, each migration applied once.
newdb race
WIREGUI_DATABASE_URL=$(url race) "$cli" migrate >"$T/race1" 2>&1 &
pid1=$!
WIREGUI_DATABASE_URL=$(url race) "$cli" migrate >"$T/race2" 2>&1 &
pid2=$!
rc1=0 rc2=0
wait "$pid1" || rc1=$?
wait "$pid2" || rc2=$?
check "concurrent: both exit 0" test "$rc1" -eq 0 -a "$rc2" -eq 0
check "concurrent: migrations applied once" \
	test "$(sql race 'SELECT version, name, checksum FROM schema_migrations ORDER BY version')" \
	= "$expected_rows"
total=$(cat "$T/race1" "$T/race2" | sed -n 's/^migrated: applied \([0-9]*\) .*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
check "concurrent: applied counts add up to $k" test "$total" -eq "$k"

# A migrator waits while another holds the migration lock.
newdb locked
key=33611462277035369
psql -X -qtA "$(url locked)" -c "SELECT pg_advisory_lock($key)" -c "SELECT pg_sleep(2)" \
	>/dev/null 2>&1 &
holder=$!
wait_for advisory_held locked
WIREGUI_DATABASE_URL=$(url locked) "$cli" migrate >"$T/out" 2>"$T/err" &
waiter=$!
sleep 0.5
waiting=0
kill -0 "$waiter" 2>/dev/null || waiting=1
check "lock held: migrate waits" test "$waiting" -eq 0
check "lock held: nothing created yet" \
	test "$(sql locked "SELECT to_regclass('schema_migrations') IS NULL")" = t
rc=0
wait "$waiter" || rc=$?
wait "$holder" || true
check "lock released: migrate finishes" test "$rc" -eq 0

# A failing migration is rolled back alone and named with its line.
newdb broken
migrate "$badcli" broken
check "failing migration: exit 1" test "$rc" -eq 1
check "failing migration: file, line and PostgreSQL's message" \
	err_has 'migration 0003_broken.sql failed at line 5: relation "no_such_table" does not exist'
check "failing migration: earlier ones stay applied" \
	test "$(sql broken 'SELECT string_agg(version::text, $$,$$ ORDER BY version) FROM schema_migrations')" = 1,2
check "failing migration: its own changes rolled back" \
	test "$(sql broken "SELECT to_regclass('t_three') IS NULL")" = t
check "quotes, backslashes and UTF-8 survive embedding" \
	test "$(sql broken 'SELECT note FROM t_two')" = "it's a \\ backslash, ünïcode"
migrate "$badcli" broken
check "failing migration: rerun fails the same way" err_has 'migration 0003_broken.sql failed at line 5'

# Connection failures are clear.
dead=$(free_port)
rc=0
WIREGUI_DATABASE_URL=postgresql://postgres@127.0.0.1:$dead/x "$cli" migrate >"$T/out" 2>"$T/err" || rc=$?
check "unreachable database: exit 1" test "$rc" -eq 1
check "unreachable database: says so" err_has "cannot connect to the database: connection to server"
rc=0
WIREGUI_DATABASE_URL='postgresql://postgres@127.0.0.1:notaport/x' "$cli" migrate >"$T/out" 2>"$T/err" || rc=$?
check "malformed url: exit 1" test "$rc" -eq 1
rc=0
WIREGUI_DATABASE_URL='postgresql://u:s3cr%zzet@127.0.0.1/x' "$cli" migrate >"$T/out" 2>"$T/err" || rc=$?
check "unparsable url: exit 1" test "$rc" -eq 1
check "unparsable url: says so" err_has "database.url cannot be parsed"
no_secret() { ! grep -q s3cr "$T/out" "$T/err"; }
check "unparsable url: the password is not repeated" no_secret
migrate "$cli" no_such_database
check "missing database: exit 1" test "$rc" -eq 1

# Command line.
rc=0
"$cli" frobnicate >"$T/out" 2>"$T/err" || rc=$?
check "unknown command: exit 2, usage on stderr" test "$rc" -eq 2 -a ! -s "$T/out"
check "unknown command: usage text" err_has "usage: wiregui"
rc=0
"$cli" migrate --bogus >"$T/out" 2>"$T/err" || rc=$?
check "unknown option: exit 2" test "$rc" -eq 2
check "--version" sh -c "'$cli' --version | grep -q '^wiregui [0-9]'"
check "--help lists migrate" sh -c "'$cli' --help | grep -q '^  migrate'"
rc=0
"$cli" >"$T/out" 2>"$T/err" || rc=$?
check "no command: exit 2" test "$rc" -eq 2

# The generator refuses bad migration sets (the build fails on them).
embed() { # DIR -> status of embed.py over DIR/*.sql
	python3 "$src/sql/embed.py" --srcdir "$1" --output "$T/gen.c" "$1"/*.sql >"$T/out" 2>"$T/err"
}
embed_fails() { ! embed "$1"; }
gen() { # NAME FILE=TEXT...
	local d=$T/gen-$1
	shift
	mkdir -p "$d"
	for spec in "$@"; do printf '%s\n' "${spec#*=}" >"$d/${spec%%=*}"; done
	echo "$d"
}
d=$(gen good 0001_a.sql='SELECT 1;' 0002_b_2.sql='DO $$ BEGIN PERFORM 1; END; $$;')
check "embed.py: a good set" embed "$d"
check "embed.py: the table holds both" grep -q '"0002_b_2.sql"' "$T/gen.c"
d=$(gen gap 0001_a.sql='SELECT 1;' 0003_c.sql='SELECT 1;')
check "embed.py: refuses a gap" embed_fails "$d"
d=$(gen dup 0001_a.sql='SELECT 1;' 0001_b.sql='SELECT 1;')
check "embed.py: refuses a duplicate version" embed_fails "$d"
d=$(gen name 0001_Bad-Name.sql='SELECT 1;')
check "embed.py: refuses a bad name" embed_fails "$d"
d=$(gen txn 0001_a.sql='BEGIN;')
check "embed.py: refuses BEGIN;" embed_fails "$d"
d=$(gen commit 0001_a.sql="$(printf 'SELECT 1;\ncommit ;')")
check "embed.py: refuses COMMIT;" embed_fails "$d"
d=$(gen empty 0001_a.sql='')
check "embed.py: refuses an empty file" embed_fails "$d"
d=$(gen unlisted 0001_a.sql='SELECT 1;' 0002_b.sql='SELECT 1;')
unlisted_fails() { ! python3 "$src/sql/embed.py" --srcdir "$1" --output "$T/gen.c" "$1/0001_a.sql" 2>/dev/null; }
check "embed.py: refuses an unlisted file" unlisted_fails "$d"

tap_done
