package catalog

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iamc/iamc/compiler"
)

// roleFacts is what the checks need to know about one role.
type roleFacts struct {
	Exists        bool
	Super, Bypass bool
}

func (c *catalogCheck) role(name string) (roleFacts, error) {
	f := roleFacts{Exists: true}
	err := c.db.QueryRow(c.ctx, "select rolsuper, rolbypassrls from pg_catalog.pg_roles where rolname = $1", name).Scan(&f.Super, &f.Bypass)
	if errors.Is(err, pgx.ErrNoRows) {
		return roleFacts{}, nil
	}
	if err != nil {
		return f, fmt.Errorf("looking up role %s: %w", name, err)
	}
	return f, nil
}

// runtimeRole is a role requests run as, or the one PostgREST logs in as.
type runtimeRole struct {
	name  string
	what  string // "the authenticated role"
	whose string // "every request with a JWT"
	login bool   // the authenticator
}

// checkRoles reports, at the roles block: roles that do not exist; an
// authenticator that cannot become a runtime role; runtime roles that
// skip row-level security (superuser, BYPASSRLS: an error for the roles
// requests run as, a warning for the authenticator, which requests never
// run as); and runtime roles that can become the owner role.
func (c *catalogCheck) checkRoles() error {
	roles, pos := c.m.Roles, c.m.RolesPos
	auth := c.opts.Authenticator
	facts := map[string]roleFacts{}
	names := []string{roles.Authenticated, roles.Anonymous, roles.Owner}
	if auth != "" {
		names = append(names, auth)
	}
	for _, name := range names {
		if _, seen := facts[name]; seen {
			continue
		}
		f, err := c.role(name)
		if err != nil {
			return err
		}
		facts[name] = f
		if f.Exists {
			continue
		}
		if name == auth && name != roles.Authenticated && name != roles.Anonymous && name != roles.Owner {
			c.add(pos, LevelError,
				fmt.Sprintf("create role %s login noinherit password '...'; grant %s, %s to %s; (or name PostgREST's login role with --authenticator)",
					compiler.QuoteIdent(auth), compiler.QuoteIdent(roles.Authenticated), compiler.QuoteIdent(roles.Anonymous), compiler.QuoteIdent(auth)),
				"role %s does not exist: PostgREST logs in as it (--authenticator)", auth)
			continue
		}
		c.add(pos, LevelError, fmt.Sprintf("create role %s nologin; (or name an existing role in the roles block)", compiler.QuoteIdent(name)),
			"role %s does not exist", name)
	}

	var runtime []runtimeRole
	seen := map[string]bool{}
	for _, r := range []runtimeRole{
		{roles.Authenticated, "the authenticated role", "every request with a JWT", false},
		{roles.Anonymous, "the anonymous role", "every request without a JWT", false},
		{auth, "the login role", "", true},
	} {
		if r.name == "" || seen[r.name] || !facts[r.name].Exists {
			continue
		}
		seen[r.name] = true
		runtime = append(runtime, r)
	}

	for _, r := range runtime {
		f, q := facts[r.name], compiler.QuoteIdent(r.name)
		switch {
		case f.Super && r.login:
			c.add(pos, LevelWarning, fmt.Sprintf("alter role %s nosuperuser%s; (it only needs to be a member of the runtime roles)", q, nobypass(f)),
				"%s %s is a superuser: it can become any role, so a token whose role claim names any role runs as that role", r.what, r.name)
		case f.Super:
			c.add(pos, LevelError, fmt.Sprintf("alter role %s nosuperuser%s;", q, nobypass(f)),
				"%s %s is a superuser: %s skips row-level security and every privilege check", r.what, r.name, r.whose)
		case f.Bypass && r.login:
			c.add(pos, LevelWarning, fmt.Sprintf("alter role %s nobypassrls;", q),
				"%s %s has BYPASSRLS: whatever runs as it rather than as a runtime role skips row-level security", r.what, r.name)
		case f.Bypass:
			c.add(pos, LevelError, fmt.Sprintf("alter role %s nobypassrls;", q),
				"%s %s has BYPASSRLS: %s skips row-level security", r.what, r.name, r.whose)
		}
	}

	if auth != "" && facts[auth].Exists {
		// PostgREST switches role with SET ROLE; since PostgreSQL 16 a
		// membership can be granted without the right to do that.
		priv := "MEMBER"
		if c.version >= 160000 {
			priv = "SET"
		}
		for _, r := range []runtimeRole{
			{roles.Authenticated, "", "every request with a JWT", false},
			{roles.Anonymous, "", "every request without a JWT", false},
		} {
			if r.name == auth || !facts[r.name].Exists {
				continue
			}
			var can bool
			if err := c.db.QueryRow(c.ctx, "select pg_catalog.pg_has_role($1, $2, $3)", auth, r.name, priv).Scan(&can); err != nil {
				return fmt.Errorf("checking whether %s can become %s: %w", auth, r.name, err)
			}
			if !can {
				c.add(pos, LevelError, fmt.Sprintf("grant %s to %s;", compiler.QuoteIdent(r.name), compiler.QuoteIdent(auth)),
					"%s cannot become %s: PostgREST logs in as %s and switches to %s for %s", auth, r.name, auth, r.name, r.whose)
			}
		}
	}

	owner := roles.Owner
	if !facts[owner].Exists {
		return nil
	}
	for _, r := range runtime {
		if facts[r.name].Super { // reported above: a superuser is everyone
			continue
		}
		if r.name == owner {
			c.add(pos, LevelWarning, "declare an owner role no request runs as (roles { owner api_owner }) and make it own the tables",
				"the owner role %s is also %s: requests run as the owner of every resource's table, with every privilege on it and the power to turn row-level security off",
				owner, r.what)
			continue
		}
		// A runtime role that is a member in any way counts: with INHERIT it
		// holds the owner's privileges (and skips row-level security that is
		// not forced) even when it cannot SET ROLE. The login role matters
		// only through PostgREST's role switch, which since PostgreSQL 16
		// needs memberships WITH SET all the way.
		priv := "MEMBER"
		if r.login && c.version >= 160000 {
			priv = "SET"
		}
		var member bool
		if err := c.db.QueryRow(c.ctx, "select pg_catalog.pg_has_role($1, $2, $3)", r.name, owner, priv).Scan(&member); err != nil {
			return fmt.Errorf("checking whether %s can become %s: %w", r.name, owner, err)
		}
		if !member {
			continue
		}
		hint := fmt.Sprintf("revoke %s from %s; (or from the role through which it is a member)", compiler.QuoteIdent(owner), compiler.QuoteIdent(r.name))
		if r.login {
			c.add(pos, LevelWarning, hint,
				"%s can become the owner role %s: a token whose role claim is %s makes PostgREST run the request as the owner of every resource's table",
				r.name, owner, owner)
		} else {
			c.add(pos, LevelWarning, hint,
				"%s %s can become the owner role %s: requests get every privilege on the resources' tables and the power to turn row-level security off",
				r.what, r.name, owner)
		}
	}
	return nil
}

