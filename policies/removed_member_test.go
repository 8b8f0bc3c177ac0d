package policies_test

import (
	"slices"
	"testing"

	. "github.com/iamc/iamc/internal/exampletest"
)

// TestRemovedMemberOwnRows: an owner writes a row that is in a group only
// while a member of that group (SPEC §11, "Leaving a group"). Alice owns
// row 2, in team. While she is a member she edits it; once an admin removes
// her she still reads it (it is hers) and may delete it, but can neither
// edit it nor move it out: what the group sees is no longer hers to change.
// Her rows outside team are unaffected, and team's members keep the rights
// the rules give them over row 2.
func TestRemovedMemberOwnRows(t *testing.T) {
	db := GroupsDB(t)
	for _, tbl := range GroupTables {
		t.Run(tbl.Name, func(t *testing.T) {
			c := NewCrew(t, db).In(t)
			seed := c.Seed(tbl)
			want := slices.Clone(seed)
			write := func(who Person, sql string) int64 {
				t.Helper()
				n, err := c.Affected(who, tbl, "PATCH", sql)
				NoError(t, err)
				return n
			}

			// A member: she edits her row in team.
			if n := write(c.Alice, "update {table} set {text} = 'edited while a member' where id = 2"); n != 1 {
				t.Fatalf("alice, a member of team, edited %d of her rows in it, want 1", n)
			}
			want[1].Text = "edited while a member"
			c.WantRowsOf(t, tbl, want)

			NoError(t, RPC(t, db, c.Adam, "remove_group_member", "group_id", c.Team, "user_id", c.AliceID))

			got, err := c.IDs(c.Alice, tbl, "GET", "select id from {table} order by id")
			NoError(t, err)
			if !slices.Equal(got, []int64{1, 2}) {
				t.Errorf("alice, removed from team, sees rows %v, want her own 1 and 2", got)
			}
			if n := write(c.Alice, "update {table} set {text} = 'edited after removal' where id = 2"); n != 0 {
				t.Errorf("alice, removed from team, edited %d of her rows in it, want 0", n)
			}
			if !tbl.Required {
				if n := write(c.Alice, "update {table} set group_id = null where id = 2"); n != 0 {
					t.Errorf("alice, removed from team, took %d of her rows out of it, want 0", n)
				}
			}
			if n := write(c.Alice, "update {table} set {text} = 'her own, edited' where id = 1"); n != 1 {
				t.Errorf("alice edited %d of her rows outside team, want 1", n)
			}
			want[0].Text = "her own, edited"
			// team's members: on todos they write every row of team (group
			// member can write), hers too; on chats only the author writes.
			wantMia := int64(1)
			if tbl.Required {
				wantMia = 0
			}
			if n := write(c.Mia, "update {table} set {text} = 'edited by mia' where id = 2"); n != wantMia {
				t.Errorf("mia, a member of team, edited %d rows of alice's in it, want %d", n, wantMia)
			}
			if wantMia == 1 {
				want[1].Text = "edited by mia"
			}
			c.WantRowsOf(t, tbl, want)

			n, err := c.Affected(c.Alice, tbl, "DELETE", "delete from {table} where id = 2")
			NoError(t, err)
			if n != 1 {
				t.Errorf("alice, removed from team, deleted %d of her rows in it, want 1", n)
			}
			c.WantRowsOf(t, tbl, slices.Delete(want, 1, 2))
		})
	}
}
