package rules

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// BuiltinRuleFile is the name the built-in rules are loaded under; it shows
// as the group's file in /api/v1/rules.
const BuiltinRuleFile = "builtin:ballast.rules.yml"

// runbookAnnotation is the annotation alerts link their runbook with.
const runbookAnnotation = "runbook_url"

// loader reads rule files in Prometheus's format, and the built-in rules,
// and gives every alerting rule without a runbook_url one made from the
// runbook pattern.
type loader struct {
	parser  parser.Parser
	logger  *slog.Logger
	builtin []byte

	// pages are the alert names (lower case) with a built-in runbook.
	pages map[string]bool

	mu      sync.Mutex
	runbook string // "%s" is the alert name
	// all: the pattern is the operator's, for every alert; otherwise it
	// links only alerts that have a built-in page (no dead links).
	all bool
}

func (l *loader) setRunbook(pattern string, all bool) {
	l.mu.Lock()
	l.runbook, l.all = pattern, all
	l.mu.Unlock()
}

// Load implements rules.GroupLoader.
func (l *loader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	var (
		rgs  *rulefmt.RuleGroups
		errs []error
	)
	if identifier == BuiltinRuleFile {
		rgs, errs = rulefmt.Parse(l.builtin, ignoreUnknownFields, scheme, l.parser, l.logger)
		for i := range errs {
			errs[i] = fmt.Errorf("%s: %w", identifier, errs[i])
		}
	} else {
		rgs, errs = rulefmt.ParseFile(identifier, ignoreUnknownFields, scheme, l.parser, l.logger)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	l.mu.Lock()
	pattern, all := l.runbook, l.all
	l.mu.Unlock()
	if pattern == "" {
		return rgs, nil
	}
	for gi := range rgs.Groups {
		for ri := range rgs.Groups[gi].Rules {
			r := &rgs.Groups[gi].Rules[ri]
			if r.Alert == "" {
				continue
			}
			if _, ok := r.Annotations[runbookAnnotation]; ok {
				continue
			}
			if !all && !l.pages[strings.ToLower(r.Alert)] {
				continue
			}
			if r.Annotations == nil {
				r.Annotations = map[string]string{}
			}
			r.Annotations[runbookAnnotation] = RunbookURL(pattern, r.Alert)
		}
	}
	return rgs, nil
}

// Parse implements rules.GroupLoader.
func (l *loader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

// RunbookURL fills pattern's "%s" with the alert name.
func RunbookURL(pattern, alert string) string {
	return strings.ReplaceAll(pattern, "%s", url.PathEscape(alert))
}
