package bench

// `iamc bench --http`: the requests through a real PostgREST, the RLS
// endpoint (schema app) against the floor (FloorSchema, unprotected views,
// the floor's filter in the query string), from Go HTTP clients with one
// keep-alive connection each.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxFloorURL is the longest request target the floor sends: PostgREST
// (warp) answers 400 to requests whose request line and headers exceed
// about 50 KiB. A user whose filter does not fit (the user with 10,000
// shares at 100,000 rows or more) is left out of --http, and the report
// says so.
const maxFloorURL = 40000

// HTTPReport is the --http half of a size's report (its own key in --json).
type HTTPReport struct {
	PostgREST  string     `json:"postgrest"`   // its --version
	Settings   []string   `json:"settings"`    // what the run overrides in the shipped postgrest.conf
	PreRequest bool       `json:"pre_request"` // the RLS side ran the db-pre-request
	Verified   int        `json:"verified_requests"`
	Requests   []HTTPForm `json:"requests"` // what each side sends, per query
	Results    []*Result  `json:"results"`
	Skipped    []string   `json:"skipped,omitempty"`
}

// HTTPForm describes the two requests of a query.
type HTTPForm struct {
	Key   string `json:"key"`
	RLS   string `json:"rls"`
	Floor string `json:"floor"`
}

// httpRequest is one request to PostgREST.
type httpRequest struct {
	method  string
	path    string // path and query string
	profile string // "" for the default schema (app), else FloorSchema
	prefer  string
	body    []byte
	user    *User // whose token
}

// httpJob is a job with what only the HTTP form needs.
type httpJob struct {
	*job
	done  bool // the value an update of a todo writes
	stock int  // the stock an update or insert of a product writes
}

// newHTTPJob draws what only the HTTP form of q needs: the value an
// update writes (the same on both sides; the SQL forms compute it in the
// statement), and a new product's stock.
func newHTTPJob(r *rand.Rand, q *Query, j *job) *httpJob {
	hj := &httpJob{job: j, done: r.IntN(2) == 0}
	if q.Kind == kindProductUpdate || q.Kind == kindProductInsert {
		hj.stock = r.IntN(1000)
	}
	return hj
}

// httpQuery is the HTTP form of a Query.
type httpQuery struct {
	*Query
	rls   func(j *httpJob) httpRequest
	floor func(j *httpJob, a *floorAccess) httpRequest
	// verifySelect: writes are verified with return=representation,
	// tx=rollback and this select list.
	verifySelect string
	count        bool // the answer is Content-Range's total (HEAD with count=exact)
	form         HTTPForm
}

func jsonBody(v map[string]any) []byte {
	b, _ := json.Marshal(v)
	return b
}

const page = "order=id.desc&limit=50"

// productBody is a new product of j's store.
func productBody(j *httpJob) []byte {
	return jsonBody(map[string]any{"store_id": j.store, "name": j.text, "price": j.price, "stock": j.stock})
}

