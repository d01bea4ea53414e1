#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Static analysis of our C code with cppcheck; any finding fails.
# Usage: tests/lint/cppcheck.sh [BUILD_DIR]   (default: $WIREGUI_BUILD_DIR, else build/)
# The build dir provides config.h and the generated proto/agent.pb-c.h.
# Justified suppressions live in tests/lint/cppcheck.supp, one comment each;
# a one-off goes inline as "// cppcheck-suppress id" with a reason.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${WIREGUI_BUILD_DIR:-$src/build}}
build=$(cd "$build" && pwd)
cd "$src"

if ! command -v cppcheck >/dev/null 2>&1; then
	echo "SKIP: cppcheck not installed (tests/run installs it)"
	exit 77
fi
if [ ! -f "$build/proto/agent.pb-c.h" ] || [ ! -f "$build/config.h" ]; then
	echo "$build has no proto/agent.pb-c.h or config.h: build first (ninja -C $build)"
	exit 1
fi

dirs=()
for d in common agent frontend tests; do
	[ -d "$d" ] && dirs+=("$d")
done
mapfile -t files < <(find "${dirs[@]}" -type f -name '*.c' ! -name '*.pb-c.c' | sort)
if [ ${#files[@]} -eq 0 ]; then
	echo "no C sources found under $src"
	exit 1
fi

# Cache per build dir: reruns only re-analyse what changed. cppcheck does not
# notice a changed library file or suppression list, so those key the cache.
key=$(cat "$src/tests/lint/cppcheck.sh" "$src/tests/lint/wiregui.cfg" \
	"$src/tests/lint/cppcheck.supp" <(cppcheck --version) | md5sum | cut -c1-12)
cache=$build/cppcheck-cache/$key
if [ ! -d "$cache" ]; then
	rm -rf "$build/cppcheck-cache"
	mkdir -p "$cache"
fi

incs=()
for d in common agent frontend tests/lib sql; do
	[ -d "$d" ] && incs+=(-I "$d")
done
# Library headers whose macros change the code's shape (protobuf-c's version
# guard and declarations, check's START_TEST): a small include dir of links,
# rather than all of /usr/include, which would make cppcheck slow and analyse glibc.
shim=$cache/include
rm -rf "$shim"
mkdir -p "$shim"
for h in protobuf-c check.h check_stdint.h; do
	[ -e "/usr/include/$h" ] && ln -s "/usr/include/$h" "$shim/$h"
done
incs+=(-I "$shim")

out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
cppcheck --quiet \
	--enable=warning,style,performance,portability \
	--error-exitcode=1 --inline-suppr --std=c11 --language=c \
	--library=posix --library="$src/tests/lint/wiregui.cfg" --platform=unix64 \
	-D_GNU_SOURCE -D__GNUC__ -D__linux__ \
	"${incs[@]}" -I "$build/proto" -I "$build" -I "$build/sql" \
	--suppressions-list="$src/tests/lint/cppcheck.supp" \
	--cppcheck-build-dir="$cache" \
	-j "$(nproc)" \
	--template='{file}:{line}:{column}: {severity} ({id}): {message}' \
	"${files[@]}" 2>"$out" || rc=$?

if [ -s "$out" ] || [ "$rc" -ne 0 ]; then
	cat "$out"
	echo "cppcheck: $(grep -c '^[^ ].*: [a-z]* (' "$out" || true) finding(s) in ${#files[@]} files"
	exit 1
fi
echo "cppcheck: ${#files[@]} files, no findings"
