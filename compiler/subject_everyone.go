package compiler

import "github.com/iamc/iamc/lang"

// everyone: `authenticated can read` and `anonymous can read`. Every row,
// to every caller of the audience; what anonymous callers may read,
// signed-in callers may too. Only read can be granted (lang says why).
type everyone struct{}

func everyoneKind(_ *lang.Model, r *lang.ResourceModel) subjectKind {
	if !r.EveryoneCan(lang.Read) {
		return nil
	}
	return everyone{}
}

func (everyone) arm(c *ruleContext, audience string, perm lang.Perm) Expr {
	if perm != lang.Read {
		return nil
	}
	if audience == audienceAnonymous && !c.r.Can(lang.AnonymousSubject{}, lang.Read) {
		return nil
	}
	return True
}

func (everyone) columns(*ruleContext) []ColumnNeed { return nil }

// page: every row is readable, so a page is one walk of the key.
func (everyone) page(*pageContext) *pageArm { return &pageArm{all: true} }

func (everyone) cites(*ruleContext, string, lang.Perm) []string { return nil }
