package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Kind says how a query's requests are drawn and checked.
type Kind int

const (
	kindTodosList      Kind = iota // a random user
	kindChatsList                  // a random user in a group, one of their groups
	kindReadByID                   // a random user, one of the todos they can see
	kindUpdate                     // same; the update flips done
	kindCount                      // a random user
	kindInsertTodo                 // a random user
	kindInsertChat                 // a random user in a group, one of their groups
	kindDelete                     // a todo inserted for a random user beforehand (untimed)
	kindNotesList                  // a random user, in their organisation
	kindNotesRead                  // a random user, one of the notes they can see
	kindNotesAdminList             // a random user with the realm role org-admin
	kindProductsList               // a random user, a random store
	kindProductRead                // a random user, a random product
	kindProductUpdate              // a member of a store's staff group, a product of the store
	kindProductInsert              // a store's owner, into that store
)

// Query is one benchmarked request: the SQL PostgREST's role runs with RLS
// deciding, and the hand-written floors that do the same for one user with
// RLS off.
type Query struct {
	Key        string // short name, used in JSON
	Name       string // what the report prints
	Kind       Kind
	Method     string // the HTTP method: GET and HEAD run READ ONLY
	Path       string
	RLS        string // run as web_user; the policies decide
	RLSArgs    func(j *job) []any
	Floors     []Floor // candidates; the fastest is timed
	Rows       bool    // returns rows (reads); writes are Exec'd
	Special    bool    // also run for the special users (ClassMany, ClassBig)
	GroupScale bool    // also run for the users in 500 and 2,000 groups (ClassMany500, ClassMany2000): the todos list pages
	Shared     bool    // also run for the user with 10,000 shares (ClassShares)
	Returning  string  // verification: appended to writes to compare what they wrote
}

// Floor is a hand-written query for one user, run as FloorRole (BYPASSRLS)
// with the user id as a parameter and the user's groups looked up from
// iam.group_members in the same statement.
type Floor struct {
	Name string
	SQL  string
	Args func(j *job) []any
}

// job is one request: who, and its parameters.
type job struct {
	user  *User
	id    int64 // the row (read, update, delete)
	id2   int64 // the floor's row for a delete (each side deletes its own)
	group int64 // the group (chats)
	store int64 // the store (products)
	price float64
	text  string // title or body of an insert
}

// myGroups is the floor's look-up of the caller's groups: the same rows
// iam.group_ids('member') reads.
const myGroups = `array(select m.group_id from iam.group_members m where m.user_id = $1::text)`
const myAdminGroups = `array(select m.group_id from iam.group_members m where m.user_id = $1::text and m.role in ('admin', 'owner'))`

// myShares is the floor's look-up of the todos shared with the caller
// (whose share grants what cond says): the rows iam.app_todos_shared reads.
func myShares(cond string) string {
	return `array(select s.row_id from iam.app_todos_shares s where (s.user_id = $1 or s.group_id = any (` + myGroups + `))` + cond + `)`
}

// sharedProbe is the floor's look at one todo's shares: is todo $2 shared
// with the caller (and does the share grant what cond says)?
func sharedProbe(cond string) string {
	return `exists (select from iam.app_todos_shares s where s.row_id = $2 and (s.user_id = $1 or s.group_id = any (` + myGroups + `))` + cond + `)`
}

func userArg(j *job) []any { return []any{j.user.ID} }

// sharedPage is the floor's newest page of the todos shared with the
// caller and not theirs nor of their groups: the newest 50 shared ids from
// the share table's (user_id, row_id) index and one walk per group, then
// the rows by primary key.
const sharedPage = `(select t.* from (
     select p.row_id from (
       (select s.row_id from iam.app_todos_shares s where s.user_id = $1 order by s.row_id desc limit 50)
       union
       (select g.row_id from iam.group_members m
        cross join lateral (select s.row_id from iam.app_todos_shares s where s.group_id = m.group_id order by s.row_id desc limit 50) g
        where m.user_id = $1::text)
     ) p order by p.row_id desc limit 50) p
   join app.todos t on t.id = p.row_id
   where t.owner_id <> $1 and not coalesce(t.group_id = any (` + myGroups + `), false))`

