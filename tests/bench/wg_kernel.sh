#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Benchmark: the agent's peer writes against wireguard-tools on the kernel
# backend, in Debian's cloud kernel under qemu -accel tcg (tests/lib/vm.sh,
# one emulated CPU), for 1k and 10k peers (each with a PSK, one IPv4 /32 and
# one IPv6 /128: agentctl genpeers):
#
#   cold full sync (fresh interface)   vs  wg setconf (fresh interface)
#   no-op full sync                    vs  wg syncconf with the same config
#   full sync changing 1% of the peers vs  wg syncconf with the same change
#   one-peer patch (upsert, remove)    vs  one `wg set` process for one peer
#                                          (20 peers on top of the N, each
#                                          timed; medians)
#
# What is timed is what tests/bench/wg.sh times (its header says it in full):
# ours on a connection that already said Hello, from the first request to
# the last Result (agentctl -T, agentctl patcheach), and also as a whole agentctl
# process (*_agentctl); the anchors as whole `wg` processes. CPU split
# (*_cpu_*, CPU ms over the same span): "client" is agentctl or wg, "agent"
# the agent; the kernel's work is done in their system calls, so it is in
# theirs. Everything runs emulated, both sides alike, so times are many times
# the native ones but the ratios (ours / anchor) compare like with like.
# Medians of 5 for the no-op, of 6 for the 1% change, of 20 for the patches.
#
# Peer sets and configs are made on the host (make_sets in lib.sh); the
# guest (wg_kernel_guest.sh, under bash) measures, checks each dump against
# the desired set and that no-op syncs write nothing, and prints the
# "bench: kernel_NAME VALUE UNIT" and "ratio: kernel_NAME VALUE" lines that
# this script passes on. Exit 0, 1 when a check failed or the VM did not
# finish, 77 (skip) when qemu or a kernel is not to be had or not root.
# Env: WIREGUI_BENCH_SIZES (default "1000 10000"), WIREGUI_BUILD_DIR,
# WIREGUI_VM_TIMEOUT (seconds, default 1200), those of tests/lib/vm.sh
# (WIREGUI_VM_MEM: default 1536 MiB here; the kernel keeps about 20 KiB a
# peer, and each size's two interfaces stay until the end).
set -uo pipefail
export LC_ALL=C

src=${WIREGUI_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${WIREGUI_BUILD_DIR:-$src/build}
agent=$build/agent/wiregui-agent
AGENTCTL=$build/tests/system/agentctl
sizes=${WIREGUI_BENCH_SIZES:-1000 10000}
export WIREGUI_VM_MEM=${WIREGUI_VM_MEM:-1536}
# shellcheck source-path=SCRIPTDIR source=../lib/vm.sh
. "$src/tests/lib/vm.sh"

skip() {
	echo "SKIP: $*"
	exit 77
}
[[ $(id -u) -eq 0 ]] || skip "needs root (the kernel package cache)"
command -v wg >/dev/null || skip "wg (wireguard-tools) not installed"
command -v bash >/dev/null || skip "no bash to put in the guest"
vm_can_run || skip "qemu cannot run: $VM_ERROR"
vm_kernel || skip "no kernel to boot: $VM_ERROR"
for f in "$agent" "$AGENTCTL"; do
	[[ -x $f ]] || {
		echo "bench: $f is not built (ninja -C $build)" >&2
		exit 1
	}
done
if ldd "$agent" 2>/dev/null | grep 'libasan\.' >/dev/null; then
	echo "# the agent is an ASan build: these figures say little"
fi

umask 077
work=$(mktemp -d /tmp/wiregui-bench-kernel.XXXXXX)
ok=0
cleanup() {
	if ((ok)); then
		rm -rf "$work"
	else
		echo "# files kept in $work (console log: $work/vm.log)"
	fi
}
trap cleanup EXIT
trap "exit 143" TERM
trap "exit 130" INT

fail() { echo "FAILED: $*"; }
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$src/tests/bench/lib.sh"

root=$work/root
guest_root() {
	vm_root_new "$root" &&
		vm_add_bin "$root" "$agent" /opt/wiregui-agent &&
		vm_add_bin "$root" "$AGENTCTL" /opt/agentctl &&
		vm_add_bin "$root" "$(command -v bash)" /bin/bash &&
		vm_add_file "$root" "$src/tests/bench/lib.sh" /bench/lib.sh &&
		vm_add_file "$root" "$src/tests/lib/peers.sh" /bench/peers.sh &&
		vm_add_file "$root" "$src/tests/bench/wg_kernel_guest.sh" /bench/guest.sh
}
guest_root || {
	echo "cannot build the guest's root: $VM_ERROR"
	exit 1
}
for n in $sizes; do
	T=$root/bench/$n
	mkdir -p "$T" || exit 1
	make_sets "$n" || {
		echo "cannot make the peer sets of $n"
		exit 1
	}
	for f in p0 p1 p0+; do
		canon_peers "$T/$f" >"$T/$f.canon"
	done
done
echo 'bash /bench/guest.sh' >"$root/test.sh"
vm_add_env "$root" BENCH_SIZES "$sizes"
vm_pack "$root" "$work/initramfs.cpio.gz" || {
	echo "cannot pack the initramfs: $VM_ERROR"
	exit 1
}
echo "# kernel $VM_KV under qemu TCG, sizes: $sizes"

start=$SECONDS
rc=0
vm_run "$work/initramfs.cpio.gz" "$work/vm.log" "${WIREGUI_VM_TIMEOUT:-1200}" || rc=$?
echo "# VM ran $((SECONDS - start)) s, VM_RC=$rc"
grep -a -e '^bench: ' -e '^ratio: ' -e '^# ' -e '^FAILED: ' "$work/vm.log"
case $rc in
0) ok=1 ;;
124) echo "FAILED: the VM timed out" ;;
99) echo "FAILED: no VM_RC marker (panic or crash); console, last 30 lines:"
	grep -av -e '^bench: ' -e '^ratio: ' "$work/vm.log" | tail -n 30 | sed 's/^/#   /' ;;
*) echo "FAILED: $rc check(s) failed in the guest" ;;
esac
((ok))
