// Package novatest is an httptest Nova compute API with the os-services
// resource (microversion 2.53 shapes), for the tests of the actuators that
// call Nova.
package novatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ballast-cloud/ballast/actuators/nova"
)

// Failure is an answer the server gives instead of serving a request.
type Failure struct {
	Status     int
	RetryAfter string
	Body       string
}

// Server is a fake Nova: it checks the token and microversion of every
// request, and serves GET /os-services and PUT /os-services/{id}.
type Server struct {
	*httptest.Server
	Token string

	mu       sync.Mutex
	services map[string]*nova.Service
	failures []Failure
	requests []string
}

// New starts a server with an enabled nova-compute service per host; it is
// closed when the test ends.
func New(t testing.TB, token string, hosts ...string) *Server {
	s := &Server{Token: token, services: map[string]*nova.Service{}}
	for i, h := range hosts {
		s.services[h] = &nova.Service{ID: fmt.Sprintf("5c1b0a3e-0000-4000-8000-%012d", i), Host: h, Binary: "nova-compute", Status: "enabled", State: "up"}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// URL is the compute endpoint to configure.
func (s *Server) URL() string { return s.Server.URL + "/v2.1" }

// Fail queues answers given before the next requests are served.
func (s *Server) Fail(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f...)
}

// Status returns a host's service status and disabled reason.
func (s *Server) Status(host string) (status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[host]
	if svc == nil {
		return "", ""
	}
	if svc.DisabledReason != nil {
		reason = *svc.DisabledReason
	}
	return svc.Status, reason
}

// Requests lists "METHOD path" of every request received.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func fault(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{kind: map[string]any{"code": status, "message": msg}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("X-Auth-Token") != s.Token {
		fault(w, http.StatusUnauthorized, "unauthorized", "The request you have made requires authentication.")
		return
	}
	if !strings.HasPrefix(r.Header.Get("OpenStack-API-Version"), "compute 2.") {
		fault(w, http.StatusBadRequest, "badRequest", "missing microversion")
		return
	}
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v2.1")
	switch {
	case r.Method == http.MethodGet && path == "/os-services":
		var out []nova.Service
		for _, svc := range s.services {
			if (r.URL.Query().Get("host") == "" || svc.Host == r.URL.Query().Get("host")) &&
				(r.URL.Query().Get("binary") == "" || svc.Binary == r.URL.Query().Get("binary")) {
				out = append(out, *svc)
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"services": out})
	case r.Method == http.MethodPut && strings.HasPrefix(path, "/os-services/"):
		id := strings.TrimPrefix(path, "/os-services/")
		var body struct {
			Status         string  `json:"status"`
			DisabledReason *string `json:"disabled_reason"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || (body.Status != "enabled" && body.Status != "disabled") {
			fault(w, http.StatusBadRequest, "badRequest", "Invalid input for field/attribute status.")
			return
		}
		for _, svc := range s.services {
			if svc.ID == id {
				svc.Status, svc.DisabledReason = body.Status, body.DisabledReason
				if body.Status == "enabled" {
					svc.DisabledReason = nil
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"service": svc})
				return
			}
		}
		fault(w, http.StatusNotFound, "itemNotFound", "Service not found.")
	default:
		fault(w, http.StatusNotFound, "itemNotFound", "Not found.")
	}
}
