package prw

import (
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
)

func reference(t testing.TB, ts ...prompb.TimeSeries) []byte {
	t.Helper()
	b, err := proto.Marshal(&prompb.WriteRequest{Timeseries: ts})
	require.NoError(t, err)
	return b
}

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []prompb.TimeSeries
		want     []bus.Series
		rejected map[string]int
	}{
		{
			name: "two series",
			in: []prompb.TimeSeries{
				{Labels: lbls("__name__", "up", "job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 0, Timestamp: 2000}}},
				{Labels: lbls("__name__", "x", "i", "1"), Samples: []prompb.Sample{{Value: math.Inf(1), Timestamp: 5}}},
			},
			want: []bus.Series{
				{Labels: labels.FromStrings("__name__", "up", "job", "a"), Samples: []bus.Sample{{T: 1000, V: 1}, {T: 2000, V: 0}}},
				{Labels: labels.FromStrings("__name__", "x", "i", "1"), Samples: []bus.Sample{{T: 5, V: math.Inf(1)}}},
			},
		},
		{
			name: "unsorted labels are sorted, empty values dropped",
			in:   []prompb.TimeSeries{{Labels: lbls("zone", "b", "__name__", "m", "empty", ""), Samples: []prompb.Sample{{Value: 2, Timestamp: 1}}}},
			want: []bus.Series{{Labels: labels.FromStrings("__name__", "m", "zone", "b"), Samples: []bus.Sample{{T: 1, V: 2}}}},
		},
		{
			name:     "missing metric name",
			in:       []prompb.TimeSeries{{Labels: lbls("job", "a"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}, {Value: 1, Timestamp: 2}}}},
			rejected: map[string]int{ReasonMissingName: 2},
		},
		{
			name:     "duplicate label",
			in:       []prompb.TimeSeries{{Labels: lbls("__name__", "m", "a", "1", "a", "2"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}},
			rejected: map[string]int{ReasonDuplicateLabel: 1},
		},
		{
			name:     "invalid utf8",
			in:       []prompb.TimeSeries{{Labels: lbls("__name__", "m", "a", "\xff"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}},
			rejected: map[string]int{ReasonInvalidLabels: 1},
		},
		{
			name: "native histogram rejected, floats kept",
			in: []prompb.TimeSeries{
				{Labels: lbls("__name__", "h"), Histograms: []prompb.Histogram{{Timestamp: 1, Count: &prompb.Histogram_CountInt{CountInt: 3}}}},
				{Labels: lbls("__name__", "f"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
			},
			want:     []bus.Series{{Labels: labels.FromStrings("__name__", "f"), Samples: []bus.Sample{{T: 1, V: 1}}}},
			rejected: map[string]int{ReasonNativeHistogram: 1},
		},
		{
			name: "series without samples ignored",
			in:   []prompb.TimeSeries{{Labels: lbls("__name__", "m")}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(Limits{})
			for pass := 0; pass < 2; pass++ { // the second pass hits the label cache
				var b bus.SampleBatch
				var rej Rejection
				require.NoError(t, d.Decode(reference(t, tc.in...), &b, &rej))
				require.Len(t, b.Series, len(tc.want))
				for i := range tc.want {
					require.Equal(t, tc.want[i].Labels.String(), b.Series[i].Labels.String())
					require.Equal(t, tc.want[i].Labels.Hash(), b.Series[i].Hash)
					require.Equal(t, tc.want[i].Samples, b.Series[i].Samples)
				}
				if tc.rejected == nil {
					require.True(t, rej.Empty())
				} else {
					require.Equal(t, tc.rejected, rej.Samples)
				}
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := reference(t, prompb.TimeSeries{Labels: lbls("__name__", "m"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	for name, in := range map[string][]byte{
		"truncated":       good[:len(good)-3],
		"bad length":      {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"field zero":      {0x00, 0x01},
		"bad wire type":   {0x0f},
		"truncated fixed": {0x0a, 0x03, 0x12, 0x01, 0x09},
	} {
		t.Run(name, func(t *testing.T) {
			b := bus.SampleBatch{Series: []bus.Series{{Labels: labels.FromStrings("__name__", "keep")}}}
			err := NewDecoder(Limits{}).Decode(in, &b, &Rejection{})
			require.ErrorIs(t, err, ErrMalformed)
			require.Len(t, b.Series, 1, "a failed decode leaves the batch as it was")
		})
	}
}

func TestDecodeSnappyLimits(t *testing.T) {
	raw := reference(t, prompb.TimeSeries{Labels: lbls("__name__", "m"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	d := NewDecoder(Limits{})
	var b bus.SampleBatch
	require.NoError(t, d.DecodeSnappy(snappy.Encode(nil, raw), 0, &b, &Rejection{}))
	require.Len(t, b.Series, 1)
	require.ErrorIs(t, d.DecodeSnappy(snappy.Encode(nil, raw), len(raw)-1, &b, &Rejection{}), ErrTooLarge)
	require.ErrorIs(t, d.DecodeSnappy([]byte("not snappy at all"), 0, &b, &Rejection{}), ErrMalformed)
}

func TestEncodeRoundTrip(t *testing.T) {
	in := &bus.SampleBatch{Series: []bus.Series{
		{Labels: labels.FromStrings("__name__", "a", "x", "1"), Samples: []bus.Sample{{T: 0, V: 0}, {T: 1700000000000, V: -3.5}}},
		{Labels: labels.FromStrings("__name__", "b"), Samples: []bus.Sample{{T: -5, V: math.NaN()}}},
	}}
	raw := AppendWriteRequest(nil, in)
	require.Equal(t, TimeSeriesSize(&in.Series[0])+TimeSeriesSize(&in.Series[1]), len(raw))

	var ref prompb.WriteRequest
	require.NoError(t, proto.Unmarshal(raw, &ref))
	require.Len(t, ref.Timeseries, 2)
	require.Equal(t, int64(-5), ref.Timeseries[1].Samples[0].Timestamp)

	var out bus.SampleBatch
	require.NoError(t, NewDecoder(Limits{}).DecodeSnappy(EncodeSnappy(in), 0, &out, &Rejection{}))
	require.Len(t, out.Series, 2)
	require.Equal(t, in.Series[0].Samples, out.Series[0].Samples)
	require.True(t, math.IsNaN(out.Series[1].Samples[0].V))
}

// TestEncodeMatchesReference checks the encoder byte for byte against
// prompb's for series whose length takes one, two and three varint bytes
// (the encoder reserves two and moves the body for the other widths).
func TestEncodeMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   string // length of one label value sets the series size
		samples int
	}{
		{"under 128 bytes", "v", 1},
		{"two-byte length", strings.Repeat("v", 200), 3},
		{"at 16383", strings.Repeat("v", 16383-33), 0},
		{"three-byte length", strings.Repeat("v", 20000), 40},
		{"length guessed one byte short", strings.Repeat("v", 110), 0},
		{"length guessed one byte long", "v", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := bus.Series{Labels: labels.FromStrings("__name__", "m", "big", tc.value)}
			ref := prompb.TimeSeries{Labels: lbls("__name__", "m", "big", tc.value)}
			for i := range tc.samples {
				s.Samples = append(s.Samples, bus.Sample{T: int64(i+1) * 15000, V: float64(i+1) / 3})
				ref.Samples = append(ref.Samples, prompb.Sample{Timestamp: int64(i+1) * 15000, Value: float64(i+1) / 3})
			}
			want := reference(t, ref)
			got := AppendTimeSeries([]byte("prefix"), &s)
			require.Equal(t, want, got[len("prefix"):])
			require.Equal(t, len(want), TimeSeriesSize(&s))
		})
	}
}

// TestDecoderMemo checks that a decoded series carries its label-cache entry's
// memo from the first batch on, and the same memo in later batches.
func TestDecoderMemo(t *testing.T) {
	raw := reference(t, prompb.TimeSeries{Labels: lbls("__name__", "m", "a", "b"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	d := NewDecoder(Limits{})
	var b1, b2 bus.SampleBatch
	require.NoError(t, d.Decode(raw, &b1, &Rejection{}))
	require.NoError(t, d.Decode(raw, &b2, &Rejection{}))
	require.NotNil(t, b1.Series[0].Memo)
	require.Same(t, b1.Series[0].Memo, b2.Series[0].Memo)

	owner := new(int)
	b1.Series[0].Memo.Store(owner, b1.Series[0].Labels, 42)
	v, ok := b2.Series[0].Memo.Load(owner, b2.Series[0].Labels)
	require.True(t, ok)
	require.Equal(t, uint64(42), v)
	_, ok = b2.Series[0].Memo.Load(new(int), b2.Series[0].Labels)
	require.False(t, ok, "another consumer's value")
	_, ok = b2.Series[0].Memo.Load(owner, labels.FromStrings("__name__", "m", "a", "c"))
	require.False(t, ok, "relabelled copy")
}

// FuzzDecode checks the fast decoder against prompb, the reference: whatever
// prompb accepts we accept with the same float samples, and nothing panics.
func FuzzDecode(f *testing.F) {
	f.Add(reference(f, prompb.TimeSeries{Labels: lbls("__name__", "m", "a", "b"), Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}}))
	f.Add(reference(f, prompb.TimeSeries{Labels: lbls("b", "1", "__name__", "m"), Samples: []prompb.Sample{{Value: 1, Timestamp: -2}}},
		prompb.TimeSeries{Labels: lbls("__name__", "n"), Exemplars: []prompb.Exemplar{{Value: 1}}, Samples: []prompb.Sample{{Value: 3}}}))
	f.Add([]byte{0x0a, 0x00})
	d := NewDecoder(Limits{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var b bus.SampleBatch
		var rej Rejection
		err := d.Decode(in, &b, &rej)
		var ref prompb.WriteRequest
		refErr := proto.Unmarshal(in, &ref)
		if refErr != nil {
			// prompb also validates the insides of histograms, exemplars and
			// metadata, which we skip; rejecting those is not required.
			return
		}
		require.NoError(t, err, "prompb accepts %x", in)
		var want []prompb.TimeSeries
		for _, ts := range ref.Timeseries {
			if len(ts.Samples) == 0 || len(ts.Histograms) > 0 {
				continue
			}
			want = append(want, ts)
		}
		kept := 0
		for _, ts := range want {
			ls := labels.New(func() []labels.Label {
				var out []labels.Label
				for _, l := range ts.Labels {
					if l.Value != "" {
						out = append(out, labels.Label{Name: l.Name, Value: l.Value})
					}
				}
				sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
				return out
			}()...)
			if kept < len(b.Series) && labels.Equal(b.Series[kept].Labels, ls) {
				require.Len(t, b.Series[kept].Samples, len(ts.Samples))
				for i, s := range ts.Samples {
					require.Equal(t, s.Timestamp, b.Series[kept].Samples[i].T)
					require.Equal(t, math.Float64bits(s.Value), math.Float64bits(b.Series[kept].Samples[i].V))
				}
				kept++
			}
		}
		require.Equal(t, len(b.Series), kept, "every decoded series matches a reference series in order")
		rejected := 0
		for _, n := range rej.Series {
			rejected += n
		}
		require.Equal(t, len(ref.Timeseries), kept+rejected+countEmpty(ref.Timeseries), "each series is kept, rejected or empty")
	})
}

func countEmpty(ts []prompb.TimeSeries) int {
	n := 0
	for _, s := range ts {
		if len(s.Samples) == 0 && len(s.Histograms) == 0 {
			n++
		}
	}
	return n
}
