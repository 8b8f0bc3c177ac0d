package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/iamc/iamc/internal/pgrest"
)

const issuer = "http://localhost:8080/realms/demo"

// user is a caller: the role PostgREST switches to and the verified JWT
// claims (nil: no token, an anonymous request).
type user struct {
	role   string
	claims map[string]any
}

func keycloakUser(sub, name string) user {
	return user{role: "web_user", claims: map[string]any{
		"iss": issuer, "azp": "demo-app", "sub": sub, "preferred_username": name, "role": "web_user",
	}}
}

func (u user) sub() string { s, _ := u.claims["sub"].(string); return s }

// in is u with the org_id claim Keycloak's attribute mapper adds (the
// organisation, notes.iam's tenant) and realm roles (realm_access.roles).
func (u user) in(org string, realmRoles ...string) user {
	c := maps.Clone(u.claims)
	c["org_id"] = org
	if len(realmRoles) > 0 {
		c["realm_access"] = map[string]any{"roles": realmRoles}
	}
	return user{role: u.role, claims: c}
}

// step is one request of the walk-through.
type step struct {
	who    string // a key of users, or "postgres" for the final superuser query
	method string
	path   string // as PostgREST receives it: /table[?col=eq.value]
	body   string // JSON, for POST and PATCH
	final  bool   // the superuser's look at the final state instead of a request
	dba    string // SQL a DBA runs as the owner role instead of a request (who: "api_owner")
	want   outcome
	note   string
}

// outcome is what the database did: rows returned or affected (their ids),
// or an error. summary (rows per table and owner) replaces ids for the final
// step.
type outcome struct {
	done     bool   // a function call that returned nothing
	value    *int64 // a function call's result
	newGroup bool   // the script's expectation of create_group: some random id (see walkThrough)
	object   bool   // a function call that returned a JSON object (answer holds it)
	token    bool   // ... an invitation's token among its keys
	answer   string // the object, as the detail line shows it
	entries  []string
	ids      []int64
	summary  string
	state    string // SQLSTATE; "" on success
	msg      string
}

func rows(ids ...int64) outcome    { return outcome{ids: ids} }
func done() outcome                { return outcome{done: true} }
func returns(v int64) outcome      { return outcome{value: &v} }
func newGroup() outcome            { return outcome{newGroup: true} }
func refused(state string) outcome { return outcome{state: state} }
func summary(text string) outcome  { return outcome{summary: text} }
func anObject() outcome            { return outcome{object: true} }
func aToken() outcome              { return outcome{object: true, token: true} }
func entries(e ...string) outcome  { return outcome{entries: e} }
func (o outcome) failed() bool     { return o.state != "" }
func (o outcome) same(w outcome) bool {
	return o.String() == w.String() && o.summary == w.summary && strings.Join(o.entries, "\n") == strings.Join(w.entries, "\n")
}

// String is the "SQL outcome" column. Two outcomes are the same when their
// strings and summaries are: the error message is shown, but not compared.
func (o outcome) String() string {
	switch {
	case o.failed():
		return "ERROR " + o.state
	case o.summary != "":
		return "rows per owner:"
	case o.token:
		return "returns a token"
	case o.object:
		return "returns an object"
	case o.entries != nil:
		return fmt.Sprintf("%d entries:", len(o.entries))
	case o.done:
		return "done"
	case o.newGroup:
		return "returns a random id"
	case o.value != nil:
		return fmt.Sprintf("returns %d", *o.value)
	case len(o.ids) == 0:
		return "0 rows"
	}
	ids := make([]string, len(o.ids))
	for i, id := range o.ids {
		ids[i] = fmt.Sprint(id)
	}
	plural := "s"
	if len(o.ids) == 1 {
		plural = ""
	}
	return fmt.Sprintf("%d row%s (id %s)", len(o.ids), plural, strings.Join(ids, ", "))
}

