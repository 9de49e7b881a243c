package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/web/ui"
)

// TestUIRoutes: /ui redirects to /ui/ and the page's assets are served under
// /ui/, not by the Watcher API mounted at / (which wants a token).
func TestUIRoutes(t *testing.T) {
	watcher := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error_message": "requires authentication"}`, http.StatusUnauthorized)
	})
	h, err := New(Options{
		PromAPI:  http.NotFoundHandler(),
		Gatherer: prometheus.NewRegistry(),
		UI:       ui.Handler(),
		Watcher:  watcher,
	}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path     string
		code     int
		location string
	}{
		{path: "/ui", code: http.StatusMovedPermanently, location: "/ui/"},
		{path: "/ui?x=1", code: http.StatusMovedPermanently, location: "/ui/?x=1"},
		{path: "/ui/", code: http.StatusOK},
		{path: "/ui/style.css", code: http.StatusOK},
		{path: "/ui/app.js", code: http.StatusOK},
		{path: "/style.css", code: http.StatusUnauthorized},
		{path: "/graph?g0.expr=up+%3D%3D+0&g0.tab=1", code: http.StatusFound, location: "/ui/?g0.expr=up+%3D%3D+0&g0.tab=1"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := client.Get(srv.URL + tc.path)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, tc.code, resp.StatusCode)
			require.Equal(t, tc.location, resp.Header.Get("Location"))
		})
	}
}
