// Package compiler turns a checked policy model into SQL: the iam runtime,
// and for every resource its RLS policies, grants, trigger and index.
// It knows SQL and never the command line.
package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
	"github.com/iamc/iamc/stdlib"
)

// Statement is one generated SQL statement and the comment that explains it.
type Statement struct {
	Why string // comment lines printed above the statement, may be empty
	SQL string // exactly one statement, ending in ';'
}

// Section is a group of statements under a header: the runtime, or one
// resource.
type Section struct {
	Header     []string
	Resource   *lang.ResourceModel // nil for the runtime section
	Statements []Statement
}

// Output is everything `iamc build` emits, in order.
type Output struct {
	Model    *lang.Model
	Sources  []string // the .iam files it was built from
	Sections []*Section
}

// commands maps a permission to the SQL command its policy is for.
var commands = []struct {
	perm lang.Perm
	cmd  string
}{
	{lang.Read, "select"},
	{lang.Create, "insert"},
	{lang.Write, "update"},
	{lang.Delete, "delete"},
}

// Audiences of a policy: who the request runs as.
const (
	audienceAuthenticated = "authenticated"
	audienceAnonymous     = "anonymous"
)

// Build generates the SQL for a model and verifies every statement with a
// pg_query round-trip. sources are the files the model came from.
func Build(m *lang.Model, sources []string) (*Output, error) {
	out := &Output{Model: m, Sources: sources}
	out.Sections = append(out.Sections, runtimeSection(m))
	for _, r := range m.Resources {
		out.Sections = append(out.Sections, resourceSection(m, r))
	}
	for _, s := range out.Sections {
		for _, st := range s.Statements {
			if err := RoundTrip(st.SQL); err != nil {
				return nil, fmt.Errorf("compiler bug: generated SQL does not round-trip (please report it): %w", err)
			}
		}
	}
	return out, nil
}

func runtimeSection(m *lang.Model) *Section {
	s := &Section{Header: []string{
		fmt.Sprintf("iam runtime, version %d (embedded in iamc: stdlib/runtime.sql)", stdlib.Version),
	}}
	for _, stmt := range splitStatements(stdlib.Runtime) {
		s.Statements = append(s.Statements, Statement{SQL: stmt})
	}
	roles := m.Roles
	s.Statements = append(s.Statements,
		Statement{
			Why: "Functions are executable by PUBLIC unless revoked; only the runtime roles may call the request helpers.",
			SQL: fmt.Sprintf("revoke all on all routines in schema iam from public, %s, %s;", quoteIdent(roles.Authenticated), quoteIdent(roles.Anonymous)),
		},
		Statement{SQL: fmt.Sprintf("grant usage on schema iam to %s;", quoteIdent(roles.Authenticated))},
		Statement{SQL: fmt.Sprintf("grant execute on function %s to %s;", strings.Join(stdlib.RequestFunctions, ", "), quoteIdent(roles.Authenticated))},
	)
	return s
}

func resourceSection(m *lang.Model, r *lang.ResourceModel) *Section {
	table := qualify(r.Schema, r.Table)
	roles := m.Roles
	s := &Section{Resource: r, Header: resourceHeader(r)}
	add := func(why, format string, args ...any) {
		s.Statements = append(s.Statements, Statement{Why: why, SQL: fmt.Sprintf(format, args...)})
	}

	add("Deny by default: with RLS on and forced, a row is visible only through a policy below, even to the table owner.",
		"alter table %s enable row level security;", table)
	add("", "alter table %s force row level security;", table)

	// Grants: exactly the commands some policy allows, per role.
	add("Grant exactly the commands the rules allow; everything else stays denied at the privilege level too.",
		"revoke all on table %s from %s, %s;", table, quoteIdent(roles.Authenticated), quoteIdent(roles.Anonymous))
	authCmds := grantedCommands(r.Owner, r.Authenticated)
	anonCmds := grantedCommands(r.Anonymous)
	for _, g := range []struct {
		role string
		cmds []string
	}{{roles.Authenticated, authCmds}, {roles.Anonymous, anonCmds}} {
		if len(g.cmds) == 0 {
			continue
		}
		add("", "grant usage on schema %s to %s;", quoteIdent(r.Schema), quoteIdent(g.role))
		add("", "grant %s on table %s to %s;", strings.Join(g.cmds, ", "), table, quoteIdent(g.role))
	}
	if r.Owner[lang.Create] {
		add("serial columns need USAGE on their sequence to insert (identity columns need nothing).",
			"call iam.grant_serial_sequences(%s::regclass, %s);", quoteLiteral(table), quoteLiteral(roles.Authenticated))
	}

	if r.OwnerColumn != "" && len(r.Owner) > 0 {
		owner := quoteIdent(r.OwnerColumn)
		add(fmt.Sprintf("The owner policies filter on %s = <caller>: this index makes that an index scan instead of a scan of every row.", r.OwnerColumn),
			"create index if not exists %s on %s (%s);", quoteIdent(derivedName(r.Table, r.OwnerColumn, "iam_idx")), table, owner)
		add(fmt.Sprintf("Fill %s from the JWT on insert, reject a forged one, and keep it fixed on update (RLS cannot compare old and new rows).", r.OwnerColumn),
			"create or replace trigger iam_guard_owner\n    before insert or update of %s on %s\n    for each row execute function iam.guard_owner(%s, %s, %s);",
			owner, table, quoteLiteral(r.OwnerColumn), quoteLiteral(m.Identity.Claim), quoteLiteral(string(m.Identity.Type)))
	} else {
		add("No owner rules: no owner trigger.", "drop trigger if exists iam_guard_owner on %s;", table)
	}

	// Policies: drop every name iamc may have used, then create today's.
	var names []string
	for _, aud := range []string{audienceAuthenticated, audienceAnonymous} {
		for _, c := range commands {
			names = append(names, policyName(aud, c.cmd))
		}
	}
	for i, name := range names {
		why := ""
		if i == 0 {
			why = "Policies are replaced as a set: drop every policy name iamc uses, then create the ones the rules call for."
		}
		add(why, "drop policy if exists %s on %s;", quoteIdent(name), table)
	}
	me := callerExpr(m.Identity)
	for _, c := range commands {
		var arms []string
		switch {
		case r.Authenticated[c.perm]:
			arms = []string{"true"}
		case r.Owner[c.perm]:
			arms = []string{fmt.Sprintf("%s = %s", quoteIdent(r.OwnerColumn), me)}
		}
		if len(arms) > 0 {
			s.Statements = append(s.Statements, policy(r, table, audienceAuthenticated, roles.Authenticated, c.cmd, strings.Join(arms, " or "), c.perm)...)
		}
		if r.Anonymous[c.perm] {
			s.Statements = append(s.Statements, policy(r, table, audienceAnonymous, roles.Anonymous, c.cmd, "true", c.perm)...)
		}
	}
	return s
}

