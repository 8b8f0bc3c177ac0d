#!/usr/bin/env bash
# test-matrix.sh: run the Go tests against each PostgreSQL major version and
# print a summary table. Used by `make test-matrix`.
#
#   PG_VERSIONS  majors to run (default "14 15 16 17 18")
#   PKGS         packages to test (default ./... : every package that starts
#                PostgreSQL, plus the rest, which must not care)
#   GO           go command (default go)
#
# For each major, scripts/ensure-pg-version.sh provides PG_BIN; the tests run
# with `go test -json -count=1`, and the summary counts the pass/fail/skip
# events of tests and subtests. The full log of each run is kept in
# out/matrix/pgMAJOR.json (and .txt, the human-readable output).
# Exits non-zero if any version fails (or its binaries cannot be had).
set -uo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir" || exit 1
GO=${GO:-go}
read -r -a versions <<<"${PG_VERSIONS:-14 15 16 17 18}"
read -r -a pkgs <<<"${PKGS:-./...}"
out=out/matrix
mkdir -p "$out"

rows=()
status=0
for v in "${versions[@]}"; do
	echo "=== PostgreSQL $v" >&2
	if ! bin=$(scripts/ensure-pg-version.sh "$v" | tail -n 1) || [[ -z $bin ]]; then
		rows+=("$v|(binaries unavailable)|0/0|0|0|0|0|FAIL")
		status=1
		continue
	fi
	ver=$("$bin/postgres" --version 2>/dev/null | sed 's/^postgres (PostgreSQL) //')
	# pg_partman for this major where Debian has it (the tests skip otherwise).
	PG_BIN=$bin scripts/ensure-partman.sh >/dev/null 2>&1 || echo "pg_partman: not available for PostgreSQL $v (its tests skip)" >&2
	json=$out/pg$v.json
	PG_BIN=$bin "$GO" test -json -count=1 "${pkgs[@]}" >"$json" 2>"$out/pg$v.stderr"
	rc=$?
	# Human-readable output, for reading failures.
	sed -n 's/.*"Action":"output".*"Output":"\(.*\)"}$/\1/p' "$json" |
		sed 's/\\n$//; s/\\t/\t/g; s/\\"/"/g' >"$out/pg$v.txt"
	# Test events carry a "Test" field; package events do not.
	counts=$(awk '
		/"Test":"/ && /"Action":"pass"/ { p++ }
		/"Test":"/ && /"Action":"fail"/ { f++ }
		/"Test":"/ && /"Action":"skip"/ { s++ }
		!/"Test":"/ && /"Action":"pass"/ { pp++ }
		!/"Test":"/ && /"Action":"fail"/ { pf++ }
		!/"Test":"/ && /"Action":"skip"/ { ps++ }
		END { printf "%d/%d|%d|%d|%d|%d", pp, pp + pf, ps, p, f, s }' "$json")
	result=ok
	if ((rc != 0)); then
		result=FAIL
		status=1
		grep -E '^(--- FAIL|FAIL|panic)' "$out/pg$v.txt" | head -n 40 >&2
		[[ -s $out/pg$v.stderr ]] && head -n 20 "$out/pg$v.stderr" >&2
	fi
	rows+=("$v|$ver|$counts|$result")
	echo "=== PostgreSQL $v: $result ($out/pg$v.txt)" >&2
done

echo
printf '%-5s %-32s %-8s %-8s %7s %7s %7s  %s\n' major "server version" "pkgs ok" "no tests" passed failed skipped result
for r in "${rows[@]}"; do
	IFS='|' read -r m ver pk nt p f s res <<<"$r"
	printf '%-5s %-32s %-8s %-8s %7s %7s %7s  %s\n' "$m" "$ver" "$pk" "$nt" "$p" "$f" "$s" "$res"
done
echo "(pkgs ok: packages passed / packages with tests; passed, failed, skipped: tests and subtests)"
exit $status
