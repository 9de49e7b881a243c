package kafka

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/prw"
)

func testCodec(t testing.TB, compression string, maxDecoded int) *codec {
	t.Helper()
	c, err := newCodec(compression, maxDecoded)
	require.NoError(t, err)
	t.Cleanup(c.close)
	return c
}

// decodeAll decodes every record into one batch, failing on any error or
// rejection.
func decodeAll(t *testing.T, c *codec, recs []encodedRecord) *bus.SampleBatch {
	t.Helper()
	dec := prw.NewDecoder(prw.Limits{})
	var (
		out     bus.SampleBatch
		scratch []byte
	)
	for i := range recs {
		var rej prw.Rejection
		require.NoError(t, decodeSamples(c, dec, &recs[i].msg, &scratch, &out, &rej))
		require.True(t, rej.Empty())
	}
	return &out
}

// flatten maps series@t to value, so batches compare regardless of how the
// encoder grouped and split them.
func flatten(b *bus.SampleBatch) map[string]float64 {
	out := map[string]float64{}
	for _, s := range b.Series {
		for _, smp := range s.Samples {
			out[s.Labels.String()+"@"+time.UnixMilli(smp.T).UTC().Format(time.RFC3339Nano)] = smp.V
		}
	}
	return out
}

func TestSampleRecordRoundTrip(t *testing.T) {
	in := batches(series("node_cpu_seconds_total", 300), 1, 1_700_000_000_000)[0]
	in.Series[0].Samples = append(in.Series[0].Samples, bus.Sample{T: 1_700_000_015_000, V: math.Inf(-1)}, bus.Sample{T: 0, V: 0.5})
	for _, compression := range []string{"snappy", "zstd", "none"} {
		t.Run(compression, func(t *testing.T) {
			c := testCodec(t, compression, 64<<20)
			enc := newSampleEncoder(c, 1<<20)
			recs, err := enc.encode(nil, in, 6)
			require.NoError(t, err)
			require.NotEmpty(t, recs)
			want := map[string]string{"snappy": EncodingSnappy, "zstd": EncodingZstd, "none": EncodingIdentity}[compression]
			total := 0
			for _, r := range recs {
				v, ok := header(&r.msg, HeaderSchema)
				require.True(t, ok)
				require.Equal(t, SchemaSamplesV1, v)
				v, _ = header(&r.msg, HeaderContentEncoding)
				require.Equal(t, want, v)
				v, _ = header(&r.msg, HeaderContentType)
				require.Equal(t, "application/x-protobuf", v)
				require.Len(t, r.msg.Key, 4)
				require.Less(t, binary.BigEndian.Uint32(r.msg.Key), uint32(6))
				total += r.samples
			}
			require.Equal(t, in.Len(), total)
			require.Equal(t, flatten(in), flatten(decodeAll(t, c, recs)))
		})
	}
}

// TestSampleRecordIsRemoteWriteBody checks the schema against the reference
// implementation: a snappy sample record's value is a remote-write 1.0 body
// that prompb and golang/snappy decode.
func TestSampleRecordIsRemoteWriteBody(t *testing.T) {
	in := batches(series("up", 3), 2, 1_700_000_000_000)
	merged := &bus.SampleBatch{Series: append(in[0].Series, in[1].Series...)}
	recs, err := newSampleEncoder(testCodec(t, "snappy", 1<<20), 1<<20).encode(nil, merged, 1)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	raw, err := snappy.Decode(nil, recs[0].msg.Value)
	require.NoError(t, err)
	var wr prompb.WriteRequest
	require.NoError(t, proto.Unmarshal(raw, &wr))
	require.Len(t, wr.Timeseries, 6)
	require.Equal(t, "up", wr.Timeseries[0].Labels[0].Value)
	require.Equal(t, int64(1_700_000_000_000), wr.Timeseries[0].Samples[0].Timestamp)
}

// TestSeriesKeepTheirPartition: whatever batch a series arrives in, its
// records carry the same partition key.
func TestSeriesKeepTheirPartition(t *testing.T) {
	enc := newSampleEncoder(testCodec(t, "none", 1<<20), 1<<20)
	ls := series("m", 500)
	where := map[string]uint32{}
	for round := range 3 {
		// A different subset and order of series each round.
		b := &bus.SampleBatch{}
		for i := len(ls) - 1 - round; i >= 0; i -= 1 + round {
			b.Series = append(b.Series, bus.Series{Labels: ls[i], Samples: []bus.Sample{{T: int64(round), V: 1}}})
		}
		recs, err := enc.encode(nil, b, 12)
		require.NoError(t, err)
		got := decodeAllKeyed(t, enc.codec, recs)
		for s, p := range got {
			if old, ok := where[s]; ok {
				require.Equal(t, old, p, "series %s moved partition", s)
			}
			where[s] = p
		}
	}
	require.Len(t, where, len(ls))
	// And the balancer sends key k to partition k.
	bal := &partitionBalancer{}
	for p := range 12 {
		m := kafka.Message{Key: binary.BigEndian.AppendUint32(nil, uint32(p)), Headers: []kafka.Header{{Key: HeaderSchema, Value: []byte(SchemaSamplesV1)}}}
		require.Equal(t, p, bal.Balance(m, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11))
	}
}

