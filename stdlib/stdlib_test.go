package stdlib

import (
	"fmt"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// TestVersionIsOneNumber: the runtime states its version in four places
// (header, refusal of a newer runtime, its message, the row it records);
// each must be Version, or an upgrade would record one number and check
// another. runtime.sql spells them {{version}}; none may be left.
func TestVersionIsOneNumber(t *testing.T) {
	if strings.Contains(Runtime, "{{") {
		t.Errorf("the runtime holds a placeholder that was not filled in")
	}
	for _, want := range []string{
		fmt.Sprintf("-- The iam runtime, version %d:", Version),
		fmt.Sprintf("if installed > %d then", Version),
		fmt.Sprintf("newer than this iamc (version %d)", Version),
		fmt.Sprintf("insert into iam.runtime (version) values (%d)", Version),
	} {
		if !strings.Contains(Runtime, want) {
			t.Errorf("runtime.sql does not say %q (Version is %d)", want, Version)
		}
	}
}

// TestMigrationsAreNumberedSteps: each step is numbered with the runtime
// version that brought it (a database knows its steps by its version), in
// order, and none is newer than this runtime. A version's steps are
// NNNN_, then NNNNb_, NNNNc_ ... with no letter skipped (a released
// version's steps are frozen: only Version, not yet released, may get one).
func TestMigrationsAreNumberedSteps(t *testing.T) {
	if len(Migrations) == 0 {
		t.Fatal("no steps in stdlib/migrations")
	}
	last, lastPart := 0, ""
	for _, m := range Migrations {
		switch {
		case m.Version < last:
			t.Errorf("%s: step %d comes after step %d; numbers ascend", m.Name, m.Version, last)
		case m.Version == last && (lastPart == "" && m.Part != "b" || lastPart != "" && m.Part != string(rune(lastPart[0]+1))):
			t.Errorf("%s: the steps of version %d are %04d_, %04db_, %04dc_ ... with no letter skipped or repeated", m.Name, m.Version, m.Version, m.Version, m.Version)
		case m.Version > last && m.Part != "":
			t.Errorf("%s: the first step of version %d is %04d_words.sql, without a letter", m.Name, m.Version, m.Version)
		}
		if m.Version < 1 || m.Version > Version {
			t.Errorf("%s: step %d is not a runtime version from 1 to %d", m.Name, m.Version, Version)
		}
		if !strings.HasPrefix(m.Name, fmt.Sprintf("%04d%s_", m.Version, m.Part)) {
			t.Errorf("%s: the name does not start with its number %04d%s", m.Name, m.Version, m.Part)
		}
		last, lastPart = m.Version, m.Part
	}
}

// TestMigrationsRunBeforeTheVersionIsRecorded: the steps stand in the
// runtime once each, in order, after the refusal of a newer runtime and
// before the insert that records this version (each step reads the
// version installed before the build), each behind its own version check.
func TestMigrationsRunBeforeTheVersionIsRecorded(t *testing.T) {
	at := strings.Index(Runtime, "newer than this iamc")
	if at < 0 {
		t.Fatal("the runtime does not refuse a newer one")
	}
	for _, m := range Migrations {
		sql := m.SQL()
		if n := strings.Count(Runtime, sql); n != 1 {
			t.Fatalf("%s stands in the runtime %d times", m.Name, n)
		}
		i := strings.Index(Runtime, sql)
		if i < at {
			t.Errorf("%s runs before the step or check it must follow", m.Name)
		}
		if want := fmt.Sprintf("if (select coalesce(max(r.version), 0) from iam.runtime r) >= %d then\n        return;", m.Version); !strings.Contains(sql, want) {
			t.Errorf("%s is not behind its version check:\n%s", m.Name, sql)
		}
		at = i
	}
	if record := strings.Index(Runtime, fmt.Sprintf("insert into iam.runtime (version) values (%d)", Version)); record < at {
		t.Errorf("the runtime records its version before its last step")
	}
}

// TestMigrationsHoldNoMultiLineString: Migration.SQL indents each line of a
// step, which would change a string literal spanning lines.
func TestMigrationsHoldNoMultiLineString(t *testing.T) {
	for _, m := range Migrations {
		scan, err := pg_query.Scan(m.Body)
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		for _, tok := range scan.Tokens {
			if (tok.Token == pg_query.Token_SCONST || tok.Token == pg_query.Token_USCONST) && strings.Contains(m.Body[tok.Start:tok.End], "\n") {
				t.Errorf("%s: a string spans lines: %s", m.Name, m.Body[tok.Start:tok.End])
			}
		}
	}
}

// TestFunctionLayerMakesNoTables: outside its steps, the runtime creates
// or alters no table but the two the steps need before they run (the
// version and the steps' record): a table made there would be made again
// by every build, and could never be changed.
func TestFunctionLayerMakesNoTables(t *testing.T) {
	layer := strings.ReplaceAll(runtimeSQL, "{{version}}", "0")
	layer = strings.Replace(layer, "{{migrations}}", "", 1)
	tree, err := pg_query.Parse(layer)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range tree.Stmts {
		s := raw.Stmt
		var rel *pg_query.RangeVar
		switch {
		case s.GetCreateStmt() != nil:
			rel = s.GetCreateStmt().Relation
		case s.GetAlterTableStmt() != nil:
			rel = s.GetAlterTableStmt().Relation
		case s.GetIndexStmt() != nil:
			rel = s.GetIndexStmt().Relation
		default:
			continue
		}
		if name := rel.Schemaname + "." + rel.Relname; name != "iam.runtime" && name != "iam.migrations" {
			t.Errorf("runtime.sql creates or alters %s outside the steps; that belongs in stdlib/migrations", name)
		}
	}
}