// todosListFloors answer Q1 on todos: the page function's request too.
// Each reads the todos shared with the caller too (share by id).
var todosListFloors = []Floor{
	{Name: "or", Args: userArg, SQL: `select * from app.todos
where owner_id = $1 or group_id = any (` + myGroups + `) or id = any (` + myShares("") + `)
order by id desc limit 50`},
	{Name: "union all", Args: userArg, SQL: `select * from (
  (select * from app.todos where owner_id = $1 order by id desc limit 50)
  union all
  (select * from app.todos where group_id = any (` + myGroups + `) and owner_id <> $1 order by id desc limit 50)
  union all
  ` + sharedPage + `
) t order by id desc limit 50`},
	{Name: "union all, lateral per group", Args: userArg, SQL: `select * from (
  (select * from app.todos where owner_id = $1 order by id desc limit 50)
  union all
  (select t.* from iam.group_members m
   cross join lateral (select * from app.todos t where t.group_id = m.group_id and t.owner_id <> $1 order by t.id desc limit 50) t
   where m.user_id = $1::text)
  union all
  ` + sharedPage + `
) t order by id desc limit 50`},
}

// chatsListFloors answer Q1 on one group's chats: the page function's request too.
var chatsListFloors = []Floor{
	{Name: "or", Args: func(j *job) []any { return []any{j.user.ID, j.group} }, SQL: `select * from app.chats
where group_id = $2 and (owner_id = $1 or group_id = any (` + myGroups + `))
order by id desc limit 50`},
	{Name: "exists", Args: func(j *job) []any { return []any{j.user.ID, j.group} }, SQL: `select * from app.chats
where group_id = $2 and (owner_id = $1 or exists (select from iam.group_members m where m.user_id = $1::text and m.group_id = $2))
order by id desc limit 50`},
}

// notesListFloors answer the notes list of a user (no org-admin): the
// newest 50 of their own notes and their groups' notes, in their
// organisation.
var notesListFloors = []Floor{
	{Name: "or", Args: orgArgs, SQL: `select * from app.notes
where org_id = $2 and (owner_id = $1 or group_id = any (` + myGroups + `))
order by id desc limit 50`},
	{Name: "union all, lateral per group", Args: orgArgs, SQL: `select * from (
  (select * from app.notes where org_id = $2 and owner_id = $1 order by id desc limit 50)
  union all
  (select t.* from iam.group_members m
   cross join lateral (select * from app.notes t where t.org_id = $2 and t.group_id = m.group_id and t.owner_id <> $1 order by t.id desc limit 50) t
   where m.user_id = $1::text)
) t order by id desc limit 50`},
}

// productsOfStore answers the products of one store: reading is granted
// to every signed-in user (stores.iam), so the floor is the plain query.
var productsOfStore = []Floor{{Name: "the store", Args: storeArg,
	SQL: `select * from app.products where store_id = $1 order by id desc limit 50`}}

func storeArg(j *job) []any { return []any{j.store} }

// mayWriteStore is the authorization a careful app writes into an update
// of a product (t) for user $1: the store is theirs, or its group is one
// of theirs (staff change the stock, the only column the update changes).
const mayWriteStore = `exists (select from app.stores s where s.id = t.store_id
  and (s.owner_id = $1 or exists (select from iam.group_members m where m.group_id = s.group_id and m.user_id = $1::text)))`

