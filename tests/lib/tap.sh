# SPDX-License-Identifier: AGPL-3.0-or-later
# TAP output for the shell tests (meson's protocol: 'tap').
#   check NAME CMD...   runs CMD: "ok N - NAME" or "not ok N - NAME"
#   tap_diagnose        define it to print "# ..." context after a failure
#   tap_done            prints the plan; its status is the test's
tap_n=0
tap_failed=0

tap() { # NAME STATUS
	tap_n=$((tap_n + 1))
	if [[ $2 -eq 0 ]]; then
		echo "ok $tap_n - $1"
	else
		tap_failed=$((tap_failed + 1))
		echo "not ok $tap_n - $1"
		if declare -F tap_diagnose >/dev/null; then tap_diagnose; fi
	fi
}

check() { # NAME CMD...
	local name=$1
	shift
	if "$@"; then tap "$name" 0; else tap "$name" 1; fi
}

tap_done() {
	echo "1..$tap_n"
	[[ $tap_failed -eq 0 ]]
}