// httpForms are the HTTP forms of the queries, by key.
func httpForms() map[string]*httpQuery {
	get := func(path string) httpRequest { return httpRequest{method: "GET", path: path} }
	floorGet := func(path string) httpRequest {
		return httpRequest{method: "GET", path: path, profile: FloorSchema}
	}
	todosListFloor := func(j *httpJob, a *floorAccess) httpRequest {
		return floorGet("/todos?" + a.todosRead() + "&" + page)
	}
	chatsListFloor := func(j *httpJob, a *floorAccess) httpRequest {
		return floorGet(fmt.Sprintf("/chats?group_id=eq.%d&%s&%s", j.group, a.chatsRead(), page))
	}
	notesListFloor := func(j *httpJob, a *floorAccess) httpRequest {
		return floorGet("/notes?" + a.notesRead() + "&" + page)
	}
	productsOfStore := func(j *httpJob) string {
		return fmt.Sprintf("/products?store_id=eq.%d&%s", j.store, page)
	}
	productsFloor := func(j *httpJob, a *floorAccess) httpRequest { return floorGet(productsOfStore(j)) }
	const productsFloorText = "GET /products?store_id=eq.<store>&order=id.desc&limit=50 (every signed-in user reads every product)"
	const (
		todosFloorText = "GET /todos?or=(owner_id.eq.<user>,group_id.in.(<groups>),id.in.(<shared>))&order=id.desc&limit=50"
		chatsFloorText = "GET /chats?group_id=eq.<group>&or=(owner_id.eq.<user>,group_id.in.(<groups>))&order=id.desc&limit=50"
		notesFloorText = "GET /notes?org_id=eq.<org>&or=(owner_id.eq.<user>,group_id.in.(<groups>))&order=id.desc&limit=50"
	)
	forms := []*httpQuery{
		{
			Query: &Query{Key: "q1-todos"},
			rls:   func(*httpJob) httpRequest { return get("/todos?" + page) },
			floor: todosListFloor,
			form:  HTTPForm{RLS: "GET /todos?order=id.desc&limit=50", Floor: todosFloorText},
		},
		{
			Query: &Query{Key: "q1-chats"},
			rls: func(j *httpJob) httpRequest {
				return get(fmt.Sprintf("/chats?group_id=eq.%d&%s", j.group, page))
			},
			floor: chatsListFloor,
			form:  HTTPForm{RLS: "GET /chats?group_id=eq.<group>&order=id.desc&limit=50", Floor: chatsFloorText},
		},
		{
			Query: &Query{Key: "q1-todos-page"},
			rls:   func(*httpJob) httpRequest { return get("/rpc/todos_page") },
			floor: todosListFloor,
			form:  HTTPForm{RLS: "GET /rpc/todos_page", Floor: todosFloorText},
		},
		{
			Query: &Query{Key: "q1-chats-page"},
			rls:   func(j *httpJob) httpRequest { return get(fmt.Sprintf("/rpc/chats_page?group_id=%d", j.group)) },
			floor: chatsListFloor,
			form:  HTTPForm{RLS: "GET /rpc/chats_page?group_id=<group>", Floor: chatsFloorText},
		},
		{
			Query: &Query{Key: "q2-read"},
			rls:   func(j *httpJob) httpRequest { return get(fmt.Sprintf("/todos?id=eq.%d", j.id)) },
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return floorGet(fmt.Sprintf("/todos?id=eq.%d&%s", j.id, a.todosRead()))
			},
			form: HTTPForm{RLS: "GET /todos?id=eq.<id>", Floor: "GET /todos?id=eq.<id>&or=(owner_id.eq.<user>,group_id.in.(<groups>),id.in.(<shared>))"},
		},
		{
			Query: &Query{Key: "q3-update"},
			rls: func(j *httpJob) httpRequest {
				return httpRequest{method: "PATCH", path: fmt.Sprintf("/todos?id=eq.%d", j.id), prefer: "return=minimal",
					body: jsonBody(map[string]any{"done": j.done})}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "PATCH", path: fmt.Sprintf("/todos?id=eq.%d&%s", j.id, a.todosWrite()), profile: FloorSchema,
					prefer: "return=minimal", body: jsonBody(map[string]any{"done": j.done})}
			},
			verifySelect: "*", // PostgREST applies or= to the returned rows too: they need its columns
			form: HTTPForm{RLS: `PATCH /todos?id=eq.<id> {"done": <bool>}, Prefer: return=minimal`,
				Floor: `PATCH /todos?id=eq.<id>&or=(and(owner_id.eq.<user>,group_id.is.null),group_id.in.(<groups>),id.in.(<shared with write>)), the same body`},
		},
		{
			Query: &Query{Key: "q4-count"},
			// GET, not HEAD: PostgREST 12 closes the connection after a HEAD.
			rls: func(*httpJob) httpRequest {
				return httpRequest{method: "GET", path: "/todos?limit=0", prefer: "count=exact"}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "GET", path: "/todos?limit=0&" + a.todosRead(), profile: FloorSchema, prefer: "count=exact"}
			},
			count: true,
			form: HTTPForm{RLS: "GET /todos?limit=0, Prefer: count=exact (the count in Content-Range)",
				Floor: "GET /todos?limit=0&or=(owner_id.eq.<user>,group_id.in.(<groups>),id.in.(<shared>)), Prefer: count=exact"},
		},
		{
			Query: &Query{Key: "q5-todo"},
			rls: func(j *httpJob) httpRequest {
				return httpRequest{method: "POST", path: "/todos", prefer: "return=minimal", body: jsonBody(map[string]any{"title": j.text})}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "POST", path: "/todos_copy", profile: FloorSchema, prefer: "return=minimal",
					body: jsonBody(map[string]any{"title": j.text, "owner_id": a.user})}
			},
			verifySelect: "title,done,owner_id,group_id",
			form: HTTPForm{RLS: `POST /todos {"title": ...}, Prefer: return=minimal`,
				Floor: `POST /todos_copy {"title": ..., "owner_id": <user>} (bench.todos_copy: no RLS, no trigger)`},
		},
		{
			Query: &Query{Key: "q5-chat"},
			rls: func(j *httpJob) httpRequest {
				return httpRequest{method: "POST", path: "/chats", prefer: "return=minimal",
					body: jsonBody(map[string]any{"body": j.text, "group_id": j.group})}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "POST", path: "/chats_copy", profile: FloorSchema, prefer: "return=minimal",
					body: jsonBody(map[string]any{"body": j.text, "owner_id": a.user, "group_id": j.group})}
			},
			verifySelect: "body,owner_id,group_id",
			form: HTTPForm{RLS: `POST /chats {"body": ..., "group_id": <group>}, Prefer: return=minimal`,
				Floor: `POST /chats_copy {"body": ..., "owner_id": <user>, "group_id": <group>} (bench.chats_copy)`},
		},
		{
			Query: &Query{Key: "q7-notes"},
			rls:   func(*httpJob) httpRequest { return get("/notes?" + page) },
			floor: notesListFloor,
			form:  HTTPForm{RLS: "GET /notes?order=id.desc&limit=50", Floor: notesFloorText},
		},
		{
			Query: &Query{Key: "q7-notes-page"},
			rls:   func(*httpJob) httpRequest { return get("/rpc/notes_page") },
			floor: notesListFloor,
			form:  HTTPForm{RLS: "GET /rpc/notes_page", Floor: notesFloorText},
		},
		{
			Query: &Query{Key: "q7-notes-admin-page"},
			rls:   func(*httpJob) httpRequest { return get("/rpc/notes_page") },
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return floorGet("/notes?org_id=eq." + a.org + "&" + page)
			},
			form: HTTPForm{RLS: "GET /rpc/notes_page (a token with the realm role org-admin)", Floor: "GET /notes?org_id=eq.<org>&order=id.desc&limit=50"},
		},
		{
			Query: &Query{Key: "q8-notes-read"},
			rls:   func(j *httpJob) httpRequest { return get(fmt.Sprintf("/notes?id=eq.%d", j.id)) },
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return floorGet(fmt.Sprintf("/notes?id=eq.%d&%s", j.id, a.notesRead()))
			},
			form: HTTPForm{RLS: "GET /notes?id=eq.<id>", Floor: "GET /notes?id=eq.<id>&org_id=eq.<org>&or=(owner_id.eq.<user>,group_id.in.(<groups>))"},
		},
		{
			Query: &Query{Key: "q9-products"},
			rls:   func(j *httpJob) httpRequest { return get(productsOfStore(j)) },
			floor: productsFloor,
			form:  HTTPForm{RLS: "GET /products?store_id=eq.<store>&order=id.desc&limit=50", Floor: productsFloorText},
		},
		{
			Query: &Query{Key: "q9-products-page"},
			rls:   func(j *httpJob) httpRequest { return get(fmt.Sprintf("/rpc/products_page?store_id=%d", j.store)) },
			floor: productsFloor,
			form:  HTTPForm{RLS: "GET /rpc/products_page?store_id=<store>", Floor: productsFloorText},
		},
		{
			Query: &Query{Key: "q10-product-read"},
			rls:   func(j *httpJob) httpRequest { return get(fmt.Sprintf("/products?id=eq.%d", j.id)) },
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return floorGet(fmt.Sprintf("/products?id=eq.%d", j.id))
			},
			form: HTTPForm{RLS: "GET /products?id=eq.<id>", Floor: "GET /products?id=eq.<id> (every signed-in user reads every product)"},
		},
		{
			// The SQL forms add one to the stock; a PATCH sends the new
			// value, the same on both sides.
			Query: &Query{Key: "q10-product-update"},
			rls: func(j *httpJob) httpRequest {
				return httpRequest{method: "PATCH", path: fmt.Sprintf("/products?id=eq.%d", j.id), prefer: "return=minimal",
					body: jsonBody(map[string]any{"stock": j.stock})}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "PATCH", path: fmt.Sprintf("/products_copy?id=eq.%d&%s", j.id, a.productsWrite()), profile: FloorSchema,
					prefer: "return=minimal", body: jsonBody(map[string]any{"stock": j.stock})}
			},
			verifySelect: "*", // the filter applies to the returned rows too; the PATCH sets the stock, so the copy's row is the table's
			form: HTTPForm{RLS: `PATCH /products?id=eq.<id> {"stock": <n>}, Prefer: return=minimal`,
				Floor: `PATCH /products_copy?id=eq.<id>&store_id=in.(<stores of the user and of their groups>), the same body (bench.products_copy: no row guard)`},
		},
		{
			Query: &Query{Key: "q11-product-insert"},
			rls: func(j *httpJob) httpRequest {
				return httpRequest{method: "POST", path: "/products", prefer: "return=minimal", body: productBody(j)}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "POST", path: "/products_copy", profile: FloorSchema, prefer: "return=minimal", body: productBody(j)}
			},
			verifySelect: "store_id,name,price,stock",
			form: HTTPForm{RLS: `POST /products {"store_id": <store>, "name": ..., "price": ..., "stock": <n>}, Prefer: return=minimal`,
				Floor: `POST /products_copy, the same body (bench.products_copy; PostgREST puts no condition on an insert: the store is not checked)`},
		},
		{
			Query: &Query{Key: "q6-delete"},
			// count=exact: PostgREST 12 reports a DELETE's rows in
			// Content-Range only then (the count of the rows it returns
			// anyway), and the run checks that each deletes one.
			rls: func(j *httpJob) httpRequest {
				return httpRequest{method: "DELETE", path: fmt.Sprintf("/todos?id=eq.%d", j.id), prefer: "return=minimal, count=exact"}
			},
			floor: func(j *httpJob, a *floorAccess) httpRequest {
				return httpRequest{method: "DELETE", path: fmt.Sprintf("/todos?id=eq.%d&%s", j.id2, a.todosDelete()), profile: FloorSchema, prefer: "return=minimal, count=exact"}
			},
			verifySelect: "*",
			form: HTTPForm{RLS: "DELETE /todos?id=eq.<id>, Prefer: return=minimal, count=exact",
				Floor: "DELETE /todos?id=eq.<another row of the user>&or=(owner_id.eq.<user>,group_id.in.(<admin groups>),id.in.(<shared with delete>))"},
		},
	}
	out := map[string]*httpQuery{}
	for _, f := range forms {
		f.form.Key = f.Key
		out[f.Key] = f
	}
	return out
}