// productUpdateFloors: the same update with RLS off and the authorization
// in the statement, on app.products (whose row guard trigger, iamc's,
// still fires) and on the unprotected copy (no trigger).
var productUpdateFloors = []Floor{
	{Name: "exists", Args: productArgs, SQL: `update app.products t set stock = stock + 1 where id = $2 and ` + mayWriteStore},
	{Name: "in (stores)", Args: productArgs, SQL: `update app.products set stock = stock + 1
where id = $2 and store_id in (select s.id from app.stores s
  where s.owner_id = $1 or s.group_id in (select m.group_id from iam.group_members m where m.user_id = $1::text))`},
	{Name: "exists, copy table", Args: productArgs, SQL: `update bench.products_copy t set stock = stock + 1 where id = $2 and ` + mayWriteStore},
}

func productArgs(j *job) []any { return []any{j.user.ID, j.id} }

// orgArgs are the user's id and organisation.
func orgArgs(j *job) []any { return []any{j.user.ID, j.user.Org} }

// SelectQueries returns the queries with the given keys, in report order;
// all of them for none.
func SelectQueries(keys []string) ([]*Query, error) {
	all := Queries()
	if len(keys) == 0 {
		return all, nil
	}
	var known []string
	for _, q := range all {
		known = append(known, q.Key)
	}
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("no query %q: the keys are %s", k, strings.Join(known, ", "))
		}
	}
	var out []*Query
	for _, q := range all {
		if slices.Contains(keys, q.Key) {
			out = append(out, q)
		}
	}
	return out, nil
}

