package explain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/lang"
)

// outcome is what a probe statement did.
type outcome struct {
	rows int64
	fail *Failure
}

func (o outcome) allowed() bool { return o.fail == nil && o.rows > 0 }

// exec runs a statement as the caller (rolled back); a database error is
// the outcome, any other error is explain's.
func (a *asker) exec(method, sql string, args ...any) (outcome, error) {
	var o outcome
	err := a.caller(method, func(tx pgx.Tx) error {
		if method == "GET" {
			return tx.QueryRow(a.ctx, sql, args...).Scan(&o.rows)
		}
		tag, err := tx.Exec(a.ctx, sql, args...)
		o.rows = tag.RowsAffected()
		return err
	})
	if err != nil {
		if o.fail = failure(err); o.fail == nil {
			return o, err
		}
		o.rows = 0
	}
	return o, nil
}

// eval evaluates conditions as the caller on one row's values (a row
// that need not exist, or that the caller cannot read): each condition
// sees the table's columns, unqualified, as the policies do. NULL is false.
func (a *asker) eval(values map[string]any, conds []string) ([]bool, *Failure, error) {
	out := make([]bool, len(conds))
	var exprs []string
	var at []int
	for i, c := range conds {
		switch c {
		case "true":
			out[i] = true
		case "false":
		default:
			exprs = append(exprs, "coalesce(("+c+"), false)")
			at = append(at, i)
		}
	}
	if len(exprs) == 0 {
		return out, nil, nil
	}
	doc, err := json.Marshal(values)
	if err != nil {
		return nil, nil, err
	}
	sql := fmt.Sprintf("select %s from pg_catalog.jsonb_populate_record(null::%s, $1::jsonb) as %s",
		strings.Join(exprs, ", "), a.table, compiler.QuoteIdent(a.r.Table))
	var got []any
	err = a.caller("GET", func(tx pgx.Tx) error {
		rows, err := tx.Query(a.ctx, sql, string(doc))
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			return rows.Err()
		}
		got, err = rows.Values()
		return err
	})
	if err != nil {
		if f := failure(err); f != nil {
			return nil, f, nil
		}
		return nil, nil, err
	}
	for j, v := range got {
		b, _ := v.(bool)
		out[at[j]] = b
	}
	return out, nil, nil
}

