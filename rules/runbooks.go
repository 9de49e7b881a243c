package rules

import (
	"encoding/json"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

// RunbookHandler serves the runbook pages of fsys (one <AlertName>.md per
// alert) at /runbooks/<AlertName>, matching the name in any case (the
// runbook_url the built-in rules get), and an index at /runbooks/. Pages
// are served as Markdown text.
func RunbookHandler(fsys fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSONError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		names := runbookNames(fsys)
		name := strings.TrimSuffix(strings.Trim(strings.TrimPrefix(r.URL.Path, "/runbooks"), "/"), ".md")
		if name == "" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			var b strings.Builder
			b.WriteString("<!doctype html><title>Ballast runbooks</title><h1>Runbooks</h1><ul>\n")
			for _, n := range names {
				fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a></li>\n", html.EscapeString(path.Join("/runbooks", n)), html.EscapeString(n))
			}
			b.WriteString("</ul>\n")
			_, _ = w.Write([]byte(b.String()))
			return
		}
		i := slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, name) })
		if i < 0 {
			writeJSONError(w, http.StatusNotFound, fmt.Sprintf("no runbook for alert %q", name))
			return
		}
		page, err := fs.ReadFile(fsys, names[i]+".md")
		if err != nil {
			writeJSONError(w, http.StatusInternalServerError, "cannot read runbook")
			return
		}
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write(page)
	})
}

// runbookNames lists the alert names that have a page (README.md is the
// index, not a runbook).
func runbookNames(fsys fs.FS) []string {
	ents, _ := fs.ReadDir(fsys, ".")
	var out []string
	for _, e := range ents {
		n, ok := strings.CutSuffix(e.Name(), ".md")
		if !ok || e.IsDir() || strings.EqualFold(n, "README") {
			continue
		}
		out = append(out, n)
	}
	return out
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": msg})
}