// Queries are the benchmarked requests, in report order.
func Queries() []*Query {
	return []*Query{
		{
			Key: "q1-todos", Name: "Q1 todos list", Kind: kindTodosList, Method: "GET", Path: "/todos", Rows: true, Special: true, GroupScale: true, Shared: true,
			RLS:     `select * from app.todos order by id desc limit 50`,
			RLSArgs: func(*job) []any { return nil },
			Floors:  todosListFloors,
		},
		{
			Key: "q1-chats", Name: "Q1 chats list (one group)", Kind: kindChatsList, Method: "GET", Path: "/chats", Rows: true, Special: true,
			RLS:     `select * from app.chats where group_id = $1 order by id desc limit 50`,
			RLSArgs: func(j *job) []any { return []any{j.group} },
			Floors:  chatsListFloors,
		},
		{
			Key: "q1-todos-page", Name: "Q1 todos page (todos_page)", Kind: kindTodosList, Method: "GET", Path: "/rpc/todos_page", Rows: true, Special: true, GroupScale: true, Shared: true,
			RLS:     `select * from app.todos_page()`,
			RLSArgs: func(*job) []any { return nil },
			Floors:  todosListFloors,
		},
		{
			Key: "q1-chats-page", Name: "Q1 chats page, one group (chats_page)", Kind: kindChatsList, Method: "GET", Path: "/rpc/chats_page?group_id={group}", Rows: true, Special: true,
			RLS:     `select * from app.chats_page(group_id => $1)`,
			RLSArgs: func(j *job) []any { return []any{j.group} },
			Floors:  chatsListFloors,
		},
		{
			Key: "q2-read", Name: "Q2 read todo by id", Kind: kindReadByID, Method: "GET", Path: "/todos?id=eq.{id}", Rows: true, Shared: true,
			RLS:     `select * from app.todos where id = $1`,
			RLSArgs: func(j *job) []any { return []any{j.id} },
			Floors: []Floor{
				{Name: "or", Args: func(j *job) []any { return []any{j.user.ID, j.id} }, SQL: `select * from app.todos
where id = $2 and (owner_id = $1 or group_id = any (` + myGroups + `) or ` + sharedProbe("") + `)`},
				{Name: "exists", Args: func(j *job) []any { return []any{j.user.ID, j.id} }, SQL: `select * from app.todos t
where id = $2 and (owner_id = $1 or exists (select from iam.group_members m where m.user_id = $1::text and m.group_id = t.group_id)
                   or exists (select from iam.app_todos_shares s where s.row_id = $2 and s.user_id = $1)
                   or exists (select from iam.app_todos_shares s join iam.group_members m on m.group_id = s.group_id
                              where s.row_id = $2 and m.user_id = $1::text))`},
			},
		},
		{
			Key: "q3-update", Name: "Q3 update todo (done = not done)", Kind: kindUpdate, Method: "PATCH", Path: "/todos?id=eq.{id}",
			RLS:       `update app.todos set done = not done where id = $1`,
			RLSArgs:   func(j *job) []any { return []any{j.id} },
			Returning: ` returning id, done`,
			Floors: []Floor{
				{Name: "or", Args: func(j *job) []any { return []any{j.user.ID, j.id} }, SQL: `update app.todos set done = not done
where id = $2 and (owner_id = $1 or group_id = any (` + myGroups + `) or ` + sharedProbe(" and s.can_write") + `)`},
			},
		},
		{
			Key: "q4-count", Name: "Q4 count todos", Kind: kindCount, Method: "GET", Path: "/todos?select=count()", Rows: true, Special: true,
			RLS:     `select count(*) from app.todos`,
			RLSArgs: func(*job) []any { return nil },
			Floors: []Floor{
				{Name: "or", Args: userArg, SQL: `select count(*) from app.todos where owner_id = $1 or group_id = any (` + myGroups + `) or id = any (` + myShares("") + `)`},
				{Name: "sum of arms", Args: userArg, SQL: `select (select count(*) from app.todos where owner_id = $1)
     + (select count(*) from app.todos where group_id = any (` + myGroups + `) and owner_id <> $1)
     + (select count(*) from app.todos where id = any (` + myShares("") + `) and owner_id <> $1 and not coalesce(group_id = any (` + myGroups + `), false))`},
			},
		},
		{
			Key: "q5-todo", Name: "Q5 insert own todo", Kind: kindInsertTodo, Method: "POST", Path: "/todos",
			RLS:       `insert into app.todos (title) values ($1)`,
			RLSArgs:   func(j *job) []any { return []any{j.text} },
			Returning: ` returning title, done, owner_id, group_id`,
			Floors: []Floor{
				{Name: "copy table", Args: func(j *job) []any { return []any{j.user.ID, j.text} },
					SQL: `insert into bench.todos_copy (title, owner_id) values ($2, $1)`},
			},
		},
		{
			Key: "q5-chat", Name: "Q5 insert chat into own group", Kind: kindInsertChat, Method: "POST", Path: "/chats",
			RLS:       `insert into app.chats (body, group_id) values ($1, $2)`,
			RLSArgs:   func(j *job) []any { return []any{j.text, j.group} },
			Returning: ` returning body, owner_id, group_id`,
			Floors: []Floor{
				{Name: "copy table", Args: func(j *job) []any { return []any{j.user.ID, j.text, j.group} },
					SQL: `insert into bench.chats_copy (body, owner_id, group_id) values ($2, $1, $3)`},
			},
		},
		{
			Key: "q7-notes", Name: "Q7 notes list (one organisation)", Kind: kindNotesList, Method: "GET", Path: "/notes", Rows: true,
			RLS:     `select * from app.notes order by id desc limit 50`,
			RLSArgs: func(*job) []any { return nil },
			Floors:  notesListFloors,
		},
		{
			Key: "q7-notes-page", Name: "Q7 notes page (notes_page)", Kind: kindNotesList, Method: "GET", Path: "/rpc/notes_page", Rows: true,
			RLS:     `select * from app.notes_page()`,
			RLSArgs: func(*job) []any { return nil },
			Floors:  notesListFloors,
		},
		{
			Key: "q7-notes-admin-page", Name: "Q7 notes page of an org-admin (notes_page)", Kind: kindNotesAdminList, Method: "GET", Path: "/rpc/notes_page", Rows: true,
			RLS:     `select * from app.notes_page()`,
			RLSArgs: func(*job) []any { return nil },
			Floors: []Floor{{Name: "the organisation", Args: func(j *job) []any { return []any{j.user.Org} },
				SQL: `select * from app.notes where org_id = $1 order by id desc limit 50`}},
		},
		{
			Key: "q8-notes-read", Name: "Q8 read note by id", Kind: kindNotesRead, Method: "GET", Path: "/notes?id=eq.{id}", Rows: true,
			RLS:     `select * from app.notes where id = $1`,
			RLSArgs: func(j *job) []any { return []any{j.id} },
			Floors: []Floor{
				{Name: "or", Args: func(j *job) []any { return []any{j.user.ID, j.user.Org, j.id} }, SQL: `select * from app.notes
where id = $3 and org_id = $2 and (owner_id = $1 or group_id = any (` + myGroups + `))`},
			},
		},
		{
			Key: "q9-products", Name: "Q9 products of one store", Kind: kindProductsList, Method: "GET", Path: "/products?store_id=eq.{store}&order=id.desc&limit=50", Rows: true,
			RLS:     `select * from app.products where store_id = $1 order by id desc limit 50`,
			RLSArgs: storeArg,
			Floors:  productsOfStore,
		},
		{
			Key: "q9-products-page", Name: "Q9 products page of one store (products_page)", Kind: kindProductsList, Method: "GET", Path: "/rpc/products_page?store_id={store}", Rows: true,
			RLS:     `select * from app.products_page(store_id => $1)`,
			RLSArgs: storeArg,
			Floors:  productsOfStore,
		},
		{
			Key: "q10-product-read", Name: "Q10 read product by id", Kind: kindProductRead, Method: "GET", Path: "/products?id=eq.{id}", Rows: true,
			RLS:     `select * from app.products where id = $1`,
			RLSArgs: func(j *job) []any { return []any{j.id} },
			Floors: []Floor{{Name: "by id", Args: func(j *job) []any { return []any{j.id} },
				SQL: `select * from app.products where id = $1`}},
		},
		{
			Key: "q10-product-update", Name: "Q10 update product stock (store staff)", Kind: kindProductUpdate, Method: "PATCH", Path: "/products?id=eq.{id}",
			RLS:       `update app.products set stock = stock + 1 where id = $1`,
			RLSArgs:   func(j *job) []any { return []any{j.id} },
			Returning: ` returning id, store_id`, // not stock: the copy table's and the table's drift apart as each side updates its own
			Floors:    productUpdateFloors,
		},
		{
			Key: "q11-product-insert", Name: "Q11 insert product (store owner)", Kind: kindProductInsert, Method: "POST", Path: "/products",
			RLS:       `insert into app.products (store_id, name, price) values ($1, $2, $3)`,
			RLSArgs:   func(j *job) []any { return []any{j.store, j.text, j.price} },
			Returning: ` returning store_id, name, price, stock`,
			Floors: []Floor{{Name: "copy table", Args: func(j *job) []any { return []any{j.store, j.text, j.price} },
				SQL: `insert into bench.products_copy (store_id, name, price) values ($1, $2, $3)`}},
		},
		{
			Key: "q6-delete", Name: "Q6 delete todo", Kind: kindDelete, Method: "DELETE", Path: "/todos?id=eq.{id}",
			RLS:       `delete from app.todos where id = $1`,
			RLSArgs:   func(j *job) []any { return []any{j.id} },
			Returning: ` returning id`,
			Floors: []Floor{
				{Name: "or", Args: func(j *job) []any { return []any{j.user.ID, j.id2} }, SQL: `delete from app.todos
where id = $2 and (owner_id = $1 or group_id = any (` + myAdminGroups + `) or ` + sharedProbe(" and s.can_delete") + `)`},
			},
		},
	}
}

