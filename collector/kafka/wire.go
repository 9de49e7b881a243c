package kafka

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/segmentio/kafka-go"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// Record headers of the wire format, version 1 (docs/wire.md).
const (
	// HeaderSchema names the record's schema and its version.
	HeaderSchema = "ballast-schema"
	// HeaderContentEncoding is how a sample record's value is compressed.
	HeaderContentEncoding = "content-encoding"
	// HeaderContentType is the media type of the (decompressed) value.
	HeaderContentType = "content-type"
	// HeaderEventType repeats an event's type so consumers can filter
	// without decoding the JSON.
	HeaderEventType = "ballast-event-type"

	// Dead-letter headers, added to the original record's.
	HeaderDLQReason    = "ballast-dlq-reason"
	HeaderDLQError     = "ballast-dlq-error"
	HeaderDLQTopic     = "ballast-dlq-topic"
	HeaderDLQPartition = "ballast-dlq-partition"
	HeaderDLQOffset    = "ballast-dlq-offset"
	HeaderDLQGroup     = "ballast-dlq-group"
	HeaderDLQTime      = "ballast-dlq-time"
	// HeaderDLQTruncated is set, to the original value's length, when the
	// value had to be left out to keep the dead letter under the size limit.
	HeaderDLQTruncated = "ballast-dlq-truncated"
)

// Schema versions. A consumer meeting another value dead-letters the record
// as unknown_schema; a record without the header is read as the current
// version of its topic, so plain remote-write producers (vmagent) interoperate.
const (
	SchemaSamplesV1 = "samples/v1"
	SchemaEventsV1  = "events/v1"
)

// Content encodings of sample record values.
const (
	EncodingSnappy   = "snappy" // snappy block format, as a remote-write body
	EncodingZstd     = "zstd"   // one zstd frame
	EncodingIdentity = "identity"
)

const (
	contentTypeSamples = "application/x-protobuf"
	contentTypeEvents  = "application/cloudevents+json; charset=UTF-8"
)

// Dead-letter reasons set by the bus itself; handlers add their own through
// bus.Permanent.
const (
	ReasonUnknownSchema   = "unknown_schema"
	ReasonUnknownEncoding = "unknown_encoding"
	ReasonDecode          = "decode"
	ReasonTooLarge        = "too_large"
	ReasonInvalidEvent    = "invalid_event"
)

// recordReserve is kept free in every record for the key, headers and the
// record framing, so the value limit is MaxMessageBytes minus this.
const recordReserve = 1024

// maxDLQErrorLen bounds the error text carried by a dead letter.
const maxDLQErrorLen = 512

// codec compresses and decompresses record values. Its zstd coders are safe
// for concurrent use (EncodeAll/DecodeAll).
type codec struct {
	encoding   string         // EncodingSnappy, EncodingZstd or EncodingIdentity
	headers    []kafka.Header // of every sample record; shared, never modified
	maxDecoded int
	zenc       *zstd.Encoder
	zdec       *zstd.Decoder
}

func newCodec(compression string, maxDecoded int) (*codec, error) {
	c := &codec{maxDecoded: maxDecoded}
	switch compression {
	case "snappy":
		c.encoding = EncodingSnappy
	case "zstd":
		c.encoding = EncodingZstd
	default:
		c.encoding = EncodingIdentity
	}
	c.headers = []kafka.Header{
		{Key: HeaderSchema, Value: []byte(SchemaSamplesV1)},
		{Key: HeaderContentEncoding, Value: []byte(c.encoding)},
		{Key: HeaderContentType, Value: []byte(contentTypeSamples)},
	}
	var err error
	// One goroutine each: EncodeAll and DecodeAll run on the caller's
	// goroutine, so these coders start none of their own.
	c.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	c.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxDecoded)))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return c, nil
}

func (c *codec) close() {
	_ = c.zenc.Close()
	c.zdec.Close()
}

