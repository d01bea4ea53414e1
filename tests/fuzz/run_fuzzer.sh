#!/bin/sh
# SPDX-License-Identifier: AGPL-3.0-or-later
# run_fuzzer.sh FUZZER CORPUS_DIR ARTIFACT_DIR SECONDS
# Fuzz for a bounded time on a copy of the seed corpus: libFuzzer adds new
# inputs to its corpus directory, and the source tree must stay untouched.
# Crash inputs are kept in ARTIFACT_DIR (in the build tree).
set -eu
fuzzer=$1 corpus=$2 artifacts=$3 seconds=$4

work=$(mktemp -d "${TMPDIR:-/tmp}/wiregui-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 143' INT TERM
cp -R "$corpus/." "$work/"
mkdir -p "$artifacts"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$work"