func decodeAllKeyed(t *testing.T, c *codec, recs []encodedRecord) map[string]uint32 {
	out := map[string]uint32{}
	for i := range recs {
		b := decodeAll(t, c, recs[i:i+1])
		for _, s := range b.Series {
			out[s.Labels.String()] = binary.BigEndian.Uint32(recs[i].msg.Key)
		}
	}
	return out
}

// TestSplitUnderMessageLimit: a batch far over the limit becomes records
// that each fit, for every codec, and lose nothing; one series with more
// samples than fit in a record is split by samples.
func TestSplitUnderMessageLimit(t *testing.T) {
	const limit = 64 << 10
	ls := series("big_metric_with_a_long_name", 2000)
	big := batches(ls, 1, 1_700_000_000_000)[0]
	long := bus.Series{Labels: labels.FromStrings("__name__", "one_long_series")}
	for i := range 20000 {
		long.Samples = append(long.Samples, bus.Sample{T: int64(i) * 1000, V: float64(i)})
	}
	big.Series = append(big.Series, long)
	for _, compression := range []string{"snappy", "zstd", "none"} {
		t.Run(compression, func(t *testing.T) {
			c := testCodec(t, compression, 64<<20)
			recs, err := newSampleEncoder(c, limit).encode(nil, big, 3)
			require.NoError(t, err)
			require.Greater(t, len(recs), 3)
			for _, r := range recs {
				require.LessOrEqual(t, messageSize(&r.msg), limit, "record over the limit")
			}
			require.Equal(t, flatten(big), flatten(decodeAll(t, c, recs)))
		})
	}
}

// TestIncompressibleValueFits: the codecs' worst-case expansion is covered.
func TestIncompressibleValueFits(t *testing.T) {
	const limit = 64 << 10
	// Random-looking label values do not compress.
	b := &bus.SampleBatch{}
	x := uint64(88172645463325252)
	for i := range 400 {
		var sb strings.Builder
		for range 100 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			sb.WriteByte(byte('!' + x%90))
		}
		b.Series = append(b.Series, bus.Series{Labels: labels.FromStrings("__name__", "r", "v", sb.String()), Samples: []bus.Sample{{T: int64(i), V: math.Float64frombits(x)}}})
	}
	for _, compression := range []string{"snappy", "zstd"} {
		c := testCodec(t, compression, 64<<20)
		recs, err := newSampleEncoder(c, limit).encode(nil, b, 1)
		require.NoError(t, err)
		for _, r := range recs {
			require.LessOrEqual(t, messageSize(&r.msg), limit, compression)
		}
	}
}

func TestSeriesTooLargeForARecord(t *testing.T) {
	c := testCodec(t, "none", 64<<20)
	huge := strings.Repeat("x", 80<<10)
	b := &bus.SampleBatch{Series: []bus.Series{{Labels: labels.FromStrings("__name__", "m", "v", huge), Samples: []bus.Sample{{T: 1, V: 1}}}}}
	_, err := newSampleEncoder(c, 64<<10).encode(nil, b, 1)
	require.ErrorContains(t, err, "does not fit in one record")
}

// remoteWrite encodes a WriteRequest with the reference implementation.
func remoteWrite(t testing.TB, ts ...prompb.TimeSeries) []byte {
	t.Helper()
	raw, err := proto.Marshal(&prompb.WriteRequest{Timeseries: ts})
	require.NoError(t, err)
	return raw
}

