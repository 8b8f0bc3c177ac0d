package policies_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/iamc/iamc/explain"
)

// TestExplainText: the text a reader gets for mia (a plain member of team)
// on alice's todo in team names, for delete, both rules and why each does
// not apply; the JSON form carries the same answers.
func TestExplainText(t *testing.T) {
	db := groupsDB(t)
	c := newCrew(t, db)
	m, r := explainModel(t, "app.todos")
	c.seed(todos)
	rep, err := explain.Ask(t.Context(), db.su, m, explain.Question{Resource: r, Caller: callerOf(c.mia), Row: "2"})
	noError(t, err)
	var text strings.Builder
	noError(t, explain.WriteText(&text, rep))
	team := c.expand(todos, "{team}")
	for _, want := range []string{
		"app.todos as " + c.miaID + " (role web_user)\n",
		"row id=2: owner " + c.aliceID + ", group " + team + " (your role: member), visible to you\n",
		"select             allowed  group member can read, create, write (todos.iam:10:3): your role in group " + team + " is member",
		"delete             denied   not the owner (the row is owned by " + c.aliceID + "); your role in group " + team + " is member; delete takes admin\n",
		"group admin  no  your role in group " + team + " is member; delete takes admin",
		"group admin can delete at todos.iam:11:3",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text lacks %q:\n%s", want, text.String())
		}
	}
	var js strings.Builder
	noError(t, explain.WriteJSON(&js, rep))
	var back explain.Report
	noError(t, json.Unmarshal([]byte(js.String()), &back))
	if len(back.Answers) != len(rep.Answers) || back.Row == nil || back.Row.Key != "id=2" || back.Caller.ID != c.miaID {
		t.Errorf("the JSON does not carry the report:\n%s", js.String())
	}
}
