// Package remotewrite owns Ballast's Prometheus remote-write 1.0 receiver
// (POST /api/v1/write): it checks the request, decodes it with collector/prw
// and publishes the batch on the bus, answering as Prometheus does — 204 when
// stored, 400 for data that can never be stored (so senders drop it), 413/415
// for bodies it will not read, and 503 when storage is unavailable (so
// senders retry).
package remotewrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// Options configures the receiver. Zero values get defaults.
type Options struct {
	// MaxBodyBytes caps the compressed body (default 32 MiB); larger gets 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxDecodedBytes caps the decompressed body (default 128 MiB); larger gets 400.
	MaxDecodedBytes int `yaml:"max_decoded_bytes"`
	// Limits bound labels per series and label lengths.
	Limits prw.Limits `yaml:"-"`
}

// Source is the ingest source label of this path.
const Source = "remote_write"

// Receiver is the remote-write HTTP handler.
type Receiver struct {
	opts    Options
	pub     bus.SamplePublisher
	dec     *prw.Decoder
	metrics *ingest.Metrics
	reqs    *prometheus.CounterVec
	dur     prometheus.Histogram
	logger  *slog.Logger
	batches sync.Pool
	bodies  sync.Pool
}

// New returns a receiver publishing to pub. reg may be nil.
func New(opts Options, pub bus.SamplePublisher, metrics *ingest.Metrics, reg prometheus.Registerer, logger *slog.Logger) (*Receiver, error) {
	if pub == nil {
		return nil, errors.New("remotewrite: nil publisher")
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 32 << 20
	}
	if opts.MaxDecodedBytes == 0 {
		opts.MaxDecodedBytes = 128 << 20
	}
	if opts.MaxBodyBytes < 0 || opts.MaxDecodedBytes < 0 {
		return nil, errors.New("remote_write: max_body_bytes and max_decoded_bytes must be positive")
	}
	if metrics == nil {
		metrics = ingest.NewMetrics(nil)
	}
	metrics.Received.WithLabelValues(Source) // exported as 0 until the first request
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{
		opts:    opts,
		pub:     pub,
		dec:     prw.NewDecoder(opts.Limits),
		metrics: metrics,
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ballast_remote_write_requests_total",
			Help: "Remote-write requests received, by HTTP status code.",
		}, []string{"code"}),
		dur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                        "ballast_remote_write_request_duration_seconds",
			Help:                        "Time to read, decode and store one remote-write request.",
			Buckets:                     prometheus.ExponentialBuckets(0.0005, 4, 8),
			NativeHistogramBucketFactor: 1.1,
		}),
		logger: logger.With("component", "remote_write"),
	}
	if reg != nil {
		reg.MustRegister(r.reqs, r.dur)
	}
	return r, nil
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	code, msg := r.serve(req)
	r.reqs.WithLabelValues(fmt.Sprint(code)).Inc()
	r.dur.Observe(time.Since(start).Seconds())
	if code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	if code >= 500 {
		r.logger.Warn("Remote-write request not stored", "code", code, "err", msg)
	} else {
		r.logger.Debug("Remote-write request refused", "code", code, "err", msg)
	}
	writeError(w, code, msg)
}

func (r *Receiver) serve(req *http.Request) (int, string) {
	if req.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, "remote write requires POST"
	}
	if enc := req.Header.Get("Content-Encoding"); !strings.EqualFold(enc, "snappy") {
		return http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported: remote write 1.0 bodies are snappy-compressed", enc)
	}
	if ct := req.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/x-protobuf" {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not supported: want application/x-protobuf", ct)
		}
		if p, ok := params["proto"]; ok && p != "prometheus.WriteRequest" {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("protobuf message %q is not supported: this receiver speaks remote write 1.0 (prometheus.WriteRequest)", p)
		}
	}
	body, code, msg := r.readBody(req)
	if code != 0 {
		return code, msg
	}
	defer r.bodies.Put(body)

	b, _ := r.batches.Get().(*bus.SampleBatch)
	if b == nil {
		b = &bus.SampleBatch{}
	}
	defer func() {
		b.Series = b.Series[:0]
		r.batches.Put(b)
	}()
	var rej prw.Rejection
	if err := r.dec.DecodeSnappy(*body, r.opts.MaxDecodedBytes, b, &rej); err != nil {
		r.metrics.Rejected.WithLabelValues(Source, "malformed").Inc()
		return http.StatusBadRequest, err.Error()
	}
	received := b.Len()
	for reason, n := range rej.Samples {
		r.metrics.Rejected.WithLabelValues(Source, reason).Add(float64(n))
		received += n
	}
	r.metrics.Received.WithLabelValues(Source).Add(float64(received))

	if len(b.Series) > 0 {
		err := r.pub.PublishSamples(req.Context(), b)
		var re *ingest.RejectedError
		switch {
		case err == nil:
		case errors.As(err, &re):
			return http.StatusBadRequest, re.Error()
		case errors.Is(err, context.Canceled):
			return 499, "client closed the request"
		default:
			return http.StatusServiceUnavailable, "storage unavailable: " + err.Error()
		}
	}
	if !rej.Empty() {
		n := 0
		for _, c := range rej.Samples {
			n += c
		}
		return http.StatusBadRequest, fmt.Sprintf("%d samples in %d series rejected; first: %s", n, len(rej.Series), rej.Example)
	}
	return http.StatusNoContent, ""
}

// readBody reads the request body into a pooled buffer, refusing bodies over
// the limit without reading them whole.
func (r *Receiver) readBody(req *http.Request) (*[]byte, int, string) {
	if req.ContentLength > r.opts.MaxBodyBytes {
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes exceeds the limit of %d", req.ContentLength, r.opts.MaxBodyBytes)
	}
	bp, _ := r.bodies.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	if req.ContentLength > 0 && int64(cap(buf)) < req.ContentLength {
		buf = make([]byte, 0, req.ContentLength)
	}
	lr := io.LimitReader(req.Body, r.opts.MaxBodyBytes+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = buf
			r.bodies.Put(bp)
			return nil, http.StatusBadRequest, "read body: " + err.Error()
		}
	}
	*bp = buf
	if int64(len(buf)) > r.opts.MaxBodyBytes {
		r.bodies.Put(bp)
		return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the limit of %d bytes", r.opts.MaxBodyBytes)
	}
	return bp, 0, ""
}

// writeError answers with the Prometheus API error envelope.
func writeError(w http.ResponseWriter, code int, msg string) {
	typ := "bad_data"
	switch {
	case code >= 500:
		typ = "unavailable"
	case code == 499:
		typ = "canceled"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}{"error", typ, msg})
}
