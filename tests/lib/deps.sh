# SPDX-License-Identifier: AGPL-3.0-or-later
# shellcheck shell=bash
#
# The Debian 12 packages WireGUI needs, in one place, and an installer that
# only touches what is missing. Sourced by packaging/quickstart and tests/run.
#
#   deps_install LIST...   install the packages of the named lists that are
#                          missing (lists: build run test); apt-get update
#                          runs once, and only when something is missing.
#   deps_missing LIST...   print the missing packages, one a line
#
# Add a package to the list that needs it; a later debian/control should
# agree with DEPS_BUILD and DEPS_RUN.

# Compile wiregui-agent, wiregui-web and the CLI.
DEPS_BUILD=(
	build-essential
	meson
	ninja-build
	pkg-config
	python3
	protobuf-c-compiler
	libprotobuf-c-dev
	libevent-dev
	libpq-dev
	libhiredis-dev
	libjson-c-dev
	libsodium-dev
	libmnl-dev
	libnftnl-dev
)

# Run them (quickstart): throwaway database and cache, WireGuard in user
# space, nftables, and the tools the scripts call.
DEPS_RUN=(
	postgresql-15
	redis-server
	wireguard-go
	wireguard-tools
	nftables
	iproute2
	procps
	curl
	util-linux
	passwd
)

# Test suites, static checks and the fuzz build.
DEPS_TEST=(
	check
	clang
	libclang-rt-14-dev
	clang-format
	cppcheck
	socat
	jq
	iputils-ping
	git
	# tests/lib/vm.sh: Debian's kernel under qemu (TCG) from an initramfs
	qemu-system-x86
	busybox-static
	cpio
	kmod
	xz-utils
	zstd
)

_deps_list()
{
	local name
	for name in "$@"; do
		case $name in
		build) printf '%s\n' "${DEPS_BUILD[@]}" ;;
		run) printf '%s\n' "${DEPS_RUN[@]}" ;;
		test) printf '%s\n' "${DEPS_TEST[@]}" ;;
		*)
			echo "deps.sh: unknown package list '$name'" >&2
			return 1
			;;
		esac
	done
}

deps_missing()
{
	local pkg
	_deps_list "$@" | sort -u | while read -r pkg; do
		if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) != "ii "* ]]; then
			echo "$pkg"
		fi
	done
}

deps_install()
{
	local missing
	missing=$(deps_missing "$@") || return 1
	[[ -z $missing ]] && return 0
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps.sh: missing Debian packages (run as root, or install them):" >&2
		echo "  apt-get install --no-install-recommends ${missing//$'\n'/ }" >&2
		return 1
	fi
	echo "Installing missing Debian packages (a few minutes on a fresh machine): ${missing//$'\n'/ }"
	local log
	log=$(mktemp /tmp/wiregui-apt.XXXXXX)
	# shellcheck disable=SC2086
	if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update >"$log" 2>&1 ||
		! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y \
			--no-install-recommends $missing >>"$log" 2>&1; then
		tail -n 30 "$log" >&2
		echo "deps.sh: apt-get failed (full log: $log)" >&2
		return 1
	fi
	rm -f "$log"
	missing=$(deps_missing "$@")
	if [[ -n $missing ]]; then
		echo "deps.sh: still missing after apt-get: ${missing//$'\n'/ }" >&2
		return 1
	fi
}