// ReadOnly: PostgREST runs GET and HEAD in READ ONLY transactions.
func (q *Query) ReadOnly() bool { return q.Method == "GET" || q.Method == "HEAD" }

// UserClass is who the requests come from.
type UserClass string

const (
	ClassRandom   UserClass = "random user"
	ClassMany     UserClass = "user in 50 groups"
	ClassBig      UserClass = "user seeing 100k todos"
	ClassMany500  UserClass = "user in 500 groups"
	ClassMany2000 UserClass = "user in 2,000 groups"
	ClassShares   UserClass = "user with 10,000 shares"
)

// SpecialClasses are the special users, in report order (after the
// random users).
var SpecialClasses = []UserClass{ClassMany, ClassBig, ClassMany500, ClassMany2000, ClassShares}

// RunsFor says whether q is run for class: every query for random users,
// the Special ones for the users in 50 groups and seeing 100k todos, the
// GroupScale ones for the users in 500 and 2,000 groups, the Shared ones
// for the user with 10,000 shares.
func (q *Query) RunsFor(class UserClass) bool {
	switch class {
	case ClassMany, ClassBig:
		return q.Special
	case ClassMany500, ClassMany2000:
		return q.GroupScale
	case ClassShares:
		return q.Shared
	}
	return true
}

// Classes are the user classes q is run for, in report order.
func (q *Query) Classes() []UserClass {
	out := []UserClass{ClassRandom}
	for _, c := range SpecialClasses {
		if q.RunsFor(c) {
			out = append(out, c)
		}
	}
	return out
}

