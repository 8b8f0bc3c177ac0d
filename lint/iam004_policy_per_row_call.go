package lint

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// IAM004: a function call in a policy that is not hoisted into a scalar
// sub-select runs for every row the query looks at, and the planner cannot
// use it as an index key when it is volatile or cannot be inlined. A list
// request over a large table becomes a sequential scan with a function call
// per row. Calls of STABLE or IMMUTABLE SQL functions that PostgreSQL can
// inline (no SECURITY DEFINER, no SET clause) and of built-in C functions
// are fine and not reported. So are calls in a WITH CHECK of functions
// whose comment says [row-local]: they look only at the row being written
// and at settings, never at a table (iam.check_columns, the column rules'
// check), and WITH CHECK runs for written rows only, never to filter.
//
// The expression is read from pg_policies (qual and with_check) with
// PostgreSQL's parser (pg_query); each function is looked up in pg_proc
// among the functions the policy depends on (pg_depend) and pg_catalog's.
var rulePolicyPerRowCall = Rule{
	ID:          "IAM004",
	Name:        "policy_per_row_call",
	Level:       Warning,
	Description: "policy calls a volatile or non-inlinable (e.g. PL/pgSQL) function for every row instead of once per statement",
	check:       checkPolicyPerRowCall,
}

// proc is a pg_proc row, as far as the lint needs it.
type proc struct {
	OID       uint32
	Schema    string
	Name      string
	Nargs     int
	Ndefaults int
	Variadic  bool
	Sig       string // regprocedure: app.is_mine(uuid)
	Lang      string
	Volatile  string // v, s, i
	SecDef    bool
	Config    []string
	Comment   string
}

// rowLocal is the comment marker of a function that looks only at the row
// being written and at settings.
const rowLocal = "[row-local]"

const procColumns = `p.oid, n.nspname::text, p.proname::text, p.pronargs::int, p.pronargdefaults::int,
       p.provariadic <> 0, p.oid::pg_catalog.regprocedure::text, l.lanname::text, p.provolatile::text,
       p.prosecdef, coalesce(p.proconfig, '{}'), coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')`

// perRowCost says why calling p once per row is a problem, or "" if it is not.
func (p proc) perRowCost() string {
	volatile := p.Volatile == "v"
	procedural := p.Lang != "sql" && p.Lang != "internal" && p.Lang != "c"
	notInlinable := p.Lang == "sql" && (p.SecDef || len(p.Config) > 0)
	if !volatile && !procedural && !notInlinable {
		return ""
	}
	parts := []string{p.Lang, map[string]string{"v": "volatile", "s": "stable", "i": "immutable"}[p.Volatile]}
	if p.SecDef {
		parts = append(parts, "security definer")
	}
	for _, c := range p.Config {
		name, _, _ := strings.Cut(c, "=")
		parts = append(parts, "SET "+name)
	}
	return strings.Join(parts, ", ")
}

// accepts says whether p can be the function of a call with n arguments.
func (p proc) accepts(n int) bool {
	return n == p.Nargs || n < p.Nargs && n >= p.Nargs-p.Ndefaults || p.Variadic && n >= p.Nargs-1
}

