#!/usr/bin/env bash
# ensure-postgres.sh: print (last line of stdout) the directory holding the
# PostgreSQL server binaries initdb, pg_ctl and postgres, installing them if
# they are missing. Progress goes to stderr.
#
# Lookup order: $PG_BIN; `pg_config --bindir`; the highest
# /usr/lib/postgresql/*/bin; the repo-local extraction
# .cache/postgresql/usr/lib/postgresql/*/bin.
# If none is found: as root with apt-get, install Debian's postgresql package;
# otherwise `apt-get download` the .debs and extract them with `dpkg-deb -x`
# into .cache/postgresql (no root needed).
#
# IAMC_PG_FORCE_DOWNLOAD=1 skips the lookups and always takes the
# download+extract path (for testing it).
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root_dir/.cache/postgresql"

log() { printf 'ensure-postgres: %s\n' "$*" >&2; }

has_server() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

# highest DIR...: the last argument (sorted by version) that holds server binaries.
highest() {
	local d best=""
	while IFS= read -r d; do
		has_server "$d" && best=$d
	done < <(printf '%s\n' "$@" | sort -V)
	[[ -n $best ]] && printf '%s\n' "$best"
}

find_cached() {
	shopt -s nullglob
	local dirs=("$cache"/usr/lib/postgresql/*/bin)
	shopt -u nullglob
	((${#dirs[@]})) && highest "${dirs[@]}"
}

find_system() {
	if [[ -n ${PG_BIN:-} ]]; then
		if has_server "$PG_BIN"; then
			printf '%s\n' "$PG_BIN"
			return 0
		fi
		log "PG_BIN=$PG_BIN does not contain initdb, pg_ctl and postgres; looking elsewhere"
	fi
	local d
	if command -v pg_config >/dev/null 2>&1 && d=$(pg_config --bindir 2>/dev/null) && has_server "$d"; then
		printf '%s\n' "$d"
		return 0
	fi
	shopt -s nullglob
	local dirs=(/usr/lib/postgresql/*/bin)
	shopt -u nullglob
	((${#dirs[@]})) && highest "${dirs[@]}" && return 0
	return 1
}

# cache_ld_path: LD_LIBRARY_PATH needed to run binaries extracted into the cache.
cache_ld_path() {
	local p
	p=$(printf '%s:' "$cache"/usr/lib/*-linux-gnu "$cache"/lib/*-linux-gnu)
	printf '%s%s\n' "$p" "${LD_LIBRARY_PATH:-}"
}

# Highest NN with a postgresql-NN package known to apt.
pick_major() {
	apt-cache search --names-only '^postgresql-[0-9]+$' 2>/dev/null |
		sed -n 's/^postgresql-\([0-9][0-9]*\) .*/\1/p' | sort -n | tail -1
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# download_extract PKG...: apt-get download the packages into the cache and
# extract them there.
download_extract() {
	local debs="$cache/debs"
	mkdir -p "$debs"
	rm -f "$debs"/*.deb
	log "downloading $* into $debs"
	# As root, apt drops to user _apt, which may not be able to write here;
	# that only causes a warning.
	(cd "$debs" && apt-get download -q "$@" 2>&1 | sed 's/^/  /' >&2) || {
		log "apt-get download failed (no apt lists? run 'apt-get update' as root, or install postgresql)"
		return 1
	}
	local deb
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$cache" || return 1
	done
}

# direct_lib_deps PKG...: library packages the given packages depend on
# directly (first alternative of an "A | B" dependency only).
direct_lib_deps() {
	apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "$@" 2>/dev/null |
		awk '$1 == "Depends:" || $1 == "|Depends:" {
			if (!alt && $2 ~ /^lib/) print $2
			alt = ($1 == "|Depends:")
		}' | sort -u
}

# missing_lib_packages PKG...: library packages (transitively) needed by the
# given packages but not installed on this host. Best effort.
missing_lib_packages() {
	local -A seen=()
	local p todo=("$@") next
	for p in "$@"; do seen[$p]=1; done
	while ((${#todo[@]})); do
		next=()
		while IFS= read -r p; do
			[[ -n $p && -z ${seen[$p]:-} ]] || continue
			seen[$p]=1
			installed "$p" && continue
			printf '%s\n' "$p"
			next+=("$p")
		done < <(direct_lib_deps "${todo[@]}")
		todo=("${next[@]}")
	done
}

install_download() {
	command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
		log "need apt-get and dpkg-deb to download PostgreSQL; install PostgreSQL server binaries and set PG_BIN"
		return 1
	}
	local nn
	nn=$(pick_major)
	if [[ -z $nn ]]; then
		log "apt knows no postgresql-NN package (apt lists empty? run 'apt-get update' as root)"
		return 1
	fi
	local pkgs=("postgresql-$nn" "postgresql-client-$nn" libpq5)
	local extra
	extra=$(missing_lib_packages "${pkgs[@]}")
	# shellcheck disable=SC2206
	[[ -n $extra ]] && pkgs+=($extra)
	download_extract "${pkgs[@]}" || return 1

	local bin="$cache/usr/lib/postgresql/$nn/bin"
	# Anything still unresolved? Report it (best effort, not fatal here).
	local missing
	missing=$(LD_LIBRARY_PATH=$(cache_ld_path) ldd "$bin/postgres" "$bin/initdb" "$bin/psql" 2>/dev/null |
		awk '/not found/ {print $1}' | sort -u || true)
	if [[ -n $missing ]]; then
		log "warning: shared libraries still missing: $(echo "$missing" | tr '\n' ' ')"
	fi
}

install_system() {
	log "installing Debian's postgresql and postgresql-client with apt-get"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >&2
}

check_runs() {
	local out
	if ! out=$(LD_LIBRARY_PATH=$(cache_ld_path) "$1/initdb" --version 2>&1); then
		log "$1/initdb does not run: $out"
		return 1
	fi
	log "using $1 ($out)"
}

have_psql() { [[ -x "$1/psql" ]] || command -v psql >/dev/null 2>&1; }

main() {
	local bin=""
	if [[ ${IAMC_PG_FORCE_DOWNLOAD:-} == 1 ]]; then
		log "IAMC_PG_FORCE_DOWNLOAD=1: skipping lookups, downloading into $cache"
		install_download
		bin=$(find_cached) || true
	else
		bin=$(find_system) || bin=$(find_cached) || true
		if [[ -z $bin ]]; then
			if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
				install_system
				bin=$(find_system) || true
			else
				install_download || true
				bin=$(find_cached) || true
			fi
		elif ! have_psql "$bin"; then
			log "psql not found; fetching the PostgreSQL client"
			if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
				install_system || true
			else
				local nn
				nn=$(pick_major) && [[ -n $nn ]] && download_extract "postgresql-client-$nn" libpq5 || true
			fi
		fi
	fi
	if [[ -z $bin ]] || ! has_server "$bin"; then
		log "could not find or install PostgreSQL server binaries (initdb, pg_ctl, postgres)."
		log "install them (Debian/Ubuntu: apt-get install postgresql) and/or set PG_BIN to their directory"
		exit 1
	fi
	check_runs "$bin"
	printf '%s\n' "$bin"
}

main "$@"
