# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=sh
#
# Peer sets in one canonical form, to compare what was asked for with what
# an interface has: "PUBKEY PSK ALLOWED KEEPALIVE" a peer (allowed IPs
# sorted, "(none)" for no PSK or no allowed IPs, "off" for no keepalive),
# the lines sorted. POSIX sh and awk: sourced by the host scripts (bash) and
# inside the qemu guests (busybox sh in tests/system/wg_kernel.sh, bash in
# tests/bench/wg_kernel_guest.sh), which get it as a file of the initramfs.
#
#   canon_peers FILE  of agentctl peer lines:
#                     PUBKEY [psk=B64] [keepalive=N] [allowed=CIDR,...]
#   canon_dump        of `wg show IF dump` on stdin
#   AWK_SORTLIST      the awk function sortlist(S): S's comma-separated
#                     items, sorted

AWK_SORTLIST='
function sortlist(s,   a, n, i, j, t, r) {
	n = split(s, a, ",")
	for (i = 2; i <= n; i++) {
		t = a[i]
		for (j = i - 1; j >= 1 && a[j] > t; j--)
			a[j + 1] = a[j]
		a[j + 1] = t
	}
	r = a[1]
	for (i = 2; i <= n; i++)
		r = r "," a[i]
	return r
}'

canon_peers() { # FILE
	awk "$AWK_SORTLIST"'
	NF {
		psk = "(none)"; ka = "off"; al = "(none)"
		for (i = 2; i <= NF; i++) {
			if ($i ~ /^psk=/) psk = substr($i, 5)
			else if ($i ~ /^keepalive=/) { ka = substr($i, 11); if (ka == 0) ka = "off" }
			else if ($i ~ /^allowed=/) al = sortlist(substr($i, 9))
		}
		print $1, psk, al, ka
	}' "$1" | sort
}

# wg show dump: the interface line, then per peer PUBKEY PSK ENDPOINT
# ALLOWED HANDSHAKE RX TX KEEPALIVE
canon_dump() {
	awk "$AWK_SORTLIST"'
	NR > 1 { print $1, $2, ($4 == "(none)" ? $4 : sortlist($4)), $8 }' | sort
}