func TestDecodeSamplesPoison(t *testing.T) {
	good := remoteWrite(t, prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	zenc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	defer zenc.Close()
	bomb := make([]byte, 200<<10) // decodes over the 128 KiB limit below
	hdr := func(kv ...string) []kafka.Header {
		var hs []kafka.Header
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	for _, tc := range []struct {
		name    string
		msg     kafka.Message
		reason  string // "" for success
		samples int
	}{
		{name: "no headers is remote-write snappy", msg: kafka.Message{Value: snappy.Encode(nil, good)}, samples: 1},
		{name: "v1 zstd", msg: kafka.Message{Value: zenc.EncodeAll(good, nil), Headers: hdr(HeaderSchema, SchemaSamplesV1, HeaderContentEncoding, "zstd")}, samples: 1},
		{name: "v1 identity", msg: kafka.Message{Value: good, Headers: hdr(HeaderSchema, SchemaSamplesV1, HeaderContentEncoding, "identity")}, samples: 1},
		{name: "unknown schema version", msg: kafka.Message{Value: snappy.Encode(nil, good), Headers: hdr(HeaderSchema, "samples/v2")}, reason: ReasonUnknownSchema},
		{name: "event on the samples topic", msg: kafka.Message{Value: []byte(`{}`), Headers: hdr(HeaderSchema, SchemaEventsV1)}, reason: ReasonUnknownSchema},
		{name: "unknown encoding", msg: kafka.Message{Value: good, Headers: hdr(HeaderContentEncoding, "br")}, reason: ReasonUnknownEncoding},
		{name: "not snappy", msg: kafka.Message{Value: []byte("\xff\xff\xff\xff\xff garbage")}, reason: ReasonDecode},
		{name: "snappy of garbage", msg: kafka.Message{Value: snappy.Encode(nil, []byte("\x0a\xff\xff\xff\xff\x0f"))}, reason: ReasonDecode},
		{name: "not zstd", msg: kafka.Message{Value: []byte("nope"), Headers: hdr(HeaderContentEncoding, "zstd")}, reason: ReasonDecode},
		{name: "snappy bomb", msg: kafka.Message{Value: snappy.Encode(nil, bomb)}, reason: ReasonTooLarge},
		{name: "zstd bomb", msg: kafka.Message{Value: zenc.EncodeAll(bomb, nil), Headers: hdr(HeaderContentEncoding, "zstd")}, reason: ReasonTooLarge},
		{name: "identity over the limit", msg: kafka.Message{Value: bomb, Headers: hdr(HeaderContentEncoding, "identity")}, reason: ReasonTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCodec(t, "snappy", 128<<10)
			var (
				b       bus.SampleBatch
				rej     prw.Rejection
				scratch []byte
			)
			err := decodeSamples(c, prw.NewDecoder(prw.Limits{}), &tc.msg, &scratch, &b, &rej)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, tc.samples, b.Len())
				return
			}
			var p *bus.PermanentError
			require.ErrorAs(t, err, &p)
			require.Equal(t, tc.reason, p.Reason)
			require.Zero(t, b.Len())
		})
	}
}

func TestEventRecord(t *testing.T) {
	e := bus.Event{
		SpecVersion: bus.SpecVersion, ID: "0b6ee7b0-9d43-4bd0-a6b4-2d5e1e7d1a11", Source: "/ballast/agent/hv-01",
		Type: bus.TypeHostState, Subject: "hv-01", Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		DataContentType: "application/json", Data: json.RawMessage(`{"state":"maintenance"}`),
	}
	m, err := encodeEvent(&e)
	require.NoError(t, err)
	require.Equal(t, []byte("hv-01"), m.Key)
	v, _ := header(&m, HeaderSchema)
	require.Equal(t, SchemaEventsV1, v)
	v, _ = header(&m, HeaderContentType)
	require.Equal(t, "application/cloudevents+json; charset=UTF-8", v)
	v, _ = header(&m, HeaderEventType)
	require.Equal(t, bus.TypeHostState, v)

	// The value is the documented CloudEvents structured-mode JSON.
	golden, err := os.ReadFile(filepath.Join("testdata", "event.v1.json"))
	require.NoError(t, err)
	require.JSONEq(t, string(golden), string(m.Value))

	got, err := decodeEvent(&m)
	require.NoError(t, err)
	require.Equal(t, e.ID, got.ID)
	require.True(t, e.Time.Equal(got.Time))
	require.JSONEq(t, string(e.Data), string(got.Data))

	// No subject: no key, so the record goes round robin.
	e.Subject = ""
	m, err = encodeEvent(&e)
	require.NoError(t, err)
	require.Nil(t, m.Key)

	_, err = encodeEvent(&bus.Event{ID: "x"})
	require.ErrorContains(t, err, "specversion")
}