// httpStatus is what PostgREST 12 answers for an outcome: its SQLSTATE
// mapping for errors (the subset a request here can hit), and with
// Prefer: return=minimal 200 for GET, 201 for POST, 204 for PATCH/DELETE.
func httpStatus(method string, anonymous bool, o outcome) int {
	if !o.failed() {
		switch {
		case o.done: // a void function
			return http.StatusNoContent
		case o.value != nil, o.object: // a function's result
			return http.StatusOK
		}
		switch method {
		case "POST":
			return http.StatusCreated
		case "PATCH", "DELETE":
			return http.StatusNoContent
		}
		return http.StatusOK
	}
	switch s := o.state; {
	case strings.HasPrefix(s, "PT"): // PTxyz: HTTP status xyz exactly
		if code, err := strconv.Atoi(s[2:]); err == nil && code >= 100 && code <= 599 {
			return code
		}
		return http.StatusInternalServerError
	case s == "42501" && anonymous:
		return http.StatusUnauthorized
	case s == "42501", strings.HasPrefix(s, "28"), strings.HasPrefix(s, "0L"), strings.HasPrefix(s, "0P"):
		return http.StatusForbidden
	case s == "25006":
		return http.StatusMethodNotAllowed
	case s == "23503", s == "23505":
		return http.StatusConflict
	case s == "42883", s == "42P01":
		return http.StatusNotFound
	case strings.HasPrefix(s, "08"), strings.HasPrefix(s, "53"):
		return http.StatusServiceUnavailable
	case strings.HasPrefix(s, "54"):
		return http.StatusRequestEntityTooLarge
	case s == "P0001":
		return http.StatusBadRequest
	case strings.HasPrefix(s, "09"), strings.HasPrefix(s, "25"), strings.HasPrefix(s, "2D"),
		strings.HasPrefix(s, "3"), strings.HasPrefix(s, "40"), strings.HasPrefix(s, "55"),
		strings.HasPrefix(s, "57"), strings.HasPrefix(s, "58"), strings.HasPrefix(s, "F0"),
		strings.HasPrefix(s, "HV"), strings.HasPrefix(s, "P0"), strings.HasPrefix(s, "XX"), s == "42P17":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// errUnexpected reports steps whose outcome differed from the script.
type errUnexpected int

func (e errUnexpected) Error() string {
	return fmt.Sprintf("%d step(s) did not go as scripted", int(e))
}

// Column widths of the walk-through table.
const (
	wNum, wWho, wReq, wOut, wHTTP = 2, 9, 29, 17, 16
	rowFormat                     = "%*s  %-*s  %-*s  %-*s  %-*s  %s\n"
	detailIndent                  = 2 + 2 + wWho + 2
)

func (d *demo) walkThrough(ctx context.Context, w io.Writer, steps []step) error {
	api, err := pgx.Connect(ctx, d.server.URL(dbName, "authenticator"))
	if err != nil {
		return fmt.Errorf("connecting as authenticator: %w", err)
	}
	defer api.Close(context.Background())
	super, err := pgx.Connect(ctx, d.server.URL(dbName, "postgres"))
	if err != nil {
		return err
	}
	defer super.Close(context.Background())

	fmt.Fprintf(w, "\nWalk-through: each request runs as PostgREST 12 runs it, on a connection as the login role\n")
	fmt.Fprintf(w, "authenticator: one transaction (READ ONLY for GET), role and JWT claims set with set_config.\n")
	fmt.Fprintf(w, "Keycloak tokens: alice sub=%s, bob sub=%s,\n", users["alice"].sub(), users["bob"].sub())
	fmt.Fprintf(w, "dave sub=%s, erin sub=%s,\n", users["dave"].sub(), users["erin"].sub())
	fmt.Fprintf(w, "carol sub=%s (LDAP-federated), \"no sub\" a token without sub; all with role web_user.\n", users["carol"].sub())
	fmt.Fprintf(w, "anonymous: no token, role web_anon.\n\n")
	fmt.Fprintf(w, rowFormat, wNum, "#", wWho, "who", wReq, "HTTP request", wOut, "SQL outcome", wHTTP, "PostgREST", "expected?")
	fmt.Fprintf(w, rowFormat, wNum, "--", wWho, strings.Repeat("-", wWho), wReq, strings.Repeat("-", wReq),
		wOut, strings.Repeat("-", wOut), wHTTP, strings.Repeat("-", wHTTP), "---------")

	// create_group answers a random id: the script names the group it
	// created {group}, replaced in later paths and bodies by that id.
	group, token := "", ""
	unexpected := 0
	for i, st := range steps {
		st.path = strings.ReplaceAll(st.path, "{group}", group)
		st.body = strings.ReplaceAll(strings.ReplaceAll(st.body, "{group}", group), "{token}", token)
		var got outcome
		var request, answer string
		if st.final {
			request, answer = "SELECT as superuser", "-"
			got, err = finalState(ctx, super)
		} else if st.dba != "" {
			request, answer = "SQL as the owner role", "-"
			got, err = asOwnerRole(ctx, super, st.dba)
		} else {
			u, ok := users[st.who]
			if !ok {
				return fmt.Errorf("step %d: unknown user %q", i+1, st.who)
			}
			request = st.method + " " + st.path
			got, err = d.request(ctx, api, u, st)
			answer = fmt.Sprintf("%d %s", httpStatus(st.method, u.claims == nil, got), http.StatusText(httpStatus(st.method, u.claims == nil, got)))
		}
		if err != nil {
			return fmt.Errorf("step %d (%s %s): %w", i+1, st.who, request, err)
		}
		if st.want.newGroup && got.value != nil && *got.value > 0 && *got.value < 1<<53 {
			group = strconv.FormatInt(*got.value, 10)
			st.want = got
		}
		if got.token {
			var inv struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal([]byte(got.answer), &inv); err == nil {
				token = inv.Token
				got.answer = fmt.Sprintf("token %s... (%d characters, shown once: the database keeps only its SHA-256)", inv.Token[:8], len(inv.Token))
			}
		}
		verdict := "✓"
		if !got.same(st.want) {
			verdict = "UNEXPECTED"
			unexpected++
		}
		fmt.Fprintf(w, rowFormat, wNum, fmt.Sprint(i+1), wWho, st.who, wReq, request, wOut, got, wHTTP, answer, verdict)
		detail := func(text string) { fmt.Fprintf(w, "%*s%s\n", detailIndent, "", text) }
		if st.body != "" {
			detail("body " + st.body)
		}
		if st.dba != "" {
			detail(st.dba)
		}
		if got.summary != "" {
			detail(got.summary)
		}
		if got.answer != "" {
			detail("answer " + got.answer)
		}
		for _, e := range got.entries {
			detail("  " + e)
		}
		if got.failed() {
			detail("ERROR:  " + got.msg)
		}
		if st.note != "" {
			detail("-> " + st.note)
		}
		if verdict != "✓" {
			detail(strings.TrimSpace(fmt.Sprintf("UNEXPECTED: the script expects %s %s", st.want, st.want.summary)))
		}
	}

	fmt.Fprintln(w)
	if unexpected > 0 {
		fmt.Fprintf(w, "%d of %d steps did NOT go as scripted.\n", unexpected, len(steps))
		return errUnexpected(unexpected)
	}
	fmt.Fprintf(w, "All %d steps went as scripted.\n", len(steps))
	return nil
}

// request runs one step as PostgREST would, and reports what the database
// did. Only errors that are not a database's answer are returned as errors.
func (d *demo) request(ctx context.Context, db *pgx.Conn, u user, st step) (outcome, error) {
	if strings.HasPrefix(st.path, "/group_audit") {
		return auditTrail(ctx, db, pgrest.Request{Method: st.method, Path: st.path, Role: u.role, Claims: u.claims}, st.path)
	}
	query, args, err := translate(st.method, st.path, st.body)
	if err != nil {
		return outcome{}, err
	}
	req := pgrest.Request{Method: st.method, Path: st.path, Role: u.role, Claims: u.claims}
	var ids []int64
	var answer string
	rpc := strings.HasPrefix(st.path, "/rpc/") && st.method == "POST"
	if strings.HasPrefix(st.path, "/rpc/") && st.method == "GET" {
		// Query-string arguments are untyped too.
		args = append([]any{pgx.QueryExecModeSimpleProtocol}, args...)
	}
	err = pgrest.Do(ctx, db, req, func(tx pgx.Tx) error {
		if rpc {
			// The arguments are untyped literals, as PostgREST's are: the
			// function's signature gives them their types.
			var result string
			if err := tx.QueryRow(ctx, query, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...).Scan(&result); err != nil {
				return err
			}
			if strings.HasPrefix(result, "{") {
				answer = result
				return nil
			}
			if result != "" {
				var id int64
				if _, err := fmt.Sscan(result, &id); err != nil {
					return fmt.Errorf("%s returned %q, not an id", st.path, result)
				}
				ids = []int64{id}
			}
			return nil
		}
		r, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(r, pgx.RowTo[int64])
		return err
	})
	if o, ok := refusal(err); ok {
		return o, nil
	}
	if err != nil {
		return outcome{}, err
	}
	if rpc {
		switch {
		case answer != "":
			o := anObject()
			o.answer, o.token = answer, strings.Contains(answer, `"token"`)
			return o, nil
		case len(ids) == 0:
			return done(), nil
		}
		return returns(ids[0]), nil
	}
	return outcome{ids: ids}, nil
}

// tables the walk-through may address, by their URL path.
var tables = map[string]pgx.Identifier{
	"/todos":    {appSchema, "todos"},
	"/chats":    {appSchema, "chats"},
	"/stores":   {appSchema, "stores"},
	"/products": {appSchema, "products"},
	"/notes":    {appSchema, "notes"},
}

// translate turns a request into SQL shaped like PostgREST's: the body goes
// through json_populate_record of the table's row type, filters are
// col=eq.value, and every statement returns the ids it read or touched.
func translate(method, path, body string) (string, []any, error) {
	p, err := url.Parse(path)
	if err != nil {
		return "", nil, err
	}
	if fn, ok := strings.CutPrefix(p.Path, "/rpc/"); ok && method == "POST" {
		return rpcCall(fn, body)
	}
	if fn, ok := strings.CutPrefix(p.Path, "/rpc/"); ok && method == "GET" {
		return pageCall(fn, p.Query())
	}
	id, ok := tables[p.Path]
	if !ok {
		return "", nil, fmt.Errorf("unknown table in %s", path)
	}
	table := id.Sanitize()

	var args []any
	var cols []string // the body's columns
	if body != "" {
		var fields map[string]any
		if err := json.Unmarshal([]byte(body), &fields); err != nil {
			return "", nil, fmt.Errorf("body %s: %w", body, err)
		}
		for k := range fields {
			cols = append(cols, pgx.Identifier{k}.Sanitize())
		}
		slices.Sort(cols)
		args = append(args, body) // $1
	}
	var where []string
	filters := p.Query()
	for _, k := range slices.Sorted(maps.Keys(filters)) {
		v, ok := strings.CutPrefix(filters.Get(k), "eq.")
		if !ok {
			return "", nil, fmt.Errorf("only eq filters are supported: %s", path)
		}
		args = append(args, v)
		where = append(where, fmt.Sprintf("t.%s = $%d", pgx.Identifier{k}.Sanitize(), len(args)))
	}
	whereSQL := ""
	if len(where) > 0 {
		whereSQL = " where " + strings.Join(where, " and ")
	}

	switch {
	case method == "GET":
		return fmt.Sprintf("select t.id from %s as t%s order by t.id", table, whereSQL), args, nil
	case method == "POST" && body != "":
		return fmt.Sprintf("insert into %s (%s) select %s from json_populate_record(null::%s, $1::json) returning id",
			table, strings.Join(cols, ", "), strings.Join(cols, ", "), table), args, nil
	case method == "PATCH" && body != "":
		set := make([]string, len(cols))
		for i, c := range cols {
			set[i] = c + " = b." + c
		}
		return fmt.Sprintf("update %s as t set %s from json_populate_record(null::%s, $1::json) as b%s returning t.id",
			table, strings.Join(set, ", "), table, whereSQL), args, nil
	case method == "DELETE":
		return fmt.Sprintf("delete from %s as t%s returning t.id", table, whereSQL), args, nil
	}
	return "", nil, fmt.Errorf("unsupported request %s %s (body %q)", method, path, body)
}

// rpcCall is POST /rpc/fn {"arg": value, ...}: the function called with
// named arguments; the result as text ("" for a void function).
func rpcCall(fn, body string) (string, []any, error) {
	// Numbers as written: a float64 would print a group id (up to 2^53) as 1.6e+15.
	var fields map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return "", nil, fmt.Errorf("body %s: %w", body, err)
	}
	values := map[string]string{}
	for k, v := range fields {
		values[k] = fmt.Sprint(v)
		if list, ok := v.([]any); ok { // a JSON array: a PostgreSQL array literal, as PostgREST passes it
			items := make([]string, len(list))
			for i, x := range list {
				items[i] = fmt.Sprint(x)
			}
			values[k] = "{" + strings.Join(items, ",") + "}"
		}
	}
	named, args := namedArgs(values)
	return fmt.Sprintf("select coalesce(%s(%s)::text, '')", pgx.Identifier{appSchema, fn}.Sanitize(), named), args, nil
}

// namedArgs is "a => $1, b => $2, ..." in name order, and the values.
func namedArgs(values map[string]string) (string, []any) {
	var named []string
	var args []any
	for _, k := range slices.Sorted(maps.Keys(values)) {
		args = append(args, values[k])
		named = append(named, fmt.Sprintf("%s => $%d", pgx.Identifier{k}.Sanitize(), len(args)))
	}
	return strings.Join(named, ", "), args
}

// pageCall is GET /rpc/fn?arg=value&...: a set-returning function (a page
// function) called with named arguments; the ids of its rows, in its order.
func pageCall(fn string, query url.Values) (string, []any, error) {
	values := map[string]string{}
	for k := range query {
		values[k] = query.Get(k)
	}
	named, args := namedArgs(values)
	return fmt.Sprintf("select t.id from %s(%s) as t", pgx.Identifier{appSchema, fn}.Sanitize(), named), args, nil
}

// asOwnerRole runs a DBA's statement as the owner role, in a transaction of
// its own: done, or the database's refusal.
func asOwnerRole(ctx context.Context, db *pgx.Conn, sql string) (outcome, error) {
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "set local role api_owner"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql)
		return err
	})
	if o, ok := refusal(err); ok {
		return o, nil
	}
	if err != nil {
		return outcome{}, err
	}
	return done(), nil
}