// maxRaw is the largest uncompressed value whose compressed form is certain
// to fit in maxValue bytes, from each codec's worst-case expansion.
func (c *codec) maxRaw(maxValue int) int {
	switch c.encoding {
	case EncodingSnappy:
		// s2.MaxEncodedLen(n) = 32 + n + n/6.
		return (maxValue - 32) * 6 / 7
	case EncodingZstd:
		// ZSTD_compressBound(n) ≤ n + n/256 + 64 KiB/2^11 + frame header.
		return (maxValue - 128) * 255 / 256
	}
	return maxValue
}

// compress returns raw compressed in a slice of its own, exactly sized: it
// stays in the producer buffer until sent, so no spare capacity may ride
// along. scratch is reused for the compressor's worst-case output.
func (c *codec) compress(scratch *[]byte, raw []byte) []byte {
	var out []byte
	switch c.encoding {
	case EncodingSnappy:
		if n := s2.MaxEncodedLen(len(raw)); cap(*scratch) < n {
			*scratch = make([]byte, n)
		}
		out = s2.EncodeSnappy((*scratch)[:cap(*scratch)], raw)
	case EncodingZstd:
		out = c.zenc.EncodeAll(raw, (*scratch)[:0])
		*scratch = out[:0]
	default:
		out = raw
	}
	return bytes.Clone(out)
}

// decode decodes a WriteRequest value of the given content encoding into b.
// Snappy goes through the decoder's own pooled path; zstd decompresses into
// scratch, which may be grown. Errors are permanent: the record is poison.
func (c *codec) decode(dec *prw.Decoder, encoding string, value []byte, scratch *[]byte, b *bus.SampleBatch, rej *prw.Rejection) error {
	var err error
	switch encoding {
	case EncodingSnappy, "":
		err = dec.DecodeSnappy(value, c.maxDecoded, b, rej)
	case EncodingZstd:
		raw, zerr := c.zdec.DecodeAll(value, (*scratch)[:0])
		switch {
		case errors.Is(zerr, zstd.ErrDecoderSizeExceeded), errors.Is(zerr, zstd.ErrWindowSizeExceeded):
			return bus.Permanent(ReasonTooLarge, fmt.Errorf("zstd value decodes to more than consumer.max_decoded_bytes %d", c.maxDecoded))
		case zerr != nil:
			return bus.Permanent(ReasonDecode, fmt.Errorf("zstd: %w", zerr))
		}
		*scratch = raw[:0]
		err = dec.Decode(raw, b, rej)
	case EncodingIdentity:
		if len(value) > c.maxDecoded {
			return bus.Permanent(ReasonTooLarge, fmt.Errorf("value of %d bytes is over consumer.max_decoded_bytes %d", len(value), c.maxDecoded))
		}
		err = dec.Decode(value, b, rej)
	default:
		return bus.Permanent(ReasonUnknownEncoding, fmt.Errorf("content-encoding %q is not one of snappy, zstd, identity", truncate(encoding, 64)))
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, prw.ErrTooLarge):
		return bus.Permanent(ReasonTooLarge, err)
	}
	return bus.Permanent(ReasonDecode, err)
}

// sampleEncoder turns batches into records, one series always on the same
// partition: series are grouped by shard = labels hash mod the partition
// count, each group is encoded as concatenated WriteRequest.timeseries fields
// and split so every record stays under the size limit. It is not safe for
// concurrent use.
type sampleEncoder struct {
	codec     *codec
	maxRaw    int
	byPart    [][]int
	raw, zbuf []byte
}

// encodedRecord is one sample record ready to send.
type encodedRecord struct {
	msg     kafka.Message
	samples int
}

func newSampleEncoder(c *codec, maxMessageBytes int) *sampleEncoder {
	return &sampleEncoder{codec: c, maxRaw: c.maxRaw(maxMessageBytes - recordReserve)}
}

