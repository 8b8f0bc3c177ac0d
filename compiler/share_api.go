package compiler

import (
	"fmt"
	"strings"

	"github.com/iamc/iamc/lang"
)

// The share API (SPEC §21): three functions in the groups block's API
// schema, served by PostgREST, each running as the caller:
//
//	POST /rpc/todos_share   {"id", "user_id" | "group_id", "permissions"}
//	POST /rpc/todos_unshare {"id", "user_id" | "group_id"}
//	GET  /rpc/todos_shares?id=
//
// Each looks the row up as the caller (under the resource's policies: a
// row one cannot read and one that does not exist get the same PT404),
// then asks the resource's own conditions on it (who may share it, what
// the caller holds) to answer with a clear error; the share table's
// policies check the same again on the write.

// subjectsWith says in words who a rule grants perm to, for a DETAIL.
func subjectsWith(m *lang.Model, r *lang.ResourceModel, perm lang.Perm, skipShared bool) string {
	var who []string
	for _, rule := range r.Rules {
		if !r.Can(rule.Subject, perm) || skipShared && rule.Subject == (lang.SharedSubject{}) {
			continue
		}
		var w string
		switch s := rule.Subject.(type) {
		case lang.OwnerSubject:
			w = "its owner"
		case lang.GroupSubject:
			w = fmt.Sprintf("the %ss of its group (and higher roles)", s.Role)
			if s.Role == lang.GroupOwner {
				w = "the owners of its group"
			}
		case lang.SharedSubject:
			w = "those it is shared with"
		default:
			w = rule.Subject.String() + " callers"
		}
		if !contains(who, w) {
			who = append(who, w)
		}
	}
	if m.Groups.AdminRole != "" {
		who = append(who, "callers with the realm role "+m.Groups.AdminRole)
	}
	switch len(who) {
	case 0:
		return "nobody"
	case 1:
		return who[0]
	}
	return strings.Join(who[:len(who)-1], ", ") + " and " + who[len(who)-1]
}

