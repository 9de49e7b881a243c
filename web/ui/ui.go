// Package ui serves Ballast's web UI: a single page that shows the server's
// health, scrape targets, a PromQL console and, when a token is given, the
// Watcher-compatible audits and action plans. It is static files embedded in
// the binary that call the same HTTP APIs as every other client; it holds no
// logic of its own.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the UI; mount it at /ui. /ui itself redirects to /ui/
// (query kept), so the page's relative links resolve under /ui/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" {
			to := "/ui/"
			if r.URL.RawQuery != "" {
				to += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, to, http.StatusMovedPermanently)
			return
		}
		files.ServeHTTP(w, r)
	})
}
