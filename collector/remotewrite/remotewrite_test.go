package remotewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/prw"
	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
)

type fixture struct {
	srv     *httptest.Server
	st      *tsdb.Storage
	metrics *ingest.Metrics
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	st, err := tsdb.Open(tsdb.Config{Path: t.TempDir()}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	m := ingest.NewMetrics(nil)
	in, err := ingest.New(ingest.Options{}, st, m, nil)
	require.NoError(t, err)
	b := bus.NewInProc(bus.InProcOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = b.ConsumeSamples(ctx, "tsdb", in.Handle) }()
	t.Cleanup(cancel)
	require.Eventually(t, func() bool {
		return b.PublishSamples(ctx, &bus.SampleBatch{}) != bus.ErrNoConsumer
	}, 5*time.Second, time.Millisecond)
	r, err := New(opts, b, m, nil, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, st: st, metrics: m}
}

func (f *fixture) post(t *testing.T, body []byte, header map[string]string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]string
	if resp.StatusCode != http.StatusNoContent {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		require.Equal(t, "error", out["status"])
	}
	return resp.StatusCode, out
}

func (f *fixture) count(t *testing.T) float64 {
	t.Helper()
	l, err := datasource.NewLocal(f.st.Engine(), f.st.Queryable())
	require.NoError(t, err)
	v, _, err := l.Query(context.Background(), `count_over_time({__name__=~"m.*"}[1h])`, time.Now())
	require.NoError(t, err)
	n := 0.0
	for _, s := range v.(model.Vector) {
		n += float64(s.Value)
	}
	return n
}

func batch(ts int64, kv ...string) *bus.SampleBatch {
	return &bus.SampleBatch{Series: []bus.Series{{Labels: labels.FromStrings(kv...), Samples: []bus.Sample{{T: ts, V: 1}}}}}
}

func TestReceiver(t *testing.T) {
	f := newFixture(t, Options{MaxBodyBytes: 4096, MaxDecodedBytes: 8192})
	now := time.Now().UnixMilli()
	require.Equal(t, 0.0, testutil.ToFloat64(f.metrics.Received.WithLabelValues(Source)))
	code, _ := f.post(t, prw.EncodeSnappy(batch(now-1000, "__name__", "m1", "job", "a")), nil)
	require.Equal(t, http.StatusNoContent, code)
	require.Equal(t, 1.0, f.count(t))
	require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.Received.WithLabelValues(Source)), "counted under remote_write")
	require.Equal(t, 1, testutil.CollectAndCount(f.metrics.Received), "and under no other source")

	big := &bus.SampleBatch{}
	for i := 0; i < 400; i++ {
		big.Series = append(big.Series, bus.Series{Labels: labels.FromStrings("__name__", "m_big", "i", string(rune('a'+i%26))+string(rune('a'+i/26))), Samples: []bus.Sample{{T: now, V: 1}}})
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		header  map[string]string
		code    int
		errType string
		reason  string // counted in ballast_ingest_samples_rejected_total
	}{
		{name: "malformed protobuf", body: snappy.Encode(nil, []byte{0x0a, 0x05, 0x01}), code: 400, errType: "bad_data", reason: "malformed"},
		{name: "not snappy", body: []byte("plain text"), code: 400, errType: "bad_data", reason: "malformed"},
		{name: "wrong encoding", body: prw.EncodeSnappy(batch(now, "__name__", "m2")), header: map[string]string{"Content-Encoding": "gzip"}, code: 415, errType: "bad_data"},
		{name: "no encoding", body: prw.EncodeSnappy(batch(now, "__name__", "m2")), header: map[string]string{"Content-Encoding": ""}, code: 415, errType: "bad_data"},
		{name: "wrong content type", body: prw.EncodeSnappy(batch(now, "__name__", "m2")), header: map[string]string{"Content-Type": "application/json"}, code: 415, errType: "bad_data"},
		{name: "remote write 2.0", body: prw.EncodeSnappy(batch(now, "__name__", "m2")), header: map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, code: 415, errType: "bad_data"},
		{name: "body too large", body: bytes.Repeat([]byte{1}, 5000), code: 413, errType: "bad_data"},
		{name: "decoded too large", body: prw.EncodeSnappy(big), code: 400, errType: "bad_data", reason: "malformed"},
		{name: "missing metric name", body: prw.EncodeSnappy(batch(now, "job", "x")), code: 400, errType: "bad_data", reason: prw.ReasonMissingName},
		{name: "invalid utf8 label", body: prw.EncodeSnappy(batch(now, "__name__", "m3", "a", "\xff")), code: 400, errType: "bad_data", reason: prw.ReasonInvalidLabels},
		{name: "too old", body: prw.EncodeSnappy(batch(now-int64(24*time.Hour/time.Millisecond), "__name__", "m1", "job", "a")), code: 400, errType: "bad_data", reason: tsdb.ReasonTooOld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.count(t)
			var rejected float64
			if tc.reason != "" {
				src := Source
				if tc.reason == tsdb.ReasonTooOld {
					src = "tsdb"
				}
				rejected = testutil.ToFloat64(f.metrics.Rejected.WithLabelValues(src, tc.reason))
				defer func() {
					require.Greater(t, testutil.ToFloat64(f.metrics.Rejected.WithLabelValues(src, tc.reason)), rejected)
				}()
			}
			code, body := f.post(t, tc.body, tc.header)
			require.Equal(t, tc.code, code, "%v", body)
			require.Equal(t, tc.errType, body["errorType"])
			require.NotEmpty(t, body["error"])
			require.Equal(t, before, f.count(t), "a refused request stores nothing")
		})
	}

	t.Run("GET is refused", func(t *testing.T) {
		resp, err := http.Get(f.srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	})

	t.Run("partial: valid series stored, invalid reported", func(t *testing.T) {
		b := batch(now, "__name__", "m4")
		b.Series = append(b.Series, batch(now, "job", "no-name").Series...)
		before := f.count(t)
		code, body := f.post(t, prw.EncodeSnappy(b), nil)
		require.Equal(t, 400, code)
		require.Contains(t, body["error"], "without a metric name")
		require.Equal(t, before+1, f.count(t))
	})
}

func TestReceiverUnavailable(t *testing.T) {
	b := bus.NewInProc(bus.InProcOptions{}) // nothing consumes: storage is not there
	r, err := New(Options{}, b, nil, nil, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(r)
	defer srv.Close()
	f := &fixture{srv: srv}
	code, body := f.post(t, prw.EncodeSnappy(batch(time.Now().UnixMilli(), "__name__", "m")), nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "senders must retry")
	require.Equal(t, "unavailable", body["errorType"])
}
