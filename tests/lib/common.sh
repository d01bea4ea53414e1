# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
#
# What the TAP test scripts share (source it after tests/lib/tap.sh, whose
# tap_failed it reads):
#
#   test_traps          the EXIT trap runs the script's cleanup(); TERM and
#                       INT exit with 143 and 130, so that it runs then too
#   test_scratch_done DIR
#                       for cleanup(): remove DIR when no test failed, else
#                       say that it is kept

test_traps() {
	trap cleanup EXIT
	trap "exit 143" TERM
	trap "exit 130" INT
}

test_scratch_done() { # DIR
	if ((${tap_failed:-0} == 0)); then
		rm -rf "$1"
	else
		echo "# logs kept in $1"
	fi
}