func checkPolicyPerRowCall(ctx context.Context, e *env) ([]Finding, error) {
	policies, err := loadPolicies(ctx, e)
	if err != nil {
		return nil, err
	}
	// The functions each policy depends on (user functions; built-ins are
	// pinned and have no pg_depend rows).
	rows, err := e.tx.Query(ctx, `
select d.objid, `+procColumns+`
from pg_catalog.pg_depend d
join pg_catalog.pg_proc p on p.oid = d.refobjid
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_language l on l.oid = p.prolang
where d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass
  and d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass`)
	if err != nil {
		return nil, err
	}
	deps := map[uint32][]proc{}
	for rows.Next() {
		var pol uint32
		var p proc
		if err := rows.Scan(&pol, &p.OID, &p.Schema, &p.Name, &p.Nargs, &p.Ndefaults, &p.Variadic, &p.Sig, &p.Lang, &p.Volatile, &p.SecDef, &p.Config, &p.Comment); err != nil {
			rows.Close()
			return nil, err
		}
		deps[pol] = append(deps[pol], p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	type found struct {
		pol   policy
		calls []call
	}
	var all []found
	var out []Finding
	builtinNames := map[string]bool{}
	for _, pol := range policies {
		var calls []call
		for i, expr := range []string{pol.Using, pol.Check} {
			if expr == "" {
				continue
			}
			check := i == 1
			cs, err := policyCalls(expr)
			if err != nil {
				// A server newer than the parser may print syntax it does
				// not know: say so rather than give up on the whole lint.
				out = append(out, Finding{
					Level:       Info,
					Object:      pol.Object(),
					Message:     fmt.Sprintf("not checked: %v", err),
					Remediation: "check by hand that its function calls are wrapped as (select f(...))",
				})
				continue
			}
			for _, c := range cs {
				if !c.PerRow {
					continue
				}
				c.InCheck = check
				calls = append(calls, c)
				if c.Schema == "" {
					builtinNames[c.Name] = true
				}
			}
		}
		all = append(all, found{pol, calls})
	}
	builtins := map[string][]proc{}
	if len(builtinNames) > 0 {
		names := make([]string, 0, len(builtinNames))
		for n := range builtinNames {
			names = append(names, n)
		}
		procs, err := loadProcs(ctx, e, "pg_catalog", names)
		if err != nil {
			return nil, err
		}
		for _, p := range procs {
			builtins[p.Name] = append(builtins[p.Name], p)
		}
	}

	for _, f := range all {
		seen := map[uint32]bool{}
		var err error
		for _, c := range f.calls {
			var candidates []proc
			if c.Schema == "" {
				candidates = builtins[c.Name]
			}
			for _, p := range deps[f.pol.OID] {
				if p.Name == c.Name && (p.Schema == c.Schema || c.Schema == "" && p.Schema == "pg_catalog") {
					candidates = append(candidates, p)
				}
			}
			p, cost := resolve(candidates, c.Args)
			if cost == "" && p.OID != 0 && !seen[p.OID] {
				// An inlined SQL function costs what its body calls.
				if cost, err = inlinedCost(ctx, e, p, 0); err != nil {
					return nil, err
				}
			}
			if cost == "" || seen[p.OID] || c.InCheck && strings.Contains(p.Comment, rowLocal) {
				continue
			}
			seen[p.OID] = true
			hint := fmt.Sprintf("wrap it as (select %s(%s)) or make it an indexable comparison", c.QualifiedName(), ellipsis(c.Args))
			if c.RowArgs {
				hint = fmt.Sprintf("it takes a column of the row, so a sub-select cannot hoist it: compare the column with a value computed once (col = (select ...)), or make %s a STABLE LANGUAGE sql function without SECURITY DEFINER or SET so it can be inlined", c.QualifiedName())
			}
			out = append(out, Finding{
				Object:      f.pol.Object(),
				Message:     fmt.Sprintf("calls %s (%s) for every row", p.Sig, cost),
				Remediation: hint,
			})
		}
	}
	return out, nil
}

// inlinedCost says why calling an inlinable SQL function p once per row is
// a problem: PostgreSQL puts its body in the policy, so a function its body
// calls that cannot be inlined runs for every row (the runtime's readers of
// the caller's context, iam.user_id_uuid and iam.group_ids, call their
// computing halves when the statement has not computed them yet). Qualified
// calls are looked up in pg_proc; pg_catalog's built-ins are fine.
func inlinedCost(ctx context.Context, e *env, p proc, depth int) (string, error) {
	if p.Lang != "sql" || p.SecDef || len(p.Config) > 0 || depth > 3 {
		return "", nil
	}
	var body string
	if err := e.tx.QueryRow(ctx, `select p.prosrc from pg_catalog.pg_proc p where p.oid = $1`, p.OID).Scan(&body); err != nil {
		return "", fmt.Errorf("reading the body of %s: %w", p.Sig, err)
	}
	calls, err := policyCalls("(" + strings.TrimSuffix(strings.TrimSpace(body), ";") + ")")
	if err != nil {
		return "", nil // not a single expression: PostgreSQL does not inline it either
	}
	for _, c := range calls {
		if c.Schema == "" {
			continue
		}
		procs, err := loadProcs(ctx, e, c.Schema, []string{c.Name})
		if err != nil {
			return "", err
		}
		inner, cost := resolve(procs, c.Args)
		if cost == "" && inner.OID != 0 {
			if cost, err = inlinedCost(ctx, e, inner, depth+1); err != nil {
				return "", err
			}
		}
		if cost != "" {
			return fmt.Sprintf("sql, inlined, calls %s: %s", inner.Sig, cost), nil
		}
	}
	return "", nil
}

// loadProcs reads the functions of one schema with these names (every
// overload), as the calls of a policy or of an inlined body name them.
func loadProcs(ctx context.Context, e *env, schema string, names []string) ([]proc, error) {
	rows, err := e.tx.Query(ctx, `
select `+procColumns+`
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_language l on l.oid = p.prolang
where n.nspname = $1 and p.proname = any($2::text[])`, schema, names)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[proc])
}

// resolve picks the function a call with n arguments means among
// candidates (overloads): the first one that is costly per row, so that an
// ambiguity never hides a problem.
func resolve(candidates []proc, n int) (proc, string) {
	var first *proc
	for i, p := range candidates {
		if !p.accepts(n) {
			continue
		}
		if first == nil {
			first = &candidates[i]
		}
		if cost := p.perRowCost(); cost != "" {
			return p, cost
		}
	}
	if first != nil {
		return *first, ""
	}
	return proc{}, ""
}

func ellipsis(args int) string {
	if args == 0 {
		return ""
	}
	return "..."
}

// policy is a row of pg_policy, with its expressions as PostgreSQL prints them.
type policy struct {
	OID        uint32
	Table      string // schema.table, quoted where needed
	TableOID   uint32
	Name       string
	Command    string // *, r (select), a (insert), w (update), d (delete)
	Permissive bool
	Roles      []string // role names; "public" for PUBLIC
	Using      string   // "" when none
	Check      string   // "" when none
}

// Object names the policy as findings do: app.todos policy "name".
func (p policy) Object() string {
	return fmt.Sprintf(`%s policy "%s"`, p.Table, strings.ReplaceAll(p.Name, `"`, `""`))
}

func loadPolicies(ctx context.Context, e *env) ([]policy, error) {
	rows, err := e.tx.Query(ctx, `
select pol.oid, pg_catalog.format('%I.%I', n.nspname, c.relname), c.oid,
       pol.polname::text, pol.polcmd::text, pol.polpermissive,
       array(select case when r = 0 then 'public' else pg_catalog.pg_get_userbyid(r)::text end
             from pg_catalog.unnest(pol.polroles) r),
       coalesce(pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), ''),
       coalesce(pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), '')
from pg_catalog.pg_policy pol
join pg_catalog.pg_class c on c.oid = pol.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where `+userSchemas+`
order by 2, 4`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[policy])
}
