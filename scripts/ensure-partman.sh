#!/usr/bin/env bash
# ensure-partman.sh: make pg_partman available to the PostgreSQL server
# binaries in $PG_BIN (or scripts/ensure-postgres.sh's), installing Debian's
# postgresql-<major>-partman if it is missing, and print (last line of
# stdout) the extension directory that holds pg_partman.control. Progress
# goes to stderr. The partition tests (policies/partman_test.go,
# e2e/partitions_test.go) create the extension in their own databases and
# skip, saying why, where it is not available.
#
# An extension must be in the server's own share directory
# (<sharedir>/extension; pg_config --sharedir, or the Debian or
# embedded-postgres layout next to the binaries). If pg_partman is not
# there: as root with apt-get, install Debian's package (it puts the files
# there for Debian's server); otherwise `apt-get download` the .deb into
# .cache/partman, extract it with `dpkg-deb -x` and copy its extension
# files into the share directory when that is writable (a server extracted
# into .cache/ by ensure-postgres.sh is; no root needed). pg_partman 4 is
# SQL only: its background worker (pg_partman_bgw) is not needed, the tests
# run its maintenance themselves.
#
# IAMC_PARTMAN_FORCE_DOWNLOAD=1 skips apt-get install and always takes the
# download+copy path (for testing it).
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root_dir/.cache/partman"

log() { printf 'ensure-partman: %s\n' "$*" >&2; }
fail() {
	log "$*"
	log "the pg_partman tests skip; install postgresql-<major>-partman for this server to run them"
	exit 1
}

bin=${PG_BIN:-}
if [[ -z $bin ]]; then
	bin=$("$root_dir/scripts/ensure-postgres.sh" | tail -n 1) || fail "no PostgreSQL server binaries"
fi
[[ -x $bin/postgres ]] || fail "$bin/postgres not found (PG_BIN)"

version=$("$bin/postgres" --version 2>/dev/null) || fail "$bin/postgres does not run"
[[ $version =~ \(PostgreSQL\)\ ([0-9]+) ]] || fail "cannot read the major version from '$version'"
major=${BASH_REMATCH[1]}

# sharedir: where this server looks for extensions.
sharedir() {
	local d
	if [[ -x $bin/pg_config ]] && d=$("$bin/pg_config" --sharedir 2>/dev/null) && [[ -d $d/extension ]]; then
		printf '%s\n' "$d"
		return 0
	fi
	# Debian's layout (also .cache/postgresql's): <p>/usr/lib/postgresql/N/bin
	# and <p>/usr/share/postgresql/N; embedded-postgres: <p>/bin and
	# <p>/share/postgresql.
	for d in "${bin%/lib/postgresql/$major/bin}/share/postgresql/$major" "$(dirname "$bin")/share/postgresql"; do
		if [[ -f $d/extension/plpgsql.control ]]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

share=$(sharedir) || fail "cannot find the share directory of $bin (no pg_config, and not a Debian or embedded-postgres layout)"
ext="$share/extension"
pkg="postgresql-$major-partman"

have() { [[ -f $ext/pg_partman.control ]]; }

install_system() {
	log "installing Debian's $pkg with apt-get"
	apt-get update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >&2
}

install_download() {
	command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
		fail "need apt-get and dpkg-deb to download $pkg"
	[[ -w $ext ]] || fail "$ext is not writable and this is not root: pg_partman cannot be added to this server's extensions"
	local debs="$cache/debs"
	mkdir -p "$debs"
	rm -f "$debs"/*.deb
	log "downloading $pkg into $debs"
	(cd "$debs" && apt-get download -q "$pkg" 2>&1 | sed 's/^/  /' >&2) ||
		fail "apt-get download $pkg failed (no such package for PostgreSQL $major here, or no apt lists: run 'apt-get update' as root)"
	rm -rf "$cache/root"
	dpkg-deb -x "$debs"/*.deb "$cache/root"
	local from="$cache/root/usr/share/postgresql/$major/extension"
	[[ -f $from/pg_partman.control ]] || fail "$pkg holds no pg_partman.control"
	log "copying pg_partman's extension files into $ext"
	cp "$from"/pg_partman* "$ext"/
}

if ! have; then
	if [[ ${IAMC_PARTMAN_FORCE_DOWNLOAD:-} != 1 && $(id -u) == 0 && $share == /usr/share/postgresql/$major ]] && command -v apt-get >/dev/null; then
		install_system || log "apt-get install $pkg failed; trying the download"
	fi
	have || install_download
fi
have || fail "pg_partman.control is still not in $ext"
log "pg_partman $(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ext/pg_partman.control") for PostgreSQL $major in $ext"
printf '%s\n' "$ext"
