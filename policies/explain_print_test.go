package policies_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/iamc/iamc/explain"
	. "github.com/iamc/iamc/internal/exampletest"
)

// TestExplainText: the text a reader gets for mia (a plain member of team)
// on alice's todo in team names, for delete, both rules and why each does
// not apply; the JSON form carries the same answers.
func TestExplainText(t *testing.T) {
	db := GroupsDB(t)
	c := NewCrew(t, db)
	m, r := explainModel(t, "app.todos")
	c.Seed(Todos)
	rep, err := explain.Ask(t.Context(), db.SU, m, explain.Question{Resource: r, Caller: callerOf(c.Mia), Row: "2"})
	NoError(t, err)
	var text strings.Builder
	NoError(t, explain.WriteText(&text, rep))
	team := c.Expand(Todos, "{team}")
	for _, want := range []string{
		"app.todos as " + c.MiaID + " (role web_user)\n",
		"row id=2: owner " + c.AliceID + ", group " + team + " (your role: member), visible to you\n",
		"select             allowed  group member can read, create, write (todos.iam:10:3): your role in group " + team + " is member",
		"delete             denied   not the owner (the row is owned by " + c.AliceID + "); your role in group " + team + " is member; delete takes admin; no share of the row with you (or a group of yours) grants delete\n",
		"shared       no  no share of the row with you (or a group of yours) grants delete",
		"group admin  no  your role in group " + team + " is member; delete takes admin",
		"group admin can delete at todos.iam:11:3",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text lacks %q:\n%s", want, text.String())
		}
	}
	var js strings.Builder
	NoError(t, explain.WriteJSON(&js, rep))
	var back explain.Report
	NoError(t, json.Unmarshal([]byte(js.String()), &back))
	if len(back.Answers) != len(rep.Answers) || back.Row == nil || back.Row.Key != "id=2" || back.Caller.ID != c.MiaID {
		t.Errorf("the JSON does not carry the report:\n%s", js.String())
	}
}