// encode appends b's records for a topic of parts partitions to out.
func (e *sampleEncoder) encode(out []encodedRecord, b *bus.SampleBatch, parts int) ([]encodedRecord, error) {
	if parts <= 0 {
		parts = 1
	}
	if len(e.byPart) < parts {
		e.byPart = make([][]int, parts)
	}
	for p := range e.byPart[:parts] {
		e.byPart[p] = e.byPart[p][:0]
	}
	for i := range b.Series {
		s := &b.Series[i]
		if len(s.Samples) == 0 {
			continue
		}
		h := s.Hash
		if h == 0 {
			h = s.Labels.Hash()
		}
		p := int(h % uint64(parts))
		e.byPart[p] = append(e.byPart[p], i)
	}
	var err error
	for p, idx := range e.byPart[:parts] {
		e.raw = e.raw[:0]
		n := 0
		for _, i := range idx {
			s := &b.Series[i]
			// Encode first and undo on overflow: sizing every series
			// up front would walk its labels once more.
			mark := len(e.raw)
			e.raw = prw.AppendTimeSeries(e.raw, s)
			if len(e.raw) <= e.maxRaw {
				n += len(s.Samples)
				continue
			}
			size := len(e.raw) - mark
			e.raw = e.raw[:mark]
			if mark > 0 {
				out = append(out, e.record(p, e.raw, n))
				e.raw, n = e.raw[:0], 0
			}
			if size <= e.maxRaw {
				e.raw = prw.AppendTimeSeries(e.raw, s)
				n += len(s.Samples)
				continue
			}
			// One series over the limit alone: split its samples.
			if out, err = e.splitSeries(out, p, s); err != nil {
				return out, err
			}
		}
		if len(e.raw) > 0 {
			out = append(out, e.record(p, e.raw, n))
		}
	}
	return out, nil
}

// splitSeries encodes one oversized series as several records, halving its
// samples until each part fits.
func (e *sampleEncoder) splitSeries(out []encodedRecord, p int, s *bus.Series) ([]encodedRecord, error) {
	part := bus.Series{Labels: s.Labels, Hash: s.Hash, Samples: s.Samples}
	if prw.TimeSeriesSize(&part) <= e.maxRaw {
		raw := prw.AppendTimeSeries(nil, &part)
		return append(out, e.record(p, raw, len(part.Samples))), nil
	}
	if len(s.Samples) <= 1 {
		return out, fmt.Errorf("series %.256s does not fit in one record of producer.max_message_bytes", s.Labels.String())
	}
	half := len(s.Samples) / 2
	out, err := e.splitSeries(out, p, &bus.Series{Labels: s.Labels, Hash: s.Hash, Samples: s.Samples[:half]})
	if err != nil {
		return out, err
	}
	return e.splitSeries(out, p, &bus.Series{Labels: s.Labels, Hash: s.Hash, Samples: s.Samples[half:]})
}

func (e *sampleEncoder) record(partition int, raw []byte, samples int) encodedRecord {
	key := binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(partition))
	return encodedRecord{
		msg: kafka.Message{
			Key:     key,
			Value:   e.codec.compress(&e.zbuf, raw),
			Headers: e.codec.headers,
		},
		samples: samples,
	}
}

