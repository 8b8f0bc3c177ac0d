package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/iamc/iamc/catalog"
	"github.com/iamc/iamc/compiler"
	"github.com/iamc/iamc/explain"
	"github.com/iamc/iamc/lang"
)

func newExplainCmd() *cobra.Command {
	var (
		dir, dbURL, sub string
		plan            bool
		as, claimsFile  string
		anonymous       bool
		row, group      string
		format          string
		matrix, graph   bool
	)
	cmd := &cobra.Command{
		Use:   "explain [TABLE]",
		Short: "Show one resource's SQL, why a caller may or may not use it (--as), or what the files declare (--matrix, --graph)",
		Long: `Print the SQL generated for one resource (TABLE is a table name or schema.table).

With --plan, also run the typical requests a PostgREST client makes (a list
page, a read by id, a count) against a database where the policies are
applied, as PostgREST would for the user --sub (READ ONLY, role and JWT claims
set per request), and print their plans with what matters in them: which
indexes are read, what is computed once per statement, and anything that
runs per row.

With --as SUB (or --claims FILE, or --anonymous), say for each command
(select, insert, update, delete) whether that caller may run it and why: the
rule and its file:line:col that grants it, or why none does (not the owner,
not in group 7, a member where delete takes admin, the row not visible).
Every verdict is the real statement run as the caller against --db, the way
PostgREST runs a request (role and claims set, in a transaction that is
always rolled back); every reason is a policy arm of the build evaluated as
the caller with the runtime's own helpers. With --row ID (the primary key)
the answers are about that row: select reads it, insert puts in a copy of it
owned by the caller (in its group, or --group G|none), update sets a column
to itself, and with --group it is also moved there, and its owner changed
(which the row guard refuses). Without --row: how many rows the caller sees,
and how many of them each rule grants, per command. --db must be a superuser
(or BYPASSRLS) connection: explain reads the row past the policies to say why
the caller does not see it. Exit code 1 when the applied policies and the
files disagree about an answer.

With --matrix, print the subject x permission table the files declare, for
every resource or for TABLE (--format text, markdown or json). With --graph,
print the subjects, resources, group table and the relations between them
(--format mermaid, the default, or dot). Neither needs a database.`,
		Example: `  iamc explain todos
  iamc explain app.chats --dir policies/
  iamc explain todos --plan --db "$DATABASE_URL" --sub 6f1c...
  iamc explain todos --as 6f1c... --row 42 --db "$DATABASE_URL"
  iamc explain chats --as 6f1c... --claims token.json --row 7 --group none --format json
  iamc explain todos --anonymous
  iamc explain --matrix --format markdown
  iamc explain --graph --format dot | dot -Tsvg > iam.svg`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asking := as != "" || claimsFile != "" || anonymous
			switch {
			case matrix && graph, (matrix || graph) && (asking || plan), asking && plan:
				return usageError(errors.New("choose one of --as (with --claims, --anonymous), --plan, --matrix and --graph"))
			case graph && len(args) > 0:
				return usageError(errors.New("--graph draws every resource; it takes no TABLE"))
			case !matrix && !graph && len(args) == 0:
				return usageError(errors.New("explain needs a TABLE (or --matrix, --graph)"))
			case anonymous && (as != "" || claimsFile != ""):
				return usageError(errors.New("--anonymous is a request without a token: it takes no --as or --claims"))
			case !asking && (row != "" || group != ""):
				return usageError(errors.New("--row and --group go with --as, --claims or --anonymous"))
			}
			model, out, err := compile(dir)
			if err != nil {
				return filesFailed(cmd.ErrOrStderr(), err)
			}
			w := cmd.OutOrStdout()
			var resource *lang.ResourceModel
			var section *compiler.Section
			if len(args) == 1 {
				if section, err = out.Find(args[0]); err != nil {
					return err
				}
				resource = section.Resource
			}
			switch {
			case matrix:
				return writeMatrix(w, format, explain.Matrices(model, resource))
			case graph:
				return writeGraph(w, format, explain.GraphOf(model))
			case asking:
				return explainAs(cmd, model, resource, explainAsOptions{dbURL, as, claimsFile, anonymous, row, group, format})
			}
			if format != "" {
				return usageError(errors.New("--format goes with --as, --matrix or --graph"))
			}
			if _, err := fmt.Fprint(w, section.SQL()); err != nil || !plan {
				return err
			}
			if dbURL == "" {
				dbURL = envDatabaseURL()
			}
			if dbURL == "" || sub == "" {
				return &exitError{code: 2, err: fmt.Errorf("--plan needs --db URL (or DATABASE_URL) and --sub USER_ID")}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			conn, err := connectDB(ctx, dbURL, "explain --plan")
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			claims := map[string]any{model.Identity.Claim: sub, "role": model.Roles.Authenticated}
			reports, err := catalog.ExplainPlans(ctx, conn, model, resource, claims)
			if err != nil {
				return err
			}
			for _, r := range reports {
				fmt.Fprintf(w, "\n-- %s: %s\n--   %s\n", r.Request.Name, r.Request.HTTP, r.Request.SQL)
				for _, n := range r.Notes {
					fmt.Fprintf(w, "--   %s\n", n)
				}
				fmt.Fprintln(w, r.Plan)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&dir, "dir", defaultDir, "the policy directory")
	f.BoolVar(&plan, "plan", false, "also show the plans of the typical requests (needs --db and --sub)")
	f.StringVar(&dbURL, "db", "", "database URL for --plan and --as (default: DATABASE_URL, or the PG* variables)")
	f.StringVar(&sub, "sub", "", "the user id (JWT identity claim) to run the requests as, for --plan")
	f.StringVar(&as, "as", "", "the caller's user id (the identity claim of the token): say what they may do and why")
	f.StringVar(&claimsFile, "claims", "", "a JSON file of the caller's token claims (groups, realm_access, ...); --as overrides its identity claim")
	f.BoolVar(&anonymous, "anonymous", false, "ask for a request without a token (the anonymous role)")
	f.StringVar(&row, "row", "", "the primary key of one row to ask about (default: the whole table, counted)")
	f.StringVar(&group, "group", "", "a group id, or none: where insert puts its row, and where update moves the row")
	f.StringVar(&format, "format", "", "output: text or json (--as); text, markdown or json (--matrix); mermaid or dot (--graph)")
	f.BoolVar(&matrix, "matrix", false, "print the subject x permission table of every resource, or of TABLE")
	f.BoolVar(&graph, "graph", false, "print the subjects, resources and group relations as a graph")
	return cmd
}

type explainAsOptions struct {
	dbURL, as, claimsFile string
	anonymous             bool
	row, group, format    string
}

func explainAs(cmd *cobra.Command, m *lang.Model, r *lang.ResourceModel, o explainAsOptions) error {
	if o.format == "" {
		o.format = "text"
	}
	if o.format != "text" && o.format != "json" {
		return usageError(fmt.Errorf("--format must be text or json with --as, not %q", o.format))
	}
	caller := explain.Caller{Anonymous: o.anonymous}
	if !o.anonymous {
		caller.Claims = map[string]any{}
		if o.claimsFile != "" {
			b, err := os.ReadFile(o.claimsFile)
			if err != nil {
				return usageError(fmt.Errorf("--claims: %w", err))
			}
			if err := json.Unmarshal(b, &caller.Claims); err != nil || caller.Claims == nil {
				return usageError(fmt.Errorf("--claims %s: want a JSON object of token claims: %v", o.claimsFile, err))
			}
		}
		if o.as != "" {
			caller.Claims[m.Identity.Claim] = o.as
		}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	conn, err := connectDB(ctx, o.dbURL, "explain --as")
	if err != nil {
		return usageError(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep, err := explain.Ask(ctx, conn, m, explain.Question{Resource: r, Caller: caller, Row: o.row, Group: o.group})
	if err != nil {
		return usageError(err)
	}
	w := cmd.OutOrStdout()
	if o.format == "json" {
		err = explain.WriteJSON(w, rep)
	} else {
		err = explain.WriteText(w, rep)
	}
	if err != nil {
		return err
	}
	for _, a := range rep.Answers {
		if a.Disagrees != "" {
			return &exitError{code: 1, err: errors.New("the applied policies and the .iam files disagree: iamc plan shows what differs")}
		}
	}
	return nil
}

func writeMatrix(w io.Writer, format string, ms []explain.Matrix) error {
	switch format {
	case "", "text":
		return explain.WriteMatrixText(w, ms)
	case "markdown":
		return explain.WriteMatrixMarkdown(w, ms)
	case "json":
		return explain.WriteMatrixJSON(w, ms)
	}
	return usageError(fmt.Errorf("--format must be text, markdown or json with --matrix, not %q", format))
}

func writeGraph(w io.Writer, format string, g explain.Graph) error {
	switch format {
	case "", "mermaid":
		return explain.WriteMermaid(w, g)
	case "dot":
		return explain.WriteDOT(w, g)
	}
	return usageError(fmt.Errorf("--format must be mermaid or dot with --graph, not %q", format))
}