func nobypass(f roleFacts) string {
	if f.Bypass {
		return " nobypassrls"
	}
	return ""
}

// checkGroupsSchema reports a groups API schema that does not exist, or
// that the owner role cannot create the group API in.
func (c *catalogCheck) checkGroupsSchema() error {
	g, owner := c.m.Groups, c.m.Roles.Owner
	if !g.Declared || g.APISchema == "" {
		return nil
	}
	var oid uint32
	err := c.db.QueryRow(c.ctx, "select oid from pg_catalog.pg_namespace where nspname = $1", g.APISchema).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		c.add(g.Pos, LevelError, fmt.Sprintf("create schema %s authorization %s;", compiler.QuoteIdent(g.APISchema), compiler.QuoteIdent(owner)),
			"the groups API schema %s does not exist: iamc build creates the group functions and views there, and PostgREST must serve it", g.APISchema)
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up schema %s: %w", g.APISchema, err)
	}
	ownerRole, err := c.role(owner)
	if err != nil || !ownerRole.Exists {
		return err
	}
	var canCreate bool
	if err := c.db.QueryRow(c.ctx, "select pg_catalog.has_schema_privilege($1, $2::pg_catalog.oid, 'CREATE')", owner, oid).Scan(&canCreate); err != nil {
		return fmt.Errorf("checking the privileges of %s on schema %s: %w", owner, g.APISchema, err)
	}
	if !canCreate {
		c.add(g.Pos, LevelError, fmt.Sprintf("grant create on schema %s to %s;", compiler.QuoteIdent(g.APISchema), compiler.QuoteIdent(owner)),
			"the owner role %s cannot create in the groups API schema %s: applying iamc build would fail there", owner, g.APISchema)
	}
	return nil
}