// refusal is the database's answer in err, when it is one (a SQLSTATE).
func refusal(err error) (outcome, bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return outcome{state: pgErr.Code, msg: pgErr.Message}, true
	}
	return outcome{}, false
}

// finalState counts the rows per table and owner, as the superuser (who is
// not subject to RLS).
func finalState(ctx context.Context, db *pgx.Conn) (outcome, error) {
	r, err := db.Query(ctx, `
select 'todos', owner_id::text, count(*) from app.todos group by owner_id
union all
select 'chats', owner_id::text, count(*) from app.chats group by owner_id
union all
select 'notes', owner_id::text, count(*) from app.notes group by owner_id
order by 1 desc, 2`)
	if err != nil {
		return outcome{}, err
	}
	type row struct {
		table, owner string
		n            int64
	}
	got, err := pgx.CollectRows(r, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.table, &x.owner, &x.n)
		return x, err
	})
	if err != nil {
		return outcome{}, err
	}
	var parts []string
	last := ""
	for _, x := range got {
		name := x.owner
		for n, u := range users {
			if u.sub() == x.owner {
				name = n
			}
		}
		item := fmt.Sprintf("%s %d", name, x.n)
		if x.table != last {
			parts = append(parts, x.table+": "+item)
			last = x.table
		} else {
			parts[len(parts)-1] += ", " + item
		}
	}
	return summary(strings.Join(parts, "; ")), nil
}