func TestDecodeEventPoison(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    kafka.Message
		reason string
	}{
		{name: "not JSON", msg: kafka.Message{Value: []byte("{")}, reason: ReasonDecode},
		{name: "wrong JSON type", msg: kafka.Message{Value: []byte(`{"time":"yesterday"}`)}, reason: ReasonDecode},
		{name: "missing attributes", msg: kafka.Message{Value: []byte(`{"specversion":"1.0","id":"1"}`)}, reason: ReasonInvalidEvent},
		{name: "unknown spec version", msg: kafka.Message{Value: []byte(`{"specversion":"0.3","id":"1","source":"s","type":"t","time":"2026-01-01T00:00:00Z"}`)}, reason: ReasonInvalidEvent},
		{name: "unknown schema", msg: kafka.Message{Value: []byte(`{}`), Headers: []kafka.Header{{Key: HeaderSchema, Value: []byte("events/v9")}}}, reason: ReasonUnknownSchema},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeEvent(&tc.msg)
			var p *bus.PermanentError
			require.ErrorAs(t, err, &p)
			require.Equal(t, tc.reason, p.Reason)
		})
	}
}

func TestDeadLetterRecord(t *testing.T) {
	orig := kafka.Message{
		Topic: "ballast.samples", Partition: 4, Offset: 1234, Key: []byte{0, 0, 0, 4}, Value: []byte("poison"),
		Headers: []kafka.Header{{Key: HeaderSchema, Value: []byte("samples/v7")}},
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	dl := deadLetter(&orig, "ingest", ReasonUnknownSchema, bus.Permanent(ReasonUnknownSchema, os.ErrInvalid), now, 1<<20)
	require.Equal(t, orig.Key, dl.Key)
	require.Equal(t, orig.Value, dl.Value)
	want := map[string]string{
		HeaderSchema:       "samples/v7",
		HeaderDLQReason:    ReasonUnknownSchema,
		HeaderDLQError:     "unknown_schema: invalid argument",
		HeaderDLQTopic:     "ballast.samples",
		HeaderDLQPartition: "4",
		HeaderDLQOffset:    "1234",
		HeaderDLQGroup:     "ingest",
		HeaderDLQTime:      "2026-11-21T10:00:00Z",
	}
	for k, v := range want {
		got, ok := header(&dl, k)
		require.True(t, ok, k)
		require.Equal(t, v, got, k)
	}
	_, truncated := header(&dl, HeaderDLQTruncated)
	require.False(t, truncated)

	// A value that would push the dead letter over the limit is left out.
	orig.Value = make([]byte, 70<<10)
	dl = deadLetter(&orig, "ingest", ReasonTooLarge, nil, now, 64<<10)
	require.Nil(t, dl.Value)
	v, _ := header(&dl, HeaderDLQTruncated)
	require.Equal(t, "71680", v)
	require.LessOrEqual(t, messageSize(&dl), 64<<10)

	// Long error texts are bounded.
	dl = deadLetter(&orig, "ingest", "x", bus.Permanent("x", errString(strings.Repeat("e", 5000))), now, 1<<20)
	v, _ = header(&dl, HeaderDLQError)
	require.Less(t, len(v), maxDLQErrorLen+8)
}

type errString string

func (e errString) Error() string { return string(e) }

func FuzzDecodeSamples(f *testing.F) {
	good := remoteWrite(f, prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "x"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}})
	zenc, _ := zstd.NewWriter(nil)
	f.Add(snappy.Encode(nil, good), "snappy")
	f.Add(zenc.EncodeAll(good, nil), "zstd")
	f.Add(good, "identity")
	f.Add([]byte("\x00\xff"), "")
	_ = zenc.Close()
	c, err := newCodec("snappy", 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	dec := prw.NewDecoder(prw.Limits{})
	f.Fuzz(func(t *testing.T, value []byte, encoding string) {
		m := kafka.Message{Value: value, Headers: []kafka.Header{{Key: HeaderContentEncoding, Value: []byte(encoding)}}}
		var (
			b       bus.SampleBatch
			rej     prw.Rejection
			scratch []byte
		)
		err := decodeSamples(c, dec, &m, &scratch, &b, &rej)
		if err != nil {
			require.True(t, bus.IsPermanent(err), "decode errors must be permanent: %v", err)
			require.Zero(t, b.Len())
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "event.v1.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(`{"specversion":"1.0"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, value []byte) {
		m := kafka.Message{Value: value}
		e, err := decodeEvent(&m)
		if err != nil {
			require.True(t, bus.IsPermanent(err))
			return
		}
		require.NoError(t, e.Validate())
	})
}

// BenchmarkEncodeSamples encodes scrape-sized batches of series seen before,
// as a steady producer does.
func BenchmarkEncodeSamples(b *testing.B) {
	c := testCodec(b, "snappy", 64<<20)
	enc := newSampleEncoder(c, 1<<20)
	batch := batches(series("bench_metric", 5000), 1, 1_700_000_000_000)[0]
	for i := range batch.Series {
		batch.Series[i].Hash = batch.Series[i].Labels.Hash()
	}
	var out []encodedRecord
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var err error
		out, err = enc.encode(out[:0], batch, 12)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch.Series)), "ns/sample")
}