// header returns the value of the first header named key, and whether it
// was present.
func header(m *kafka.Message, key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// checkSchema dead-letters records of another schema than want.
func checkSchema(m *kafka.Message, want string) error {
	if v, ok := header(m, HeaderSchema); ok && v != want {
		return bus.Permanent(ReasonUnknownSchema, fmt.Errorf("schema %q: this consumer reads %s", truncate(v, 64), want))
	}
	return nil
}

// decodeSamples decodes a sample record into b, appending. Series with
// invalid labels are left out and counted in rej. A returned error is
// permanent.
func decodeSamples(c *codec, dec *prw.Decoder, m *kafka.Message, scratch *[]byte, b *bus.SampleBatch, rej *prw.Rejection) error {
	if err := checkSchema(m, SchemaSamplesV1); err != nil {
		return err
	}
	enc, _ := header(m, HeaderContentEncoding)
	return c.decode(dec, enc, m.Value, scratch, b, rej)
}

// encodeEvent builds an event record: CloudEvents JSON structured mode, keyed
// by Subject so one resource's events stay in order.
func encodeEvent(e *bus.Event) (kafka.Message, error) {
	if err := e.Validate(); err != nil {
		return kafka.Message{}, fmt.Errorf("event %q: %w", e.ID, err)
	}
	value, err := json.Marshal(e)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	var key []byte
	if e.Subject != "" {
		key = []byte(e.Subject)
	}
	return kafka.Message{
		Key:   key,
		Value: value,
		Headers: []kafka.Header{
			{Key: HeaderSchema, Value: []byte(SchemaEventsV1)},
			{Key: HeaderContentType, Value: []byte(contentTypeEvents)},
			{Key: HeaderEventType, Value: []byte(e.Type)},
		},
	}, nil
}

// decodeEvent decodes and validates an event record. Errors are permanent.
func decodeEvent(m *kafka.Message) (bus.Event, error) {
	var e bus.Event
	if err := checkSchema(m, SchemaEventsV1); err != nil {
		return e, err
	}
	if err := json.Unmarshal(m.Value, &e); err != nil {
		return e, bus.Permanent(ReasonDecode, fmt.Errorf("event JSON: %w", err))
	}
	if err := e.Validate(); err != nil {
		return e, bus.Permanent(ReasonInvalidEvent, err)
	}
	return e, nil
}

// deadLetter builds the dead-letter record for m: the original key, value
// and headers, plus where it came from and why it was refused. The value is
// left out (and its length recorded) if the whole would not fit in maxBytes.
func deadLetter(m *kafka.Message, group, reason string, cause error, now time.Time, maxBytes int) kafka.Message {
	errText := ""
	if cause != nil {
		errText = truncate(cause.Error(), maxDLQErrorLen)
	}
	headers := make([]kafka.Header, 0, len(m.Headers)+8)
	headers = append(headers, m.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(reason)},
		kafka.Header{Key: HeaderDLQError, Value: []byte(errText)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
		kafka.Header{Key: HeaderDLQGroup, Value: []byte(group)},
		kafka.Header{Key: HeaderDLQTime, Value: now.UTC().AppendFormat(nil, time.RFC3339Nano)},
	)
	dl := kafka.Message{Key: m.Key, Value: m.Value, Headers: headers}
	if messageSize(&dl) > maxBytes-recordReserve {
		dl.Value = nil
		dl.Headers = append(dl.Headers, kafka.Header{Key: HeaderDLQTruncated, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
		if messageSize(&dl) > maxBytes-recordReserve {
			// Headers alone are too large (a hostile producer): keep only ours.
			dl.Headers = dl.Headers[len(m.Headers):]
			dl.Key = nil
		}
	}
	return dl
}

// messageSize is the size kafka-go accounts a message at.
func messageSize(m *kafka.Message) int {
	n := 4 + 1 + 1 + 4 + len(m.Key) + 4 + len(m.Value) + 8
	for _, h := range m.Headers {
		n += 4 + len(h.Key) + 4 + len(h.Value)
	}
	return n + 4
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// partitionBalancer places records on partitions. A sample record's key is
// the 4-byte big-endian partition its series were grouped for, taken modulo
// the partition count; any other key is hashed with Kafka's murmur2, as the
// Java client's default partitioner does, and no key goes round robin.
type partitionBalancer struct {
	murmur kafka.Murmur2Balancer
}

func (b *partitionBalancer) Balance(msg kafka.Message, partitions ...int) int {
	if len(msg.Key) == 4 && len(msg.Headers) > 0 && string(msg.Headers[0].Value) == SchemaSamplesV1 {
		return partitions[int(binary.BigEndian.Uint32(msg.Key))%len(partitions)]
	}
	return b.murmur.Balance(msg, partitions...)
}

var _ kafka.Balancer = (*partitionBalancer)(nil)
