#!/usr/bin/env bash
# ensure-pgbouncer.sh: print (last line of stdout) the path of a working
# pgbouncer binary, installing it if it is missing. Progress goes to stderr.
# The pooling tests (stdlib/pooling_test.go) run it behind PostgreSQL.
#
# Lookup order: $PGBOUNCER; pgbouncer on PATH; /usr/sbin/pgbouncer; the
# repo-local extraction .cache/pgbouncer/usr/sbin/pgbouncer.
# If none is found: as root with apt-get, install Debian's pgbouncer package;
# otherwise `apt-get download` the .deb (and any library it needs that is not
# installed) and extract it with `dpkg-deb -x` into .cache/pgbouncer (no root
# needed). An extracted binary needs .cache/pgbouncer/usr/lib/*-linux-gnu on
# LD_LIBRARY_PATH; internal/pgbouncer adds it.
#
# IAMC_PGBOUNCER_FORCE_DOWNLOAD=1 skips the lookups and always takes the
# download+extract path (for testing it).
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root_dir/.cache/pgbouncer"
cached_bin="$cache/usr/sbin/pgbouncer"

log() { printf 'ensure-pgbouncer: %s\n' "$*" >&2; }

# cache_ld_path: LD_LIBRARY_PATH needed to run a binary extracted into the cache.
cache_ld_path() {
	local p
	p=$(printf '%s:' "$cache"/usr/lib/*-linux-gnu "$cache"/lib/*-linux-gnu)
	printf '%s%s\n' "$p" "${LD_LIBRARY_PATH:-}"
}

# runs BIN: the binary starts and reports its version.
runs() {
	[[ -x $1 ]] || return 1
	LD_LIBRARY_PATH=$(cache_ld_path) "$1" --version >/dev/null 2>&1
}

find_system() {
	if [[ -n ${PGBOUNCER:-} ]]; then
		if runs "$PGBOUNCER"; then
			printf '%s\n' "$PGBOUNCER"
			return 0
		fi
		log "PGBOUNCER=$PGBOUNCER is not a working pgbouncer binary; looking elsewhere"
	fi
	local p
	if p=$(command -v pgbouncer 2>/dev/null) && runs "$p"; then
		printf '%s\n' "$p"
		return 0
	fi
	if runs /usr/sbin/pgbouncer; then
		printf '%s\n' /usr/sbin/pgbouncer
		return 0
	fi
	return 1
}

find_cached() {
	runs "$cached_bin" && printf '%s\n' "$cached_bin"
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# lib_deps PKG: the library packages PKG depends on directly (first
# alternative of an "A | B" dependency only).
lib_deps() {
	apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "$1" 2>/dev/null |
		awk '$1 == "Depends:" || $1 == "|Depends:" {
			if (!alt && $2 ~ /^lib/) print $2
			alt = ($1 == "|Depends:")
		}' | sort -u
}

install_download() {
	command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
		log "need apt-get and dpkg-deb to download pgbouncer; install pgbouncer and set PGBOUNCER"
		return 1
	}
	local pkgs=(pgbouncer) p
	# Libraries not installed on this host (libevent, libc-ares, ...) come
	# along; pgbouncer's other dependencies (postgresql-common, init scripts)
	# are not needed to run the binary.
	while IFS= read -r p; do
		[[ -n $p ]] && ! installed "$p" && pkgs+=("$p")
	done < <(lib_deps pgbouncer)
	local debs="$cache/debs"
	mkdir -p "$debs"
	rm -f "$debs"/*.deb
	log "downloading ${pkgs[*]} into $debs"
	# As root, apt drops to user _apt, which may not be able to write here;
	# that only causes a warning.
	(cd "$debs" && apt-get download -q "${pkgs[@]}" 2>&1 | sed 's/^/  /' >&2) || {
		log "apt-get download failed (no apt lists? run 'apt-get update' as root, or install pgbouncer)"
		return 1
	}
	local deb
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$cache" || return 1
	done
	local missing
	missing=$(LD_LIBRARY_PATH=$(cache_ld_path) ldd "$cached_bin" 2>/dev/null | awk '/not found/ {print $1}' | sort -u || true)
	if [[ -n $missing ]]; then
		log "warning: shared libraries still missing: $(echo "$missing" | tr '\n' ' ')"
	fi
}

install_system() {
	log "installing Debian's pgbouncer with apt-get"
	apt-get update -qq >&2
	# Only the binary is wanted: keep the package's own service from starting.
	DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq pgbouncer >&2
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet pgbouncer 2>/dev/null; then
		systemctl stop pgbouncer >&2 || true
	fi
}

main() {
	local bin=""
	if [[ ${IAMC_PGBOUNCER_FORCE_DOWNLOAD:-} == 1 ]]; then
		log "IAMC_PGBOUNCER_FORCE_DOWNLOAD=1: skipping lookups, downloading into $cache"
		install_download || true
		bin=$(find_cached) || true
	else
		bin=$(find_system) || bin=$(find_cached) || true
		if [[ -z $bin ]]; then
			if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
				install_system || true
				bin=$(find_system) || true
			fi
			if [[ -z $bin ]]; then
				install_download || true
				bin=$(find_cached) || true
			fi
		fi
	fi
	if [[ -z $bin ]]; then
		log "could not find or install pgbouncer."
		log "install it (Debian/Ubuntu: apt-get install pgbouncer) and/or set PGBOUNCER to the binary"
		exit 1
	fi
	log "using $bin ($(LD_LIBRARY_PATH=$(cache_ld_path) "$bin" --version 2>&1 | head -n 1))"
	printf '%s\n' "$bin"
}

main "$@"
