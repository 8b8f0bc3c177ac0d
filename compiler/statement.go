package compiler

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v5"
)

// ObjectKind is the kind of database object a statement manages.
type ObjectKind string

// The kinds of object a build creates.
const (
	ObjectIndex      ObjectKind = "index"
	ObjectFunction   ObjectKind = "function"
	ObjectView       ObjectKind = "view"
	ObjectPolicy     ObjectKind = "policy"
	ObjectTrigger    ObjectKind = "trigger"
	ObjectConstraint ObjectKind = "constraint"
	// ObjectEventTrigger is the event trigger that locks down new
	// partitions (Name; no schema, no table).
	ObjectEventTrigger ObjectKind = "event trigger"
	// ObjectPartitions is the partitions of a resource's table (Table),
	// which iam.lock_partitions locks down.
	ObjectPartitions ObjectKind = "partitions"
	ObjectTable      ObjectKind = "table" // a share table (share.go)
)

// Object is what a generated statement creates or replaces, so that plan
// and apply know what a build manages without parsing its SQL. Names are
// as stored in the catalog (unquoted).
type Object struct {
	Kind   ObjectKind
	Schema string
	Name   string
	Table  string // the table an index, policy, trigger or constraint is on
}

// describe says what a hand-written statement of the runtime creates
// (runtime.sql's functions, views and indexes), as PostgreSQL's parser
// reads it. The build's own statements say
// it when they are made; only the embedded SQL is read back, once, here.
func describe(sql string) *Object {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		panic(fmt.Sprintf("embedded runtime SQL does not parse: %v: %s", err, sql))
	}
	node := tree.Stmts[0].Stmt
	switch {
	case node.GetIndexStmt() != nil:
		is := node.GetIndexStmt()
		return &Object{Kind: ObjectIndex, Schema: is.Relation.Schemaname, Name: is.Idxname, Table: is.Relation.Relname}
	case node.GetCreatePolicyStmt() != nil:
		p := node.GetCreatePolicyStmt()
		return &Object{Kind: ObjectPolicy, Schema: p.Table.Schemaname, Name: p.PolicyName, Table: p.Table.Relname}
	case node.GetCreateTrigStmt() != nil:
		tr := node.GetCreateTrigStmt()
		return &Object{Kind: ObjectTrigger, Schema: tr.Relation.Schemaname, Name: tr.Trigname, Table: tr.Relation.Relname}
	case node.GetCreateFunctionStmt() != nil:
		parts := node.GetCreateFunctionStmt().Funcname
		if len(parts) != 2 {
			panic("a runtime function without a schema: " + sql)
		}
		return &Object{Kind: ObjectFunction, Schema: parts[0].GetString_().GetSval(), Name: parts[1].GetString_().GetSval()}
	case node.GetCreateStmt() != nil:
		rel := node.GetCreateStmt().Relation
		return &Object{Kind: ObjectTable, Schema: rel.Schemaname, Name: rel.Relname}
	case node.GetViewStmt() != nil:
		v := node.GetViewStmt().View
		return &Object{Kind: ObjectView, Schema: v.Schemaname, Name: v.Relname}
	case node.GetCallStmt() != nil:
		call := node.GetCallStmt().Funccall
		var proc []string
		for _, n := range call.Funcname {
			proc = append(proc, n.GetString_().GetSval())
		}
		if len(call.Args) == 1 && call.Args[0].GetTypeCast() != nil {
			if c := call.Args[0].GetTypeCast().Arg.GetAConst(); c != nil && c.GetSval() != nil {
				return describeCall(proc, c.GetSval().GetSval())
			}
		}
	}
	return nil
}