// row answers for one row.
func (a *asker) row() error {
	if a.pk == "" {
		return fmt.Errorf("--row needs a one-column primary key on %s", a.r.QualifiedName())
	}
	key := compiler.QuoteIdent(a.pk)
	row := &Row{Key: a.pk + "=" + a.q.Row}
	a.rep.Row = row
	var text *string
	err := a.su(func(tx pgx.Tx) error {
		return tx.QueryRow(a.ctx, fmt.Sprintf("select pg_catalog.to_jsonb(t)::text from %s t where t.%s = $1::%s", a.table, key, a.pkType), a.q.Row).Scan(&text)
	})
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		if f := failure(err); f != nil {
			return fmt.Errorf("--row %s: %s", a.q.Row, f.Message)
		}
		return err
	}
	if text == nil {
		for _, c := range compiler.Commands() {
			a.rep.Answers = append(a.rep.Answers, Answer{Command: c.SQL, Permission: string(c.Perm), Privilege: a.privileges[c.SQL],
				Arms: []Arm{}, Why: fmt.Sprintf("no row %s in %s", row.Key, a.r.QualifiedName())})
		}
		return nil
	}
	row.Found = true
	values, err := decodeRow(*text)
	if err != nil {
		return err
	}
	if a.r.OwnerColumn != "" {
		row.Owner = jsonText(values[a.r.OwnerColumn])
	}
	if a.r.GroupColumn != "" {
		row.Group = jsonText(values[a.r.GroupColumn])
	}
	f := &a.rep.Caller
	if row.Group != nil {
		f.GroupRole = a.groupRole(*row.Group)
	}
	if a.q.Group != "" && a.q.Group != NoGroup {
		f.TargetRole = a.groupRole(a.q.Group)
	}
	where := fmt.Sprintf(" where %s = $1::%s", key, a.pkType)

	// select: the row as a GET reads it.
	sel, err := a.exec("GET", "select count(*) from "+a.table+where, a.q.Row)
	if err != nil {
		return err
	}
	row.Visible = sel.allowed()
	a.answer(lang.Read, "select * from "+a.table+where, sel, values, row)

	// insert: a copy of the row (owner from the token), in its group or
	// the one asked.
	newRow := map[string]any{}
	for k, v := range values {
		newRow[k] = v
	}
	if a.r.GroupColumn != "" {
		switch a.q.Group {
		case "":
		case NoGroup:
			newRow[a.r.GroupColumn] = nil
		default:
			newRow[a.r.GroupColumn] = json.Number(a.q.Group)
		}
	}
	var cols []string
	for _, c := range a.columns {
		if c.generated || c.name == a.r.OwnerColumn || c.name == a.pk && c.hasDefault {
			continue
		}
		cols = append(cols, compiler.QuoteIdent(c.name))
	}
	if a.r.OwnerColumn != "" {
		if f.ID != "" {
			newRow[a.r.OwnerColumn] = f.ID
		} else {
			delete(newRow, a.r.OwnerColumn)
		}
	}
	doc, err := json.Marshal(withoutOwner(newRow, a.r.OwnerColumn))
	if err != nil {
		return err
	}
	list := strings.Join(cols, ", ")
	insertSQL := fmt.Sprintf("insert into %s (%s) select %s from pg_catalog.jsonb_populate_record(null::%s, $1::jsonb)", a.table, list, list, a.table)
	ins, err := a.exec("POST", insertSQL, string(doc))
	if err != nil {
		return err
	}
	probe := fmt.Sprintf("insert into %s a copy of row %s, owned by the caller", a.r.QualifiedName(), row.Key)
	if a.r.GroupColumn != "" {
		probe += ", " + groupWords(newRow[a.r.GroupColumn])
	}
	a.answer(lang.Create, probe, ins, newRow, row)

	// update: the row, its owner and group as they are.
	set := a.plainColumn()
	upd, err := a.exec("PATCH", fmt.Sprintf("update %s set %s = %s%s", a.table, set, set, where), a.q.Row)
	if err != nil {
		return err
	}
	updIdx := len(a.rep.Answers)
	a.answer(lang.Write, fmt.Sprintf("update %s set %s = %s%s", a.table, set, set, where), upd, values, row)

	// The moves the row guard rules on: into the group asked, and a new owner.
	if a.r.GroupColumn != "" && a.q.Group != "" {
		target := "null"
		args := []any{a.q.Row}
		if a.q.Group != NoGroup {
			target = "$2::bigint"
			args = append(args, a.q.Group)
		}
		sql := fmt.Sprintf("update %s set %s = %s%s", a.table, compiler.QuoteIdent(a.r.GroupColumn), target, where)
		o, err := a.exec("PATCH", sql, args...)
		if err != nil {
			return err
		}
		a.change("group", strings.Replace(sql, "$2::bigint", a.q.Group, 1), o, a.rep.Answers[updIdx])
	}
	if a.r.OwnerColumn != "" {
		other := "gen_random_uuid()"
		if a.m.Identity.Type != lang.UUID {
			other = "gen_random_uuid()::text"
		}
		sql := fmt.Sprintf("update %s set %s = %s%s", a.table, compiler.QuoteIdent(a.r.OwnerColumn), other, where)
		o, err := a.exec("PATCH", sql, a.q.Row)
		if err != nil {
			return err
		}
		a.change("owner", sql, o, a.rep.Answers[updIdx])
	}

	del, err := a.exec("DELETE", "delete from "+a.table+where, a.q.Row)
	if err != nil {
		return err
	}
	a.answer(lang.Delete, "delete from "+a.table+where, del, values, row)
	return nil
}

func withoutOwner(row map[string]any, owner string) map[string]any {
	if owner == "" {
		return row
	}
	out := map[string]any{}
	for k, v := range row {
		if k != owner {
			out[k] = v
		}
	}
	return out
}

