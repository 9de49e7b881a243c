package scrape

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Handler serves g on /metrics. Requests for the text format (what
// Prometheus negotiates with an exporter that does not offer OpenMetrics)
// are encoded by writeText and compressed with gzip at its fastest level;
// the rest (protobuf, name[] filters, options it does not implement) go to
// promhttp.HandlerFor(g, opts). At 40 000 series expfmt's text encoder and
// gzip's default level took four times as long as gathering did.
//
// opts' ErrorLog, ErrorHandling (ContinueOnError and HTTPErrorOnError) and
// MaxRequestsInFlight apply to both paths.
func Handler(g prometheus.Gatherer, opts promhttp.HandlerOpts) http.Handler {
	full := promhttp.HandlerFor(g, opts)
	own := opts.ErrorHandling != promhttp.PanicOnError && !opts.EnableOpenMetrics && len(opts.AcceptedFormats) == 0 &&
		opts.Timeout <= 0 && opts.Registry == nil && opts.ProcessStartTime.IsZero()
	var inFlight chan struct{}
	if opts.MaxRequestsInFlight > 0 {
		inFlight = make(chan struct{}, opts.MaxRequestsInFlight)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
		if !own || format.FormatType() != expfmt.TypeTextPlain || (r.URL != nil && r.URL.Query().Has("name[]")) {
			full.ServeHTTP(w, r)
			return
		}
		if inFlight != nil {
			select {
			case inFlight <- struct{}{}:
				defer func() { <-inFlight }()
			default:
				http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", opts.MaxRequestsInFlight),
					http.StatusServiceUnavailable)
				return
			}
		}
		mfs, err := g.Gather()
		if err != nil {
			if opts.ErrorLog != nil {
				opts.ErrorLog.Println("error gathering metrics:", err)
			}
			if len(mfs) == 0 || opts.ErrorHandling == promhttp.HTTPErrorOnError {
				http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		h := w.Header()
		h.Add("Vary", "Accept")
		h.Add("Vary", "Accept-Encoding")
		h.Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			gz := gzipPool.Get().(*gzip.Writer)
			gz.Reset(w)
			defer func() {
				_ = gz.Close()
				gzipPool.Put(gz)
			}()
			out = gz
		}
		if err := writeText(out, mfs, format); err != nil && opts.ErrorLog != nil {
			opts.ErrorLog.Println("error encoding and sending metric family:", err)
		}
	})
}

var (
	gzipPool = sync.Pool{New: func() any {
		gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return gz
	}}
)

// acceptsGzip reads an Accept-Encoding header: gzip with a non-zero
// quality, or, when gzip is not named, * with one.
func acceptsGzip(header string) bool {
	gzipQ, starQ := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if k, v, ok := strings.Cut(p, "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip":
			gzipQ = q
		case "*":
			starQ = q
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
