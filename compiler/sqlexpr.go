package compiler

import "strings"

// Expr is a piece of a generated SQL condition. Columns know their table
// alias, so one condition can be placed on the table a policy protects
// (no alias) or on an aliased table of a query (t.owner_id), and the
// runtime's helpers are called by name from runtimecalls.go. Parentheses
// are explicit (Paren): the output reads as a DBA would write it, and a
// change to it shows in the goldens.
type Expr interface {
	write(w *exprWriter)
}

// String prints an expression on one line.
func String(e Expr) string {
	w := &exprWriter{}
	e.write(w)
	return w.String()
}

// exprWriter prints expressions; an Or at the top of a policy puts each
// arm on its own line (see policyCondition).
type exprWriter struct{ strings.Builder }

// Col is a column of the table the alias names ("" for the table a policy
// is on).
type Col struct{ Alias, Name string }

// Raw is SQL text used as is: a literal, a parameter, a variable.
type Raw string

// True is the condition that holds for every row.
const True = Raw("true")

// Eq is l = r.
type Eq struct{ L, R Expr }

// AnyOf is l = any (array).
type AnyOf struct{ L, Array Expr }

// IsNull is e is null; NotNull is e is not null.
type (
	IsNull  struct{ E Expr }
	NotNull struct{ E Expr }
)

// DistinctFrom is l is distinct from r; NotDistinctFrom is l is not
// distinct from r.
type (
	DistinctFrom    struct{ L, R Expr }
	NotDistinctFrom struct{ L, R Expr }
)

// And and Or join conditions; Paren wraps one in parentheses.
type (
	And   []Expr
	Or    []Expr
	Paren struct{ E Expr }
)

// Once is (select e): a call PostgreSQL runs once per statement (an
// InitPlan) and whose value can be an index key.
type Once struct{ E Expr }

// Cast is e::type.
type Cast struct {
	E    Expr
	Type string
}

// CaseWhen is case when cond then value end: value, or NULL unless cond.
type CaseWhen struct{ When, Then Expr }

func (c Col) write(w *exprWriter) {
	if c.Alias != "" {
		w.WriteString(c.Alias + ".")
	}
	w.WriteString(quoteIdent(c.Name))
}

func (r Raw) write(w *exprWriter) { w.WriteString(string(r)) }

func (e Eq) write(w *exprWriter) { binary(w, e.L, " = ", e.R) }

func (e AnyOf) write(w *exprWriter) {
	e.L.write(w)
	w.WriteString(" = any (")
	e.Array.write(w)
	w.WriteString(")")
}

func (e IsNull) write(w *exprWriter)  { e.E.write(w); w.WriteString(" is null") }
func (e NotNull) write(w *exprWriter) { e.E.write(w); w.WriteString(" is not null") }

func (e DistinctFrom) write(w *exprWriter)    { binary(w, e.L, " is distinct from ", e.R) }
func (e NotDistinctFrom) write(w *exprWriter) { binary(w, e.L, " is not distinct from ", e.R) }

func (a And) write(w *exprWriter) { join(w, a, " and ") }
func (o Or) write(w *exprWriter)  { join(w, o, " or ") }

func (p Paren) write(w *exprWriter) {
	w.WriteString("(")
	p.E.write(w)
	w.WriteString(")")
}

func (o Once) write(w *exprWriter) {
	w.WriteString("(select ")
	o.E.write(w)
	w.WriteString(")")
}

func (c Cast) write(w *exprWriter) {
	c.E.write(w)
	w.WriteString("::" + c.Type)
}

func (c CaseWhen) write(w *exprWriter) {
	w.WriteString("case when ")
	c.When.write(w)
	w.WriteString(" then ")
	c.Then.write(w)
	w.WriteString(" end")
}

func binary(w *exprWriter, l Expr, op string, r Expr) {
	l.write(w)
	w.WriteString(op)
	r.write(w)
}

func join(w *exprWriter, parts []Expr, sep string) {
	for i, p := range parts {
		if i > 0 {
			w.WriteString(sep)
		}
		p.write(w)
	}
}

// anyTrue reports whether one of the conditions holds for every row.
func anyTrue(arms []Expr) bool {
	for _, a := range arms {
		if a == True {
			return true
		}
	}
	return false
}

// policyCondition is a policy's USING or WITH CHECK: its arms joined by
// or, one arm a line. An arm that holds for every row is the whole policy.
func policyCondition(arms []Expr) string {
	if anyTrue(arms) {
		return string(True)
	}
	lines := make([]string, len(arms))
	for i, a := range arms {
		if and, ok := a.(And); ok && len(arms) > 1 {
			// and binds before or; the parentheses are for the reader.
			a = Paren{and}
		}
		lines[i] = String(a)
	}
	return strings.Join(lines, "\n        or ")
}

// Keys is the keys of the rows of a table (under alias) where a condition
// holds, as a subquery: select alias.key from table alias where cond.
type Keys struct {
	Table, Alias, Key string // Table quoted; Key unquoted
	Where             Expr
}

func (k Keys) write(w *exprWriter) {
	w.WriteString("select " + k.Alias + "." + quoteIdent(k.Key) + " from " + k.Table + " " + k.Alias + " where ")
	k.Where.write(w)
}

// ArrayOf is array(subquery): an uncorrelated one is an InitPlan, run once
// per statement, whose value can be an index key (= any).
type ArrayOf struct{ Query Expr }

func (a ArrayOf) write(w *exprWriter) {
	w.WriteString("array(")
	a.Query.write(w)
	w.WriteString(")")
}