func groupWords(v any) string {
	if v == nil {
		return "in no group"
	}
	return fmt.Sprintf("in group %v", v)
}

// plainColumn is a column an update can set to itself without the row
// guard (which fires on the owner and group columns) or an identity rule
// refusing it.
func (a *asker) plainColumn() string {
	for _, c := range a.columns {
		if !c.generated && c.name != a.r.OwnerColumn && c.name != a.r.GroupColumn {
			return compiler.QuoteIdent(c.name)
		}
	}
	for _, c := range []string{a.r.OwnerColumn, a.r.GroupColumn} {
		if c != "" {
			return compiler.QuoteIdent(c)
		}
	}
	return compiler.QuoteIdent(a.pk)
}

// answer records the verdict for perm on the row, with the files' arms and
// the applied policy evaluated on values as the caller.
func (a *asker) answer(perm lang.Perm, probe string, o outcome, values map[string]any, row *Row) {
	cmd := commandOf(perm)
	ans := Answer{Command: cmd, Permission: string(perm), Probe: probe, Allowed: o.allowed(), Privilege: a.privileges[cmd],
		Rows: ptr(o.rows), Error: o.fail, Arms: []Arm{}}
	arms := a.armsOf(perm)
	conds := []string{a.policyFor(cmd)}
	for _, arm := range arms {
		conds = append(conds, arm.Cond)
	}
	var holds []bool
	if len(arms) > 0 || conds[0] != "false" {
		var fail *Failure
		var err error
		holds, fail, err = a.eval(values, conds)
		if err != nil || fail != nil {
			msg := "could not evaluate the policy as the caller"
			if fail != nil {
				msg += ": " + fail.String()
			}
			a.rep.Warnings = append(a.rep.Warnings, fmt.Sprintf("%s: %s", cmd, msg))
			holds = nil
		}
	}
	if holds != nil {
		ans.Policy = ptr(holds[0])
	}
	facts := a.rowFacts(values, perm)
	anyArm := false
	for i, arm := range arms {
		ar := Arm{Subject: subjectOf(arm, a.q.Caller.Anonymous), Rules: ruleRefs(arm), Condition: arm.Cond}
		if holds != nil {
			ar.Holds = ptr(holds[i+1])
			anyArm = anyArm || holds[i+1]
			ar.Why = a.armWhy(arm, holds[i+1], perm, facts)
		}
		ans.Arms = append(ans.Arms, ar)
	}
	if holds != nil && holds[0] != anyArm {
		ans.Disagrees = fmt.Sprintf("the policy applied to %s %s this row, the rules of the .iam files %s it: the database runs another build (iamc plan shows what differs)",
			a.r.QualifiedName(), grants(holds[0]), grants(anyArm))
	}
	ans.Why = a.why(ans, perm, row)
	a.rep.Answers = append(a.rep.Answers, ans)
}

func grants(b bool) string {
	if b {
		return "grants"
	}
	return "does not grant"
}

// change records a move or an owner change, judged by the row guard and
// the update policy; update is the answer for the row as it is.
func (a *asker) change(kind, probe string, o outcome, update Answer) {
	ans := Answer{Command: "update", Permission: string(lang.Write), Change: kind, Probe: probe,
		Allowed: o.allowed(), Privilege: update.Privilege, Rows: ptr(o.rows), Error: o.fail, Arms: []Arm{}}
	switch {
	case o.fail != nil:
		ans.Why = refusal(o.fail, a.role, "update", a.r.QualifiedName())
	case !update.Allowed:
		ans.Why = update.Why
	case o.rows == 0:
		ans.Why = "the update reached no row: the changed row would not pass the update policy"
	default:
		ans.Why = update.Why
	}
	a.rep.Answers = append(a.rep.Answers, ans)
}

func commandOf(perm lang.Perm) string {
	for _, c := range compiler.Commands() {
		if c.Perm == perm {
			return c.SQL
		}
	}
	return string(perm)
}