// httpQueries pairs the selected queries with their HTTP forms.
func httpQueries(queries []*Query) ([]*httpQuery, error) {
	forms := httpForms()
	var out []*httpQuery
	for _, q := range queries {
		f, ok := forms[q.Key]
		if !ok {
			return nil, fmt.Errorf("query %s has no HTTP form", q.Key)
		}
		hq := *f
		hq.Query = q
		out = append(out, &hq)
	}
	return out, nil
}

// httpEnv is what the HTTP half of a size needs.
type httpEnv struct {
	base   string
	ds     *Dataset
	access map[int]*floorAccess
	key    *jwtKey
	su     *pgxpool.Pool // rows to delete, inserted untimed
}

// httpAnswer is what PostgREST answered.
type httpAnswer struct {
	status       int
	contentRange string
	body         []byte
}

// rowsTouched is the number of rows Content-Range reports (0-0/* is one,
// */* none, */1 one: a DELETE sent with count=exact), or -1 when it does
// not say.
func (a httpAnswer) rowsTouched() int {
	r, total, _ := strings.Cut(a.contentRange, "/")
	if r == "*" {
		if n, err := strconv.Atoi(total); err == nil {
			return n
		}
		return 0
	}
	lo, hi, ok := strings.Cut(r, "-")
	if !ok {
		return -1
	}
	l, err1 := strconv.Atoi(lo)
	h, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil {
		return -1
	}
	return h - l + 1
}