// fill replaces each {{name}} of text.
func fill(text string, values map[string]string) string {
	pairs := make([]string, 0, 2*len(values))
	for k, v := range values {
		pairs = append(pairs, "{{"+k+"}}", v)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// sqlText is s as the text of a SQL string literal's contents.
func sqlText(s string) string { return strings.ReplaceAll(s, "'", "''") }

// orFalse is coalesce(e, false), or false when nobody holds it.
func orFalse(e Expr) string {
	if e == nil {
		return "false"
	}
	return "coalesce(" + String(e) + ", false)"
}

func (s *shareBuild) api() {
	r, m := s.r, s.m
	api := m.Groups.APISchema
	shareFn, unshareFn, listFn := ShareAPINames(r)
	user := quoteIdent(m.Roles.Authenticated)
	key := quoteIdent(s.sh.Key)
	what := r.QualifiedName()
	prefix := fmt.Sprintf("%s%s of %s, %s:%d): ", ShareCommentPrefix, s.sh.Key, what, s.sh.Pos.Filename, s.sh.Pos.Line)

	// The texts the three functions share.
	v := map[string]string{
		"table":    s.table,
		"store":    s.store,
		"keyName":  sqlText(s.sh.Key),
		"what":     sqlText(what),
		"id":       string(s.m.Identity.Type),
		"caller":   String(userID(m.Identity)),
		"claim":    sqlText(m.Identity.Claim),
		"key":      key,
		"sharer":   orFalse(s.sharer()),
		"manager":  orFalse(s.manager()),
		"write":    orFalse(s.holds(lang.Write)),
		"delete":   orFalse(s.holds(lang.Delete)),
		"who":      sqlText(subjectsWith(m, r, lang.Share, false)),
		"managers": sqlText(subjectsWith(m, r, lang.Share, true)),
		"groups":   String(groupIDs(lang.Member)),
		"file":     sqlText(fmt.Sprintf("%s:%d", s.sh.Pos.Filename, s.sh.Pos.Line)),
		"lockKey":  quoteLiteral("iamc share " + what),
	}

	// Checks of the arguments, written for the function fn.
	checks := func(fn string, recipient bool) block {
		p := func(name string) string { return quoteIdent(fn) + "." + name }
		var b block
		b.addIf("f.caller is null", block{fill(`raise exception using errcode = '28000',
    message = 'sharing needs a user id',
    detail = 'The request carries no {{claim}} claim.',
    hint = 'Sign in: shares are made and managed by signed-in users.';`, v)}, nil)
		b.addIf(p(key)+" is null", block{fill(`raise exception using errcode = '22023',
    message = '{{keyName}} is required',
    detail = '{{keyName}} is null.',
    hint = 'Name the row by its {{keyName}}.';`, v)}, nil)
		if !recipient {
			return b
		}
		b.addIf(fmt.Sprintf("(%s is null) = (%s is null)", p("user_id"), p("group_id")), block{fmt.Sprintf(`raise exception using errcode = '22023',
    message = 'name one recipient: user_id or group_id',
    detail = case when %s is null then 'Neither is given.' else 'Both are given.' end,
    hint = 'A share is with one user or one group; call again for each.';`, p("user_id"))}, nil)
		var userCheck block
		if !s.sh.Users {
			userCheck = block{fill(`raise exception using errcode = '22023',
    message = 'rows of {{what}} are shared with groups, not users',
    detail = 'The share item of {{what}} says with groups ({{file}}).',
    hint = 'Pass group_id: a group you are in.';`, v)}
		} else if s.id == "uuid" {
			userCheck = block{fmt.Sprintf(`begin
    f.recipient := %s::uuid;
exception when invalid_text_representation then
    raise exception using errcode = '22023',
        message = pg_catalog.format('user_id %%s is not a uuid', pg_catalog.quote_literal(pg_catalog.left(%s, 100))),
        detail = 'User ids are uuids (the identity type of the .iam files).',
        hint = 'A user id is the %s claim of their token.';
end;`, p("user_id"), p("user_id"), sqlText(m.Identity.Claim))}
		} else {
			userCheck = block{fmt.Sprintf(`if pg_catalog.length(%s) not between 1 and 1000 then
    raise exception using errcode = '22023',
        message = 'user_id must be 1 to 1000 characters',
        detail = pg_catalog.format('It has %%s characters.', pg_catalog.length(%s)),
        hint = 'A user id is the %s claim of their token.';
end if;`, p("user_id"), p("user_id"), sqlText(m.Identity.Claim)), fmt.Sprintf("f.recipient := %s;", p("user_id"))}
		}
		b.addIf(p("user_id")+" is not null", userCheck, nil)
		if !s.sh.Groups {
			b.addIf(p("group_id")+" is not null", block{fill(`raise exception using errcode = '22023',
    message = 'rows of {{what}} are shared with users, not groups',
    detail = 'The share item of {{what}} says with users ({{file}}).',
    hint = 'Pass user_id: the user''s id.';`, v)}, nil)
		}
		return b
	}
	// The row, as the caller reads it; the same answer for a row that does
	// not exist.
	lookup := func(fn string, cols map[string]string, order []string) block {
		var sel, into []string
		for _, c := range order {
			sel, into = append(sel, cols[c]), append(into, "f."+c)
		}
		var b block
		b.add("select %s\ninto %s\nfrom %s t\nwhere t.%s = %s.%s;", strings.Join(sel, ",\n       "), strings.Join(into, ", "), s.table, key, quoteIdent(fn), key)
		b.addIf("not found", block{fill(fmt.Sprintf(`raise exception using errcode = 'PT404',
    message = pg_catalog.format('%s has no row with {{keyName}} %%s', %s.%s),
    detail = 'It does not exist, or you cannot read it: the answer is the same.',
    hint = 'A row shared with you can be read while its share lasts.';`, sqlText(what), quoteIdent(fn), key), v)}, nil)
		return b
	}
	recipientText := func(fn string) string {
		return fmt.Sprintf("coalesce('user ' || f.recipient::text, 'group ' || %s.group_id::text)", quoteIdent(fn))
	}
	function := func(fn, params, types, returns, volatility string, decls, body block, doc, why string) {
		name := qualify(api, fn)
		s.createIn(ObjectFunction, api, fn, "", why,
			"create or replace function %s(%s)\n    returns %s\n    language plpgsql %s security invoker\n    set search_path = pg_catalog, pg_temp\nas $fn$\n<<f>>\ndeclare\n%s\nbegin\n%s\nend\n$fn$;",
			name, params, returns, volatility, decls.text(1), body.text(1))
		sig := fmt.Sprintf("%s(%s)", name, types)
		s.add("", "comment on function %s is %s;", sig, quoteLiteral(prefix+doc))
		s.add("", "revoke all on function %s from public, %s, %s;", sig, user, quoteIdent(m.Roles.Anonymous))
		s.add("", "grant execute on function %s to %s;", sig, user)
	}
	recipientParams := "user_id text default null, group_id bigint default null"

	// share
	{
		fn := shareFn
		p := func(name string) string { return quoteIdent(fn) + "." + name }
		decls := block{fmt.Sprintf("caller %s := %s;", s.id, v["caller"]), fmt.Sprintf("recipient %s;", s.id),
			"can_write boolean := false;", "can_delete boolean := false;", "may_share boolean;", "holds_write boolean;", "holds_delete boolean;", "perm text;"}
		body := checks(fn, true)
		body.addIf("f.recipient = f.caller", block{`raise exception using errcode = '22023',
    message = 'you cannot share a row with yourself',
    detail = 'user_id is your own id.',
    hint = 'Name another user.';`}, nil)
		body.addIf(p("permissions")+" is null", block{`raise exception using errcode = '22023',
    message = 'permissions is required',
    detail = 'permissions is null.',
    hint = 'List what the share grants, e.g. ["read", "write"]; read is always granted.';`}, nil)
		body.add(`foreach f.perm in array %s loop
    case f.perm
        when 'read' then null;
        when 'write' then f.can_write := true;
        when 'delete' then f.can_delete := true;
        else
            raise exception using errcode = '22023',
                message = pg_catalog.format('unknown permission %%s', coalesce(pg_catalog.quote_literal(pg_catalog.left(f.perm, 100)), 'null')),
                detail = 'The permissions of a share are read, write and delete.',
                hint = 'A share grants read, write or delete (read always).';
    end case;
end loop;`, p("permissions"))
		var grantable []string
		for _, perm := range lang.SharePerms {
			if r.Can(lang.SharedSubject{}, perm) || perm == lang.Read {
				grantable = append(grantable, string(perm))
			}
		}
		for _, x := range []struct {
			perm lang.Perm
			flag string
		}{{lang.Write, "f.can_write"}, {lang.Delete, "f.can_delete"}} {
			if !r.Can(lang.SharedSubject{}, x.perm) {
				body.addIf(x.flag, block{fill(fmt.Sprintf(`raise exception using errcode = '22023',
    message = 'a share of {{what}} cannot grant %s',
    detail = 'The rules let a share of {{what}} grant %s ({{file}}).',
    hint = 'Share with fewer permissions.';`, x.perm, strings.Join(grantable, ", ")), v)}, nil)
			}
		}
		body = append(body, lookup(fn, map[string]string{"may_share": v["sharer"], "holds_write": v["write"], "holds_delete": v["delete"]},
			[]string{"may_share", "holds_write", "holds_delete"})...)
		body.addIf("not f.may_share", block{fill(fmt.Sprintf(`raise exception using errcode = '42501',
    message = pg_catalog.format('you cannot share the row of {{what}} with {{keyName}} %%s', %s),
    detail = 'Who may share a row of {{what}}: {{who}}.',
    hint = 'Ask someone who may share it.';`, p(key)), v)}, nil)
		for _, x := range []struct{ perm, flag, holds string }{{"write", "f.can_write", "f.holds_write"}, {"delete", "f.can_delete", "f.holds_delete"}} {
			if !r.Can(lang.SharedSubject{}, lang.Perm(x.perm)) {
				continue
			}
			body.addIf(fmt.Sprintf("%s and not %s", x.flag, x.holds), block{fill(fmt.Sprintf(`raise exception using errcode = '42501',
    message = pg_catalog.format('you cannot share %s on the row of {{what}} with {{keyName}} %%s: you cannot %s it', %s),
    detail = 'A share never grants more than its sharer holds.',
    hint = 'Share with the permissions you have.';`, x.perm, x.perm, p(key)), v)}, nil)
		}
		if s.sh.Groups {
			body.addIf(fmt.Sprintf("%s is not null and not coalesce(%s = any (%s), false)", p("group_id"), p("group_id"), v["groups"]), block{fmt.Sprintf(`raise exception using errcode = 'PT404',
    message = pg_catalog.format('you are not a member of group %%s', %s),
    detail = 'It does not exist, or you are not in it: the answer is the same.',
    hint = 'Share with a group you are in.';`, p("group_id"))}, nil)
		}
		body = append(body, fill(`-- One change to the shares of a row at a time: the checks below hold until commit.
perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended({{lockKey}}, `, v)+p(key)+"));")
		body.addIf(fmt.Sprintf("exists (select from %s s where s.row_id = %s and (s.user_id = f.recipient or s.group_id = %s))", s.store, p(key), p("group_id")),
			block{fmt.Sprintf(`raise exception using errcode = '23505',
    message = pg_catalog.format('the row of %s with %s %%s is already shared with %%s', %s, %s),
    detail = 'A row is shared with a user or a group once.',
    hint = 'To change what it grants, unshare it and share it again.';`, sqlText(what), sqlText(s.sh.Key), p(key), recipientText(fn))}, nil)
		body.add("-- max shares per row and per recipient: the share table's trigger (%s) refuses past them.", ShareQuotaTrigger)
		body.add("insert into %s (row_id, user_id, group_id, can_write, can_delete, shared_by)\nvalues (%s, f.recipient, %s, f.can_write, f.can_delete, f.caller);",
			s.store, p(key), p("group_id"))
		function(fn, fmt.Sprintf("%s bigint, %s, permissions text[] default '{read}'", key, recipientParams), "bigint, text, bigint, text[]", "void", "volatile", decls, body,
			fmt.Sprintf(`POST /rpc/%s {"%s", "user_id" or "group_id", "permissions"}: shares a row the caller may share with a user, or with a group the caller is in, granting read and what permissions lists (no more than the caller holds).`, fn, s.sh.Key),
			fmt.Sprintf("The share API of %s (%s): share, unshare, list. They run as the caller; the share table's policies check every write again.", what, strings.Join(s.apiNames(), ", ")))
	}

	// unshare
	{
		fn := unshareFn
		p := func(name string) string { return quoteIdent(fn) + "." + name }
		decls := block{fmt.Sprintf("caller %s := %s;", s.id, v["caller"]), fmt.Sprintf("recipient %s;", s.id), "may_manage boolean;", "may_share boolean;"}
		body := checks(fn, true)
		body = append(body, lookup(fn, map[string]string{"may_manage": v["manager"], "may_share": v["sharer"]}, []string{"may_manage", "may_share"})...)
		del := fmt.Sprintf("delete from %s s\nwhere s.row_id = %s and (s.user_id = f.recipient or s.group_id = %s)", s.store, p(key), p("group_id"))
		notShared := fmt.Sprintf(`raise exception using errcode = 'PT404',
    message = pg_catalog.format('the row of %s with %s %%s is not shared with %%s', %s, %s),
    detail = 'There is no such share to remove.',
    hint = 'GET /rpc/%s?%s=... lists its shares.';`, sqlText(what), sqlText(s.sh.Key), p(key), recipientText(fn), listFn, sqlText(s.sh.Key))
		manage := block{del + ";"}
		manage.addIf("not found", block{notShared}, nil)
		refuse := block{fill(fmt.Sprintf(`raise exception using errcode = '42501',
    message = pg_catalog.format('you cannot unshare the row of {{what}} with {{keyName}} %%s', %s),
    detail = 'Who may unshare it: {{managers}}; a user may remove a share made to them.',
    hint = 'Ask someone who manages it.';`, p(key)), v)}
		otherwise := refuse
		if r.Can(lang.SharedSubject{}, lang.Share) {
			own := block{del + "\n  and s.shared_by = f.caller;"}
			own.addIf("not found", block{fmt.Sprintf(`raise exception using errcode = 'PT404',
    message = pg_catalog.format('the row of %s with %s %%s has no share of yours with %%s', %s, %s),
    detail = 'There is no share you made with them: the answer is the same whoever else shared it.',
    hint = 'Those it is shared with unshare only the shares they made.';`, sqlText(what), sqlText(s.sh.Key), p(key), recipientText(fn))}, nil)
			otherwise = block{"if f.may_share then\n" + own.text(1) + "\nelse\n" + refuse.text(1) + "\nend if;"}
		}
		body.addIf("f.may_manage or f.recipient = f.caller", manage, otherwise)
		function(fn, fmt.Sprintf("%s bigint, %s", key, recipientParams), "bigint, text, bigint", "void", "volatile", decls, body,
			fmt.Sprintf(`POST /rpc/%s {"%s", "user_id" or "group_id"}: removes a share, at once (the next statement no longer sees it): those who manage the row remove any, a user a share made to them.`, fn, s.sh.Key), "")
	}

	// list
	{
		fn := listFn
		p := func(name string) string { return quoteIdent(fn) + "." + name }
		decls := block{fmt.Sprintf("caller %s := %s;", s.id, v["caller"]), "may_share boolean;"}
		body := checks(fn, false)
		body = append(body, lookup(fn, map[string]string{"may_share": v["sharer"]}, []string{"may_share"})...)
		body.addIf("not f.may_share", block{fill(fmt.Sprintf(`raise exception using errcode = '42501',
    message = pg_catalog.format('you cannot see the shares of the row of {{what}} with {{keyName}} %%s', %s),
    detail = 'Who sees the shares of a row of {{what}}: those who may share it ({{who}}).',
    hint = 'Ask someone who may share it.';`, p(key)), v)}, nil)
		body.add(`return query
select s.user_id::text, s.group_id,
       array['read'] || case when s.can_write then array['write'] else '{}'::text[] end
                     || case when s.can_delete then array['delete'] else '{}'::text[] end,
       s.shared_by::text, s.shared_at
from %s s
where s.row_id = %s
order by s.shared_at, s.user_id, s.group_id;`, s.store, p(key))
		function(fn, key+" bigint", "bigint", "table (user_id text, group_id bigint, permissions text[], shared_by text, shared_at timestamptz)", "stable", decls, body,
			fmt.Sprintf(`GET /rpc/%s?%s=: the shares of a row the caller may share (user_id or group_id, permissions, shared_by, shared_at), oldest first.`, fn, s.sh.Key), "")
	}
}