// auditTrail is GET /group_audit?group_id=eq.<id>&order=at: the group's
// entries, each shown as action, actor and subject by name.
func auditTrail(ctx context.Context, db *pgx.Conn, req pgrest.Request, path string) (outcome, error) {
	p, err := url.Parse(path)
	if err != nil {
		return outcome{}, err
	}
	gid, _ := strings.CutPrefix(p.Query().Get("group_id"), "eq.")
	var lines []string
	err = pgrest.Do(ctx, db, req, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `select action, coalesce(actor, ''), coalesce(subject, ''), coalesce(object, '') from app.group_audit
		    where group_id = $1::bigint order by at`, gid)
		if err != nil {
			return err
		}
		for rows.Next() {
			var action, actor, subject, object string
			if err := rows.Scan(&action, &actor, &subject, &object); err != nil {
				return err
			}
			line := fmt.Sprintf("%-17s by %s", action, nameOf(actor))
			if subject != "" {
				line += ", about " + nameOf(subject)
			}
			if strings.HasPrefix(object, "invitation ") {
				line += ", an invitation"
			}
			lines = append(lines, line)
		}
		return rows.Err()
	})
	if o, ok := refusal(err); ok {
		return o, nil
	}
	if err != nil {
		return outcome{}, err
	}
	return entries(lines...), nil
}

// nameOf is the demo's name of a user id.
func nameOf(id string) string {
	for n, u := range users {
		if u.sub() == id {
			return n
		}
	}
	return id
}