// callerExpr is the caller's user id, wrapped in a scalar subquery so the
// planner runs it once per statement (an InitPlan) and can use it as an
// index key, instead of calling the function for every row.
func callerExpr(id lang.Identities) string {
	return fmt.Sprintf("(select iam.user_id_%s(%s))", id.Type, quoteLiteral(id.Claim))
}

func policyName(audience, cmd string) string {
	return fmt.Sprintf("iam: %s can %s", audience, cmd)
}

func policy(r *lang.ResourceModel, table, audience, role, cmd, expr string, perm lang.Perm) []Statement {
	name := quoteIdent(policyName(audience, cmd))
	var clause string
	switch cmd {
	case "insert":
		clause = fmt.Sprintf("with check (%s)", expr)
	case "update":
		clause = fmt.Sprintf("using (%s)\n    with check (%s)", expr, expr)
	default:
		clause = fmt.Sprintf("using (%s)", expr)
	}
	why := policyWhy(r, audience, perm)
	return []Statement{
		{Why: why, SQL: fmt.Sprintf("create policy %s on %s\n    as permissive for %s to %s\n    %s;", name, table, cmd, quoteIdent(role), clause)},
		{SQL: fmt.Sprintf("comment on policy %s on %s is %s;", name, table, quoteLiteral(why))},
	}
}

// policyWhy cites the rules a policy comes from, for the DBA reading \d+.
func policyWhy(r *lang.ResourceModel, audience string, perm lang.Perm) string {
	var cites []string
	for _, rule := range r.Rules {
		subjectAudience := audienceAuthenticated
		if rule.Subject == "anonymous" {
			subjectAudience = audienceAnonymous
		}
		if subjectAudience != audience {
			continue
		}
		for _, p := range rule.Perms {
			if p == perm {
				cites = append(cites, fmt.Sprintf("%s can %s (%s:%d)", rule.Subject, p, rule.Pos.Filename, rule.Pos.Line))
			}
		}
	}
	return "iamc: " + strings.Join(cites, "; ")
}

// grantedCommands lists the SQL commands any of the sets allows.
func grantedCommands(sets ...lang.PermSet) []string {
	var out []string
	for _, c := range commands {
		for _, s := range sets {
			if s[c.perm] {
				out = append(out, c.cmd)
				break
			}
		}
	}
	return out
}

func resourceHeader(r *lang.ResourceModel) []string {
	h := []string{fmt.Sprintf("resource %s (%s:%d)", r.QualifiedName(), r.Pos.Filename, r.Pos.Line)}
	if r.OwnerColumn != "" {
		h = append(h, "  owner column "+r.OwnerColumn)
	}
	for _, rule := range r.Rules {
		perms := make([]string, len(rule.Perms))
		for i, p := range rule.Perms {
			perms[i] = string(p)
		}
		h = append(h, fmt.Sprintf("  %s can %s  (line %d)", rule.Subject, strings.Join(perms, ", "), rule.Pos.Line))
	}
	return h
}