// total is the count after the slash of Content-Range (count=exact).
func (a httpAnswer) total() string {
	_, t, _ := strings.Cut(a.contentRange, "/")
	return t
}

// newHTTPClient is one client: one keep-alive connection.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
		},
	}
}

// do sends r and reads the whole answer; the latency is from sending to
// the last byte of the body. keepBody keeps the body (verification); conns,
// when not nil, counts the connections opened.
func (e *httpEnv) do(ctx context.Context, c *http.Client, r httpRequest, keepBody bool, conns *int) (httpAnswer, time.Duration, error) {
	token, err := e.key.token(r.user)
	if err != nil {
		return httpAnswer{}, 0, err
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, e.base+r.path, body)
	if err != nil {
		return httpAnswer{}, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.prefer != "" {
		req.Header.Set("Prefer", r.prefer)
	}
	if r.profile != "" {
		if r.method == "GET" || r.method == "HEAD" {
			req.Header.Set("Accept-Profile", r.profile)
		} else {
			req.Header.Set("Content-Profile", r.profile)
		}
	}
	if conns != nil {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) {
				if !i.Reused {
					*conns++
				}
			},
		}))
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return httpAnswer{}, 0, err
	}
	var a httpAnswer
	if keepBody || resp.StatusCode >= 300 {
		a.body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	d := time.Since(start)
	resp.Body.Close()
	if err != nil {
		return a, d, fmt.Errorf("reading the answer: %w", err)
	}
	a.status, a.contentRange = resp.StatusCode, resp.Header.Get("Content-Range")
	if a.status >= 300 {
		return a, d, fmt.Errorf("%s %s: %d %s", r.method, clip(r.path), a.status, clip(string(a.body)))
	}
	return a, d, nil
}