// newJob draws a request for q from class. Deletes get their rows from
// pool (see deletePool).
func (ds *Dataset) newJob(r *rand.Rand, q *Query, class UserClass) *job {
	j := &job{}
	switch class {
	case ClassMany:
		j.user = ds.Many
	case ClassBig:
		j.user = ds.Big
	case ClassMany500:
		j.user = ds.Many500
	case ClassMany2000:
		j.user = ds.Many2000
	case ClassShares:
		j.user = ds.Shares
	default:
		switch q.Kind {
		case kindChatsList, kindInsertChat:
			j.user = pick(r, ds.WithGroups)
		case kindReadByID, kindUpdate:
			for range 1000 {
				if j.user = pick(r, ds.Normal); len(j.user.Visible) > 0 {
					break
				}
			}
		case kindNotesRead:
			for range 1000 {
				if j.user = pick(r, ds.Normal); len(j.user.VisibleNotes) > 0 {
					break
				}
			}
		case kindNotesAdminList:
			j.user = pick(r, ds.Normal).OrgAdmin
		case kindProductUpdate:
			p := pick(r, ds.StaffedProducts)
			j.id, j.store = p.ID, p.Store
			j.user = pick(r, ds.Staff[ds.Stores[p.Store-1].Group])
		case kindProductInsert:
			s := pick(r, ds.OwnedStores)
			j.user, j.store = s.Owner, s.ID
		default:
			j.user = pick(r, ds.Normal)
		}
	}
	switch q.Kind {
	case kindChatsList, kindInsertChat:
		if len(j.user.Groups) > 0 {
			j.group = pick(r, j.user.Groups)
		}
		j.text = fmt.Sprintf("bench message %d", r.Uint32())
	case kindReadByID, kindUpdate:
		switch {
		case class == ClassShares && len(ds.SharedRows) > 0:
			j.id = pick(r, ds.SharedRows) // a todo shared with them: the shared arm decides
		case len(j.user.Visible) > 0:
			j.id = pick(r, j.user.Visible)
		}
	case kindInsertTodo:
		j.text = fmt.Sprintf("bench todo %d", r.Uint32())
	case kindNotesRead:
		if len(j.user.VisibleNotes) > 0 {
			j.id = pick(r, j.user.VisibleNotes)
		}
	case kindProductsList:
		j.store = 1 + r.Int64N(int64(len(ds.Stores)))
	case kindProductRead:
		j.id = pick(r, ds.Products).ID
	case kindProductInsert:
		j.text = fmt.Sprintf("bench product %d", r.Uint32())
		j.price = float64(100+r.IntN(9900)) / 100
	}
	return j
}
