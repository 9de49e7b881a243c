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

// Handler serves the UI; mount it at /ui.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.StripPrefix("/ui", http.FileServerFS(sub))
}
