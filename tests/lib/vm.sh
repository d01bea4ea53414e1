# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
#
# A throwaway virtual machine for tests that need a real kernel (WireGuard's
# kernel module): Debian's cloud kernel under qemu-system-x86_64 -accel tcg
# (no KVM: the CI machines' nested KVM cannot run a guest kernel), booted from
# a small initramfs with busybox, wg, iproute2 and the binaries under test.
# The guest has no network card; everything stays inside it. Source it; it
# sets no shell options and every function is safe under `set -euo pipefail`.
#
#   vm_can_run              0 if qemu-system-x86_64 with TCG is there; else
#                           1 and the reason in VM_ERROR
#   vm_kernel               fetch the kernel package (apt-get download, never
#                           installed), unpack it once into the cache and run
#                           depmod; sets VM_KERNEL (vmlinuz), VM_MODROOT (the
#                           tree holding lib/modules) and VM_KV (its version).
#                           1 and VM_ERROR when no kernel can be had.
#   vm_root_new DIR [MOD...]
#                           a fresh guest root in DIR (removed first): busybox,
#                           /init, wg, /usr/sbin/ip and the modules MOD (default
#                           wireguard and nf_tables: the agent opens both at
#                           start) with their dependencies, loaded by /init
#                           in order. Call vm_kernel first.
#   vm_add_bin DIR PATH [DEST]
#                           copy an executable to DEST (default /opt/NAME, and
#                           /opt is first in the guest's PATH) with the shared
#                           libraries ldd lists
#   vm_add_file DIR SRC DEST
#                           copy a file to DEST
#   vm_add_env DIR NAME VALUE
#                           export NAME=VALUE in the guest (ASAN_OPTIONS, ...)
#   vm_pack DIR OUT         write the initramfs OUT (newc cpio, gzip)
#   vm_run INITRAMFS LOG [TIMEOUT]
#                           boot it; the guest runs `sh /test.sh` and powers
#                           off. Returns the script's exit status (carried on
#                           the serial console as "VM_RC=<n>"), 124 when the
#                           VM timed out (default 600 s), 99 when the marker is
#                           missing (crash, panic). LOG gets the console output
#                           with carriage returns removed.
#
# Environment:
#   WIREGUI_VM_CACHE        cache directory (default /var/cache/wiregui-tests),
#                           outside the source tree, kept across runs
#   WIREGUI_VM_KERNEL_PKG   kernel package to fetch (default: what
#                           linux-image-cloud-amd64 depends on)
#   WIREGUI_VM_KERNEL, WIREGUI_VM_MODROOT
#                           use this vmlinuz and module tree instead (both set)
#   WIREGUI_VM_MEM          guest memory in MiB (default 1024)
#
# In the guest, busybox applets come first in sh (ash prefers them over PATH):
# call iproute2 as /usr/sbin/ip. The console is the first serial port; kernel
# messages are quiet so lines from the test script are not broken up.

VM_ERROR=
VM_KERNEL=
VM_MODROOT=
VM_KV=

_vm_err() {
	VM_ERROR=$*
	return 1
}

vm_can_run() {
	local qemu
	qemu=$(command -v qemu-system-x86_64 2>/dev/null) ||
		_vm_err "qemu-system-x86_64 not installed (package qemu-system-x86)" || return 1
	if ! "$qemu" -accel help 2>/dev/null | grep -x tcg >/dev/null; then
		_vm_err "$qemu has no TCG accelerator"
		return 1
	fi
	if [[ ! -x /bin/busybox ]] || [[ $'\n'$(/bin/busybox --list 2>/dev/null)$'\n' != *$'\ninsmod\n'* ]]; then
		_vm_err "busybox (package busybox-static) not installed at /bin/busybox"
		return 1
	fi
	local tool
	for tool in cpio gzip depmod modprobe dpkg-deb; do
		command -v "$tool" >/dev/null 2>&1 ||
			_vm_err "$tool not installed (packages cpio, gzip, kmod, dpkg)" || return 1
	done
}

_vm_cache() {
	echo "${WIREGUI_VM_CACHE:-/var/cache/wiregui-tests}"
}

# The kernel package to fetch and its candidate version: "NAME VERSION".
_vm_kernel_pkg() {
	local pkg=${WIREGUI_VM_KERNEL_PKG:-} ver
	if [[ -z $pkg ]]; then
		pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1)
	fi
	[[ -n $pkg ]] || return 1
	ver=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n 1)
	[[ -n $ver && $ver != "(none)" ]] || return 1
	echo "$pkg $ver"
}

