#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Format check: every C source and header of ours must be exactly what
# clang-format (the repo's .clang-format) makes of it. Lists the files that
# are not and fails. Usage: tests/lint/format.sh [FILE...]
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"

clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null 2>&1; then
	echo "SKIP: $clang_format not installed (tests/run installs it)"
	exit 77
fi

# Our sources: tracked or new files, never build trees or generated protobuf code.
list_sources()
{
	if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$src" ls-files --cached --others --exclude-standard -- '*.c' '*.h'
	else
		find . -path './build*' -prune -o -path './.quickstart' -prune -o \
			-path './node_modules' -prune -o -type f \( -name '*.c' -o -name '*.h' \) -print |
			sed 's|^\./||'
	fi | grep -v -e '\.pb-c\.[ch]$' -e '^build' -e '/node_modules/' | sort -u
}

if [ $# -gt 0 ]; then
	files=("$@")
else
	mapfile -t files < <(list_sources)
fi

bad=()
checked=0
for f in "${files[@]}"; do
	[ -f "$f" ] || continue # deleted in the work tree but still in the index
	checked=$((checked + 1))
	if ! "$clang_format" --dry-run --Werror "$f" >/dev/null 2>&1; then
		bad+=("$f")
	fi
done

if [ "$checked" -eq 0 ]; then
	echo "no C sources found under $src"
	exit 1
fi
if [ ${#bad[@]} -gt 0 ]; then
	# Where each file first differs, then the list (last, so a log tail shows it).
	for f in "${bad[@]}"; do
		"$clang_format" --dry-run "$f" 2>&1 | grep -E -m 1 '^[^ ].*: (warning|error):' || true
	done
	echo "not formatted as .clang-format says ($("$clang_format" --version | sed 's/.*version //')); run clang-format -i on:"
	printf '  %s\n' "${bad[@]}"
	echo "clang-format: ${#bad[@]} of $checked files need formatting"
	exit 1
fi
echo "clang-format: $checked files formatted"