// requests builds both sides of j.
func (e *httpEnv) requests(q *httpQuery, j *httpJob) (rls, floor httpRequest) {
	rls, floor = q.rls(j), q.floor(j, e.access[j.user.N])
	rls.user, floor.user = j.user, j.user
	return rls, floor
}

// fits says whether the floor's request for class fits in a URL.
func (e *httpEnv) fits(q *httpQuery, class UserClass) (int, bool) {
	r := rand.New(rand.NewPCG(1, 1))
	j := &httpJob{job: e.ds.newJob(r, q.Query, class)}
	j.id2 = j.id
	_, f := e.requests(q, j)
	return len(f.path), len(f.path) <= maxFloorURL
}

// runHTTP is the --http half of a size: PostgREST started on the data
// set, the floor schema made, the answers verified, then every request
// timed both ways.
func runHTTP(ctx context.Context, o Options, su *pgx.Conn, ds *Dataset, queries []*Query) (*HTTPReport, error) {
	hqs, err := httpQueries(queries)
	if err != nil {
		return nil, err
	}
	bin, version, err := FindPostgREST(o.PostgREST)
	if err != nil {
		return nil, err
	}
	if err := setupFloorSchema(ctx, su); err != nil {
		return nil, err
	}
	defer func() {
		if err := DropFloorSchema(context.Background(), su); err != nil {
			fmt.Fprintf(o.Log, "warning: dropping %s: %v\n", FloorSchema, err)
		}
	}()
	access, err := loadFloorAccess(ctx, su, ds)
	if err != nil {
		return nil, err
	}
	key, err := newJWTKey()
	if err != nil {
		return nil, err
	}
	maxClients := 0
	for _, c := range o.Clients {
		maxClients = max(maxClients, c)
	}
	conf, err := os.ReadFile(o.PostgRESTConf)
	if err != nil {
		return nil, fmt.Errorf("reading the PostgREST configuration: %w", err)
	}
	pre := ""
	if o.PreRequest {
		pre = floorPreRequest
	}
	rep := &HTTPReport{PostgREST: version, PreRequest: o.PreRequest, Settings: []string{
		// The floor's schema beside the API's.
		"PGRST_DB_SCHEMAS=" + confSchemas(string(conf)) + "," + FloorSchema,
		// As the SQL bench: the RLS side runs iam.check_request with
		// --pre-request only, the floor never.
		"PGRST_DB_PRE_REQUEST=" + pre,
		// Verification sends writes with Prefer: tx=rollback.
		"PGRST_DB_TX_END=commit-allow-override",
		// A connection for every client, both sides.
		fmt.Sprintf("PGRST_DB_POOL=%d", max(10, maxClients+2)),
		"PGRST_LOG_LEVEL=error",
	}}
	for _, q := range hqs {
		rep.Requests = append(rep.Requests, q.form)
	}
	dbURI, err := loginURL(o.DB, o.APIUser, o.APIPassword)
	if err != nil {
		return nil, err
	}
	pg, err := StartPostgREST(ctx, PostgRESTConfig{Bin: bin, ConfFile: o.PostgRESTConf, DBURI: dbURI, JWKS: key.JWKS(), Settings: rep.Settings})
	if err != nil {
		return nil, err
	}
	defer pg.Stop()
	fmt.Fprintf(o.Log, "%s started (%s), %s; floor: schema %s\n", version, pg.URL, strings.Join(rep.Settings, " "), FloorSchema)

	// A connection per client: each inserts the rows its deletes delete.
	pc, err := pgxpool.ParseConfig(o.DB)
	if err != nil {
		return nil, fmt.Errorf("parsing --db: %w", err)
	}
	pc.MaxConns = int32(maxClients + 1)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connecting to --db: %w", err)
	}
	defer pool.Close()
	e := &httpEnv{base: pg.URL, ds: ds, access: access, key: key, su: pool}

	// The tokens of every user a request may come from.
	var users []*User
	for _, u := range ds.Users {
		users = append(users, u)
		for _, q := range hqs {
			if q.Kind == kindNotesAdminList {
				users = append(users, u.OrgAdmin)
				break
			}
		}
	}
	if err := key.signAll(users, o.Log); err != nil {
		return nil, err
	}

	seed := uint64(o.Seed)
	n, skipped, err := verifyHTTP(ctx, e, hqs, verifyUsers(ds, 30, seed), seed)
	rep.Skipped = append(rep.Skipped, skipped...)
	if err != nil {
		return rep, withOutput(err, pg)
	}
	rep.Verified = n
	if err := Cleanup(ctx, su); err != nil {
		return rep, err
	}
	fmt.Fprintf(o.Log, "[http] verified: %d requests, the floor endpoint answers what the RLS endpoint answers\n", n)

	warm := max(500*time.Millisecond, o.Duration/10)
	type cell struct {
		q     *httpQuery
		class UserClass
	}
	var cells []cell
	for _, q := range hqs {
		cells = append(cells, cell{q, ClassRandom})
	}
	for _, class := range SpecialClasses {
		for _, q := range hqs {
			if q.RunsFor(class) {
				cells = append(cells, cell{q, class})
			}
		}
	}
	for _, c := range cells {
		if n, ok := e.fits(c.q, c.class); !ok {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s, %s: the floor's filter makes a %d-byte URL, longer than PostgREST accepts", c.q.Name, c.class, n))
			continue
		}
		for _, clients := range o.Clients {
			fmt.Fprintf(o.Log, "[http] %s, %s, %d client(s) ...\n", c.q.Name, c.class, clients)
			res, err := measureHTTP(ctx, e, c.q, c.class, clients, warm, o.Duration, seed)
			if err != nil {
				return rep, withOutput(err, pg)
			}
			rep.Results = append(rep.Results, res)
		}
		if !c.q.ReadOnly() {
			if err := Cleanup(ctx, su); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

func withOutput(err error, pg *PostgREST) error {
	if out := strings.TrimSpace(pg.Output()); out != "" {
		return fmt.Errorf("%w\nPostgREST's output:\n%s", err, out)
	}
	return err
}

// verifyHTTP checks, before anything is timed, that the floor endpoint
// answers what the RLS endpoint answers for a sample of users (the same
// jobs as Verify: JSON bodies compared; counts; writes sent with
// return=representation and tx=rollback), and that requests for rows a
// user can see by construction find them. It returns the number of
// requests compared, and the users left out (their filter does not fit in
// a URL).
func verifyHTTP(ctx context.Context, e *httpEnv, queries []*httpQuery, users []*User, seed uint64) (int, []string, error) {
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	// One committed row per user to delete.
	delRows := map[int]int64{}
	for _, q := range queries {
		if q.Kind != kindDelete {
			continue
		}
		for _, u := range users {
			var id int64
			if err := e.su.QueryRow(ctx, `insert into app.todos (title, owner_id) values ('bench check', $1) returning id`, u.ID).Scan(&id); err != nil {
				return 0, nil, fmt.Errorf("inserting rows to delete: %w", err)
			}
			delRows[u.N] = id
		}
		break
	}

	var skipped []string
	checked := 0
	r := rand.New(rand.NewPCG(seed, 11))
	for _, q := range queries {
		for _, u := range users {
			jobs, want := verifyJobs(e.ds, r, q.Query, u, delRows[u.N])
			for i, j := range jobs {
				hj := newHTTPJob(r, q.Query, j)
				desc := describeJob(q.Query, j)
				fail := func(detail string) error {
					return &WrongAnswerError{Query: q.Name, Floor: "HTTP " + q.form.Floor, Config: "http", User: u, Job: desc, Detail: detail}
				}
				rls, floor := e.requests(q, hj)
				if len(floor.path) > maxFloorURL {
					skipped = append(skipped, fmt.Sprintf("%s, user %d: not verified, the floor's filter makes a %d-byte URL, longer than PostgREST accepts", q.Name, u.N, len(floor.path)))
					break
				}
				got, err := answerHTTP(ctx, e, c, q, rls)
				if err != nil {
					return checked, skipped, fmt.Errorf("%s, RLS endpoint, user %d (%s): %w", q.Name, u.N, desc, err)
				}
				if want[i] >= 0 && got.n != want[i] {
					return checked, skipped, fail(fmt.Sprintf("the RLS endpoint answered %d rows, the data set says %d", got.n, want[i]))
				}
				exp, err := answerHTTP(ctx, e, c, q, floor)
				if err != nil {
					return checked, skipped, fmt.Errorf("%s, floor endpoint, user %d (%s): %w", q.Name, u.N, desc, err)
				}
				if d := got.diff(exp); d != "" {
					return checked, skipped, fail(d)
				}
				checked++
			}
		}
	}
	return checked, skipped, nil
}

// httpRows is an answer as verification compares it: the rows of a JSON
// body (or a count), decoded.
type httpRows struct {
	n     int
	rows  []any
	count string
}

func (a httpRows) diff(b httpRows) string {
	if a.count != b.count {
		return fmt.Sprintf("the RLS endpoint counted %s, the floor endpoint %s", a.count, b.count)
	}
	for i := 0; i < len(a.rows) || i < len(b.rows); i++ {
		var x, y any = "(none)", "(none)"
		if i < len(a.rows) {
			x = a.rows[i]
		}
		if i < len(b.rows) {
			y = b.rows[i]
		}
		if !reflect.DeepEqual(x, y) {
			xs, _ := json.Marshal(x)
			ys, _ := json.Marshal(y)
			return fmt.Sprintf("the RLS endpoint answered %d rows, the floor endpoint %d; first difference at row %d: RLS %s, floor %s",
				len(a.rows), len(b.rows), i+1, clip(string(xs)), clip(string(ys)))
		}
	}
	return ""
}

// answerHTTP sends r for verification: writes with their select list,
// return=representation and tx=rollback.
func answerHTTP(ctx context.Context, e *httpEnv, c *http.Client, q *httpQuery, r httpRequest) (httpRows, error) {
	if q.verifySelect != "" {
		sep := "?"
		if strings.Contains(r.path, "?") {
			sep = "&"
		}
		r.path += sep + "select=" + q.verifySelect
		r.prefer = "return=representation, tx=rollback"
	}
	a, _, err := e.do(ctx, c, r, true, nil)
	if err != nil {
		return httpRows{}, err
	}
	if q.count {
		return httpRows{n: -1, count: a.total()}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.UseNumber()
	var rows []any
	if err := dec.Decode(&rows); err != nil {
		return httpRows{}, fmt.Errorf("%s %s: want a JSON array: %w (%s)", r.method, clip(r.path), err, clip(string(a.body)))
	}
	return httpRows{n: len(rows), rows: rows}, nil
}

// measureHTTP runs q for dur with clients workers, each with its own
// connection to PostgREST. Each worker draws a request, then sends it both
// ways, RLS and floor, alternating which goes first, as measure does.
func measureHTTP(ctx context.Context, e *httpEnv, q *httpQuery, class UserClass, clients int, warm, dur time.Duration, seed uint64) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type perWorker struct{ rls, floor []time.Duration }
	out := make([]perWorker, clients)
	errs := make([]error, clients)
	var ready, wg sync.WaitGroup
	ready.Add(clients)
	start := make(chan struct{})
	var t0 time.Time
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = func() error {
				var fc *pgxpool.Conn
				if q.Kind == kindDelete {
					var err error
					if fc, err = e.su.Acquire(ctx); err != nil {
						ready.Done()
						return err
					}
					defer fc.Release()
				}
				c := newHTTPClient()
				defer c.CloseIdleConnections()
				ready.Done()
				<-start
				r := rand.New(rand.NewPCG(seed, uint64(w)+1))
				pool := &deletePool{ds: e.ds}
				conns := 0
				for i := 0; ; i++ {
					now := time.Now()
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if now.Sub(t0) >= warm+dur && len(out[w].rls) > 0 {
						return nil
					}
					timed := now.Sub(t0) >= warm
					j := newHTTPJob(r, q.Query, e.ds.newJob(r, q.Query, class))
					if q.Kind == kindDelete {
						u, ids, err := pool.next(ctx, fc, r)
						if err != nil {
							return err
						}
						j.user, j.id, j.id2 = u, ids[0], ids[1]
					}
					rls, floor := e.requests(q, j)
					order := []struct {
						name string
						r    httpRequest
						into *[]time.Duration
					}{{"RLS", rls, &out[w].rls}, {"floor", floor, &out[w].floor}}
					if i%2 == 1 {
						order[0], order[1] = order[1], order[0]
					}
					for _, o := range order {
						a, d, err := e.do(ctx, c, o.r, false, &conns)
						if err != nil {
							return fmt.Errorf("%s (%s endpoint, user %d): %w", q.Name, o.name, j.user.N, err)
						}
						if q.expectOne() {
							if n := a.rowsTouched(); q.Method != "POST" && n != 1 {
								return fmt.Errorf("%s (%s endpoint, user %d): Content-Range %q: touched %d rows, want 1: a wrong answer", q.Name, o.name, j.user.N, a.contentRange, n)
							}
							if q.Method == "POST" && a.status != http.StatusCreated {
								return fmt.Errorf("%s (%s endpoint, user %d): status %d, want 201", q.Name, o.name, j.user.N, a.status)
							}
						}
						if conns > 1 {
							return fmt.Errorf("%s (%s endpoint, user %d): PostgREST closed the client's connection: the latencies would include connecting", q.Name, o.name, j.user.N)
						}
						if timed {
							*o.into = append(*o.into, d)
						}
					}
				}
			}()
			if errs[w] != nil {
				cancel()
			}
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var rl, fl []time.Duration
	for _, o := range out {
		rl = append(rl, o.rls...)
		fl = append(fl, o.floor...)
	}
	res := &Result{Query: q.Name, Key: q.Key, User: class, Clients: clients, Floor: q.form.Floor,
		RLS: summarize(rl, clients), FloorS: summarize(fl, clients)}
	if res.FloorS.MedianMS > 0 {
		res.Ratio = res.RLS.MedianMS / res.FloorS.MedianMS
	}
	return res, nil
}

func printHTTP(w io.Writer, rows int, hr *HTTPReport) {
	pre := "no db-pre-request"
	if hr.PreRequest {
		pre = "the RLS side with db-pre-request iam.check_request"
	}
	fmt.Fprintf(w, "\nROWS=%d, over HTTP: %s, the shipped postgrest.conf, default planner settings; %s; %d requests verified against the floor endpoint before timing\n\n",
		rows, hr.PostgREST, pre, hr.Verified)
	t := &table{
		head:  []string{"request", "user", "clients", "RLS med ms", "RLS p95 ms", "RLS TPS", "floor med ms", "floor p95 ms", "floor TPS", "ratio"},
		right: map[int]bool{2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true},
	}
	for _, r := range hr.Results {
		t.add(r.Query, string(r.User), fmt.Sprint(r.Clients), ms(r.RLS.MedianMS), ms(r.RLS.P95MS), tps(r.RLS.TPS),
			ms(r.FloorS.MedianMS), ms(r.FloorS.P95MS), tps(r.FloorS.TPS), ratio(r.Ratio))
	}
	t.write(w)
	fmt.Fprintf(w, "\nrequests (the floor: schema %s, unprotected views, with Accept-Profile / Content-Profile; <groups>, <shared>, <stores> looked up before timing):\n", FloorSchema)
	for _, f := range hr.Requests {
		fmt.Fprintf(w, "  %s: RLS %s\n  %s  floor %s\n", f.Key, f.RLS, strings.Repeat(" ", len(f.Key)), f.Floor)
	}
	for _, s := range hr.Skipped {
		fmt.Fprintf(w, "  left out: %s\n", s)
	}
}
