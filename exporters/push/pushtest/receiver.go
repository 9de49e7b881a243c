// Package pushtest is a remote_write 1.0 receiver for tests and benchmarks:
// it decodes real requests (snappy, prompb.WriteRequest), records every
// sample, and can be stopped and restarted on the same address to play a
// receiving server's restart.
package pushtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// Receiver records what remote_write clients send.
type Receiver struct {
	addr string

	mu      sync.Mutex
	srv     *http.Server
	samples map[string]map[int64]float64 // series -> timestamp -> value
	total   int                          // samples received, duplicates included
	auth    []string                     // Authorization headers seen
}

// Start listens on a free loopback port.
func Start() (*Receiver, error) {
	r := &Receiver{samples: map[string]map[int64]float64{}}
	if err := r.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Receiver) listen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("receiver listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	r.mu.Lock()
	r.addr, r.srv = l.Addr().String(), srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	return nil
}

// URL is the remote_write endpoint.
func (r *Receiver) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "http://" + r.addr + "/api/v1/write"
}

// Stop closes the listener and every connection, as a dying server does.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart listens again on the same address.
func (r *Receiver) Restart() error {
	r.mu.Lock()
	addr := r.addr
	r.mu.Unlock()
	return r.listen(addr)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	compressed, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, err := snappy.Decode(nil, compressed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var wr prompb.WriteRequest
	if err := wr.Unmarshal(raw); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := req.Header.Get("Authorization"); a != "" {
		r.auth = append(r.auth, a)
	}
	for _, ts := range wr.Timeseries {
		key := seriesKey(ts.Labels)
		m := r.samples[key]
		if m == nil {
			m = map[int64]float64{}
			r.samples[key] = m
		}
		for _, s := range ts.Samples {
			m[s.Timestamp] = s.Value
			r.total++
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func seriesKey(ls []prompb.Label) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.Name+"="+l.Value)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// Distinct returns how many distinct (series, timestamp) samples arrived.
func (r *Receiver) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.samples {
		n += len(m)
	}
	return n
}

// Total returns every sample received, resent duplicates included.
func (r *Receiver) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Has reports whether the series with these labels (name=value, sorted or
// not) has a sample at t.
func (r *Receiver) Has(series []string, t int64) bool {
	s := append([]string(nil), series...)
	sort.Strings(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.samples[strings.Join(s, ",")][t]
	return ok
}

// Authorization returns the Authorization headers received.
func (r *Receiver) Authorization() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}
