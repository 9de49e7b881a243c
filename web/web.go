// Package web owns Ballast's HTTP surface: one router serving the Prometheus
// HTTP API, the remote_write receiver, Ballast's own /metrics, health and
// readiness, the Watcher-compatible /v1 API and the UI. It composes handlers
// built elsewhere and adds nothing to their semantics.
package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are the handlers the router mounts. PromAPI and Gatherer are
// required; the rest are mounted when set.
type Options struct {
	PromAPI     http.Handler // at /api/v1
	RemoteWrite http.Handler // at /api/v1/write (an ingester has none)
	Gatherer    prometheus.Gatherer
	// Ready reports whether the server accepts data requests (/-/ready).
	Ready func() bool
	// Exporter serves the in-process host collectors at /exporter/metrics.
	Exporter http.Handler
	// Watcher serves the Watcher-compatible API at /v1 (and / for its
	// version document).
	Watcher http.Handler
	// UI serves the web UI at /ui/.
	UI http.Handler
	// Runbooks serves the alerts' runbooks at /runbooks/.
	Runbooks http.Handler
}

// New returns the root handler.
func New(opts Options, logger *slog.Logger) (http.Handler, error) {
	if opts.PromAPI == nil || opts.Gatherer == nil {
		return nil, errors.New("web: PromAPI and Gatherer are required")
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/-/healthy", healthy)
	r.Head("/-/healthy", healthy)
	r.Get("/-/ready", readyHandler(opts.Ready))
	r.Head("/-/ready", readyHandler(opts.Ready))
	r.Handle("/metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(logger.With("component", "web").Handler(), slog.LevelError),
		EnableOpenMetrics: true,
	}))
	if opts.RemoteWrite != nil {
		r.Handle("/api/v1/write", opts.RemoteWrite)
	}
	r.Mount("/api/v1", http.StripPrefix("/api/v1", opts.PromAPI))
	if opts.Exporter != nil {
		r.Handle("/exporter/metrics", opts.Exporter)
	}
	if opts.UI != nil {
		r.Mount("/ui", opts.UI)
		// Prometheus's expression links (alerts' generatorURL:
		// /graph?g0.expr=…) open the UI's PromQL console.
		r.Get("/graph", func(w http.ResponseWriter, r *http.Request) {
			target := "/ui/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusFound)
		})
	}
	if opts.Runbooks != nil {
		r.Handle("/runbooks", opts.Runbooks)
		r.Handle("/runbooks/*", opts.Runbooks)
	}
	if opts.Watcher != nil {
		r.Mount("/", opts.Watcher)
	} else {
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/ui/", http.StatusFound)
		})
	}
	return r, nil
}

func healthy(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("Ballast is Healthy.\n"))
}

func readyHandler(ready func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("Service Unavailable\n"))
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("Ballast is Ready.\n"))
	}
}

// Starting is the handler served while storage opens: healthy, not ready, and
// a Prometheus-style 503 for everything else.
func Starting() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/-/healthy", healthy)
	mux.HandleFunc("/-/ready", readyHandler(func() bool { return false }))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "unavailable", "error": "Ballast is starting: storage is replaying its write-ahead log"})
	})
	return mux
}