# Set VM_* from an unpacked cache entry DIR (holding .ready).
_vm_use() {
	VM_MODROOT=$1/root
	VM_KV=$(cat "$1/.ready")
	VM_KERNEL=$VM_MODROOT/boot/vmlinuz-$VM_KV
	[[ -n $VM_KV && -f $VM_KERNEL && -f $VM_MODROOT/lib/modules/$VM_KV/modules.dep ]]
}

# Download, unpack and depmod PKG VERSION into the cache entry DIR.
_vm_fetch() {
	local pkg=$1 ver=$2 dir=$3 tmp deb kv
	tmp=$(mktemp -d "$(_vm_cache)/fetch.XXXXXX") || return 1
	# _apt must be able to write there, or apt warns about an unsandboxed download.
	chmod 0755 "$tmp"
	if ! (cd "$tmp" && apt-get -q download "$pkg=$ver") >"$tmp/apt.log" 2>&1; then
		VM_ERROR="apt-get download $pkg=$ver failed: $(tail -n 1 "$tmp/apt.log")"
		rm -rf "$tmp"
		return 1
	fi
	deb=$(find "$tmp" -maxdepth 1 -name '*.deb' | head -n 1)
	mkdir -p "$tmp/root"
	if [[ -z $deb ]] || ! dpkg-deb -x "$deb" "$tmp/root" 2>"$tmp/apt.log"; then
		VM_ERROR="cannot unpack $pkg: $(tail -n 1 "$tmp/apt.log")"
		rm -rf "$tmp"
		return 1
	fi
	rm -f "$deb"
	kv=$(find "$tmp/root/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
	# The package has no modules.dep: the postinst makes it.
	if [[ -z $kv || ! -f $tmp/root/boot/vmlinuz-$kv ]] || ! depmod -b "$tmp/root" "$kv"; then
		VM_ERROR="$pkg has no kernel or its modules cannot be indexed"
		rm -rf "$tmp"
		return 1
	fi
	echo "$kv" >"$tmp/.ready"
	rm -f "$tmp/apt.log"
	rm -rf "$dir"
	mv "$tmp" "$dir"
}

# The newest complete cache entry, when apt cannot tell or fetch.
_vm_cached_any() {
	local d
	d=$(find "$(_vm_cache)/kernel" -mindepth 2 -maxdepth 2 -name .ready -printf '%T@ %h\n' \
		2>/dev/null | sort -rn | head -n 1 | cut -d' ' -f2-)
	[[ -n $d ]] && _vm_use "$d"
}

# The current package from the apt lists, from the cache or fetched now.
_vm_kernel_current() {
	local cache nv pkg ver dir
	cache=$(_vm_cache)
	nv=$(_vm_kernel_pkg) ||
		_vm_err "no linux-image cloud amd64 package in the apt lists" || return 1
	read -r pkg ver <<<"$nv"
	dir=$cache/kernel/${pkg}_${ver//[:~]/_}
	if [[ -f $dir/.ready ]] && _vm_use "$dir"; then
		return 0
	fi
	mkdir -p "$cache/kernel" || _vm_err "cannot create $cache/kernel" || return 1
	_vm_fetch "$pkg" "$ver" "$dir" || return 1
	# A newer package replaces the older ones.
	find "$cache/kernel" -mindepth 1 -maxdepth 1 ! -path "$dir" -exec rm -rf {} +
	_vm_use "$dir" || _vm_err "cache entry $dir is incomplete"
}

_vm_kernel_locked() {
	local why
	_vm_kernel_current && return 0
	why=$VM_ERROR
	# Offline, or lists that name a package the mirror no longer has.
	_vm_cached_any && return 0
	if [[ $(id -u) -eq 0 ]] &&
		DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update \
			>/dev/null 2>&1; then
		_vm_kernel_current && return 0
		why=$VM_ERROR
	fi
	_vm_err "$why"
}

vm_kernel() {
	VM_ERROR=
	if [[ -n ${WIREGUI_VM_KERNEL:-} && -n ${WIREGUI_VM_MODROOT:-} ]]; then
		VM_KERNEL=$WIREGUI_VM_KERNEL
		VM_MODROOT=$WIREGUI_VM_MODROOT
		VM_KV=$(find "$VM_MODROOT/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | head -n 1)
		[[ -f $VM_KERNEL && -n $VM_KV ]] || _vm_err "WIREGUI_VM_KERNEL/MODROOT unusable"
		return
	fi
	local cache rc=0
	cache=$(_vm_cache)
	mkdir -p "$cache" || _vm_err "cannot create $cache" || return 1
	# One fetch at a time (meson runs tests in parallel, tests/run two builds).
	{
		flock -w 600 9 || _vm_err "timed out waiting for the lock on $cache" || return 1
		_vm_kernel_locked || rc=1
	} 9>"$cache/.lock"
	return $rc
}

# _vm_copy SRC DEST: copy, keeping the mode, creating the parents.
_vm_copy() {
	mkdir -p "$(dirname "$2")" && cp -L "$1" "$2"
}

vm_add_bin() {
	local root=$1 bin=$2 dest=${3:-/opt/$(basename "$2")} lib
	[[ -x $bin ]] || _vm_err "$bin is not an executable" || return 1
	_vm_copy "$bin" "$root$dest" || return 1
	# ldd prints "name => /path (addr)" and "/lib64/ld-linux... (addr)".
	while read -r lib; do
		[[ -e $root$lib ]] || _vm_copy "$lib" "$root$lib" || return 1
	done < <(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' | sort -u)
}

vm_add_file() {
	_vm_copy "$2" "$1$3"
}

vm_add_env() {
	printf 'export %s=%q\n' "$2" "$3" >>"$1/etc/vm-env"
}

# The modules MOD... need, in load order (modprobe's own resolution).
_vm_modules() {
	local mod
	for mod in "$@"; do
		modprobe -d "$VM_MODROOT" -S "$VM_KV" --show-depends "$mod" || return 1
	done | awk '$1 == "insmod" { print $2 }' | awk '!seen[$0]++'
}

vm_root_new() {
	local root=$1 ko name mods
	shift
	[[ -n $VM_MODROOT ]] || _vm_err "vm_root_new before vm_kernel" || return 1
	[[ $# -gt 0 ]] || set -- wireguard nf_tables
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,run,var,lib/modules,opt} || return 1
	ln -s ../run "$root/var/run"
	cp /bin/busybox "$root/bin/busybox" || return 1
	: >"$root/etc/vm-env"
	# Enough of a user database for getpwnam("root") and ls -l.
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
	mods=$(_vm_modules "$@") || _vm_err "modprobe cannot resolve $* in $VM_KV" || return 1
	[[ -n $mods ]] || _vm_err "no module $* in $VM_KV" || return 1
	while read -r ko; do
		name=$(basename "$ko")
		case $ko in
		*.xz) xz -dc "$ko" >"$root/lib/modules/${name%.xz}" ;;
		*.zst) zstd -qdc "$ko" >"$root/lib/modules/${name%.zst}" ;;
		*.gz) gzip -dc "$ko" >"$root/lib/modules/${name%.gz}" ;;
		*) cp "$ko" "$root/lib/modules/$name" ;;
		esac || return 1
		name=${name%.xz}
		name=${name%.zst}
		echo "${name%.gz}" >>"$root/lib/modules/order"
	done <<<"$mods"
	vm_add_bin "$root" "$(command -v wg)" /usr/bin/wg || return 1
	vm_add_bin "$root" /usr/sbin/ip /usr/sbin/ip || return 1
	cat >"$root/init" <<-'EOF'
		#!/bin/busybox sh
		/bin/busybox --install -s /bin
		export PATH=/opt:/usr/sbin:/usr/bin:/sbin:/bin WG_COLOR_MODE=never HOME=/root
		mount -t proc proc /proc
		mount -t sysfs sys /sys
		mount -t devtmpfs dev /dev
		mount -t tmpfs run /run
		mount -t tmpfs tmp /tmp
		mkdir -p /root
		dmesg -n 1
		for m in $(cat /lib/modules/order); do
			insmod /lib/modules/$m || echo "VM: insmod $m failed"
		done
		/usr/sbin/ip link set lo up
		. /etc/vm-env
		cd /tmp
		echo
		sh /test.sh
		echo "VM_RC=$?"
		sync
		poweroff -f
	EOF
	chmod 0755 "$root/init"
}

vm_pack() {
	local root=$1 out=$2
	[[ -f $root/test.sh ]] || _vm_err "$root has no /test.sh" || return 1
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}

vm_run() {
	local initrd=$1 log=$2 limit=${3:-600} rc=0 raw
	raw=$log.raw
	timeout --kill-after=10 "$limit" qemu-system-x86_64 -accel tcg -m "${WIREGUI_VM_MEM:-1024}" \
		-smp 1 -nographic -no-reboot -nic none -kernel "$VM_KERNEL" -initrd "$initrd" \
		-append "console=ttyS0 quiet loglevel=1 panic=-1" </dev/null >"$raw" 2>&1 || rc=$?
	tr -d '\r' <"$raw" >"$log"
	rm -f "$raw"
	[[ $rc -eq 124 || $rc -eq 137 ]] && return 124
	rc=$(grep -ao 'VM_RC=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)
	return "${rc:-99}"
}
