// Package prw owns the Prometheus remote-write 1.0 wire format on Ballast's
// ingest paths: decoding snappy-compressed prometheus.WriteRequest bodies into
// bus.SampleBatch (the remote_write receiver, the Kafka ingester) and encoding
// batches back (exporter push, Kafka producers, forwarding).
//
// The decoder walks the protobuf wire format directly instead of unmarshalling
// into prompb structs: a label set seen before is recognised from its raw
// bytes and its labels.Labels reused, so a steady stream of known series
// allocates nothing per series. prompb stays the reference: a differential
// fuzz test checks that both decoders agree on every input.
package prw

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// Reasons a series or sample is rejected while decoding; they label the
// rejected-samples metric.
const (
	ReasonInvalidLabels   = "invalid_labels"
	ReasonMissingName     = "missing_metric_name"
	ReasonDuplicateLabel  = "duplicate_label"
	ReasonTooManyLabels   = "too_many_labels"
	ReasonLabelTooLong    = "label_too_long"
	ReasonNativeHistogram = "native_histogram_unsupported"
)

// ErrMalformed wraps every error about bytes that are not a valid WriteRequest.
var ErrMalformed = errors.New("malformed remote-write request")

// Limits bound what one request may carry. Zero values get defaults.
type Limits struct {
	MaxLabelsPerSeries int // default 64
	MaxLabelNameLen    int // default 1024 bytes
	MaxLabelValueLen   int // default 4096 bytes
	MaxCachedSeries    int // label sets remembered by a Decoder (default 2M)
}

func (l Limits) withDefaults() Limits {
	if l.MaxLabelsPerSeries <= 0 {
		l.MaxLabelsPerSeries = 64
	}
	if l.MaxLabelNameLen <= 0 {
		l.MaxLabelNameLen = 1024
	}
	if l.MaxLabelValueLen <= 0 {
		l.MaxLabelValueLen = 4096
	}
	if l.MaxCachedSeries <= 0 {
		l.MaxCachedSeries = 2 << 20
	}
	return l
}

// Rejection counts series dropped while decoding, by reason, with an example.
type Rejection struct {
	Series  map[string]int // reason → series
	Samples map[string]int // reason → samples in those series
	Example string         // the first rejection, for the error message
}

// Add records a rejected series with n samples.
func (r *Rejection) Add(reason string, n int, example string) {
	if r.Series == nil {
		r.Series, r.Samples = map[string]int{}, map[string]int{}
	}
	r.Series[reason]++
	r.Samples[reason] += n
	if r.Example == "" {
		r.Example = example
	}
}

// Empty reports whether nothing was rejected.
func (r *Rejection) Empty() bool { return len(r.Series) == 0 }

// Decoder turns WriteRequest bodies into batches. It is safe for concurrent
// use; its label cache is shared by all callers.
type Decoder struct {
	limits Limits
	cache  *labelCache
	bufs   sync.Pool
}

// NewDecoder returns a Decoder with the given limits.
func NewDecoder(l Limits) *Decoder {
	l = l.withDefaults()
	return &Decoder{limits: l, cache: newLabelCache(l.MaxCachedSeries)}
}

// DecodeSnappy decompresses a snappy block (rejecting bodies that would
// decompress beyond maxDecoded bytes) and decodes it into b.
func (d *Decoder) DecodeSnappy(compressed []byte, maxDecoded int, b *bus.SampleBatch, rej *Rejection) error {
	n, err := s2.DecodedLen(compressed)
	if err != nil {
		return fmt.Errorf("%w: snappy: %v", ErrMalformed, err)
	}
	if maxDecoded > 0 && n > maxDecoded {
		return fmt.Errorf("%w: decompressed size %d exceeds the limit of %d bytes", ErrTooLarge, n, maxDecoded)
	}
	bp, _ := d.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer d.bufs.Put(bp)
	buf := slices.Grow((*bp)[:0], n)[:n]
	*bp = buf
	raw, err := s2.Decode(buf, compressed)
	if err != nil {
		return fmt.Errorf("%w: snappy: %v", ErrMalformed, err)
	}
	return d.Decode(raw, b, rej)
}

// ErrTooLarge is returned for a body over the configured size limit.
var ErrTooLarge = errors.New("request too large")

// Decode parses an uncompressed WriteRequest, appending its float series to
// b. Series with invalid labels or native histograms are dropped and counted
// in rej; malformed bytes fail the whole request with ErrMalformed and leave
// b as it was.
func (d *Decoder) Decode(raw []byte, b *bus.SampleBatch, rej *Rejection) error {
	start := len(b.Series)
	if err := d.decode(raw, b, rej); err != nil {
		clear(b.Series[start:])
		b.Series = b.Series[:start]
		return err
	}
	return nil
}

func (d *Decoder) decode(raw []byte, b *bus.SampleBatch, rej *Rejection) error {
	for len(raw) > 0 {
		field, wt, n := tag(raw)
		if n <= 0 {
			return malformed("WriteRequest tag")
		}
		raw = raw[n:]
		if field == 1 && wt == wireBytes {
			ts, rest, err := lenDelim(raw)
			if err != nil {
				return err
			}
			raw = rest
			if err := d.series(ts, b, rej); err != nil {
				return err
			}
			continue
		}
		if (field == 1 || field == 3) && wt != wireBytes {
			return malformed("WriteRequest field wire type")
		}
		rest, err := skip(raw, wt) // metadata (3) and unknown fields
		if err != nil {
			return err
		}
		raw = rest
	}
	return nil
}

// series decodes one TimeSeries message.
func (d *Decoder) series(msg []byte, b *bus.SampleBatch, rej *Rejection) error {
	// Grow b.Series in place so sample slices of earlier batches are reused.
	if len(b.Series) < cap(b.Series) {
		b.Series = b.Series[:len(b.Series)+1]
	} else {
		b.Series = append(b.Series, bus.Series{})
	}
	s := &b.Series[len(b.Series)-1]
	s.Samples = s.Samples[:0]

	var (
		h          = xxhash.New()
		nLabels    int
		histograms int
		labelBytes int
		firstLabel = -1
		lastLabel  = -1
		contiguous = true
		msg0       = msg
	)
	for len(msg) > 0 {
		off := len(msg0) - len(msg)
		field, wt, n := tag(msg)
		if n <= 0 {
			return malformed("TimeSeries tag")
		}
		msg = msg[n:]
		switch {
		case field == 1 && wt == wireBytes: // Label
			body, rest, err := lenDelim(msg)
			if err != nil {
				return err
			}
			end := len(msg0) - len(rest)
			if lastLabel >= 0 && lastLabel != off {
				contiguous = false
			}
			if firstLabel < 0 {
				firstLabel = off
			}
			lastLabel = end
			_, _ = h.Write(msg0[off:end])
			labelBytes += len(body)
			nLabels++
			msg = rest
		case field == 2 && wt == wireBytes: // Sample
			body, rest, err := lenDelim(msg)
			if err != nil {
				return err
			}
			smp, err := sample(body)
			if err != nil {
				return err
			}
			s.Samples = append(s.Samples, smp)
			msg = rest
		case field == 4 && wt == wireBytes: // Histogram
			_, rest, err := lenDelim(msg)
			if err != nil {
				return err
			}
			histograms++
			msg = rest
		case field <= 4 && wt != wireBytes:
			return malformed("TimeSeries field wire type")
		default: // exemplars (3) and unknown fields
			rest, err := skip(msg, wt)
			if err != nil {
				return err
			}
			msg = rest
		}
	}
	drop := func(reason, example string) {
		rej.Add(reason, len(s.Samples)+histograms, example)
		s.Samples = s.Samples[:0]
		b.Series = b.Series[:len(b.Series)-1]
	}
	if histograms > 0 {
		drop(ReasonNativeHistogram, "series with native histogram samples")
		return nil
	}
	if len(s.Samples) == 0 {
		b.Series = b.Series[:len(b.Series)-1]
		return nil
	}
	if nLabels > d.limits.MaxLabelsPerSeries {
		drop(ReasonTooManyLabels, fmt.Sprintf("series with %d labels (limit %d)", nLabels, d.limits.MaxLabelsPerSeries))
		return nil
	}
	key := h.Sum64()
	var rawLabels []byte
	if contiguous && firstLabel >= 0 {
		rawLabels = msg0[firstLabel:lastLabel]
	}
	if rawLabels != nil {
		if e := d.cache.get(key, rawLabels); e != nil {
			s.Labels, s.Hash, s.Memo = e.ls, e.hash, &e.memo
			return nil
		}
	}
	s.Memo = nil
	ls, reason, example, err := d.buildLabels(msg0, nLabels)
	if err != nil {
		return err
	}
	if reason != "" {
		drop(reason, example)
		return nil
	}
	s.Labels, s.Hash = ls, ls.Hash()
	if rawLabels != nil {
		s.Memo = &d.cache.put(key, rawLabels, ls, s.Hash).memo
	}
	return nil
}

// buildLabels builds and validates the label set of a TimeSeries message on a
// cache miss. A non-empty reason means the series is invalid.
func (d *Decoder) buildLabels(msg []byte, nLabels int) (labels.Labels, string, string, error) {
	sb := labels.NewScratchBuilder(nLabels)
	for len(msg) > 0 {
		field, wt, n := tag(msg)
		msg = msg[n:]
		if field != 1 || wt != wireBytes {
			rest, err := skip(msg, wt)
			if err != nil {
				return labels.EmptyLabels(), "", "", err
			}
			msg = rest
			continue
		}
		body, rest, err := lenDelim(msg)
		if err != nil {
			return labels.EmptyLabels(), "", "", err
		}
		msg = rest
		name, value, err := label(body)
		if err != nil {
			return labels.EmptyLabels(), "", "", err
		}
		if name == "" || !utf8.ValidString(name) {
			return labels.EmptyLabels(), ReasonInvalidLabels, fmt.Sprintf("invalid label name %q", name), nil
		}
		if !utf8.ValidString(value) {
			return labels.EmptyLabels(), ReasonInvalidLabels, fmt.Sprintf("label %s has an invalid UTF-8 value", name), nil
		}
		if len(name) > d.limits.MaxLabelNameLen || len(value) > d.limits.MaxLabelValueLen {
			return labels.EmptyLabels(), ReasonLabelTooLong, fmt.Sprintf("label %.64s… over the length limit", name), nil
		}
		if value == "" {
			continue // an empty value is the same as no label
		}
		sb.Add(strings.Clone(name), strings.Clone(value))
	}
	sb.Sort()
	ls := sb.Labels()
	if ls.Get(model.MetricNameLabel) == "" {
		return labels.EmptyLabels(), ReasonMissingName, "series without a metric name: " + ls.String(), nil
	}
	if dup, ok := ls.HasDuplicateLabelNames(); ok {
		return labels.EmptyLabels(), ReasonDuplicateLabel, fmt.Sprintf("duplicate label %q in %s", dup, ls.String()), nil
	}
	return ls, "", "", nil
}

func label(msg []byte) (name, value string, err error) {
	for len(msg) > 0 {
		field, wt, n := tag(msg)
		if n <= 0 {
			return "", "", malformed("Label tag")
		}
		msg = msg[n:]
		if wt != wireBytes {
			if field <= 2 {
				return "", "", malformed("Label field wire type")
			}
			rest, err := skip(msg, wt)
			if err != nil {
				return "", "", err
			}
			msg = rest
			continue
		}
		body, rest, err := lenDelim(msg)
		if err != nil {
			return "", "", err
		}
		msg = rest
		switch field {
		case 1:
			name = unsafeString(body)
		case 2:
			value = unsafeString(body)
		}
	}
	return name, value, nil
}

func sample(msg []byte) (bus.Sample, error) {
	var s bus.Sample
	for len(msg) > 0 {
		field, wt, n := tag(msg)
		if n <= 0 {
			return s, malformed("Sample tag")
		}
		msg = msg[n:]
		switch {
		case field == 1 && wt == wireFixed64:
			if len(msg) < 8 {
				return s, malformed("Sample value")
			}
			s.V = math.Float64frombits(binary.LittleEndian.Uint64(msg))
			msg = msg[8:]
		case field == 2 && wt == wireVarint:
			v, n := uvarint(msg)
			if n <= 0 {
				return s, malformed("Sample timestamp")
			}
			s.T = int64(v)
			msg = msg[n:]
		case field <= 2:
			return s, malformed("Sample field wire type")
		default:
			rest, err := skip(msg, wt)
			if err != nil {
				return s, err
			}
			msg = rest
		}
	}
	return s, nil
}

const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

func tag(b []byte) (field uint64, wt int, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		if b[0] < 8 {
			return 0, 0, -1 // field number 0 is invalid
		}
		return uint64(b[0] >> 3), int(b[0] & 7), 1
	}
	v, n := uvarint(b)
	if n <= 0 {
		return 0, 0, n
	}
	if v>>3 == 0 {
		return 0, 0, -1 // field number 0 is invalid
	}
	return v >> 3, int(v & 7), n
}

func lenDelim(b []byte) (body, rest []byte, err error) {
	l, n := uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, malformed("length-delimited field")
	}
	end := n + int(l)
	return b[n:end], b[end:], nil
}

func skip(b []byte, wt int) ([]byte, error) {
	return skipDepth(b, wt, 0)
}

// skipDepth skips one field value; groups (wire types 3/4, deprecated but
// legal) are skipped up to their matching end tag, nested at most 16 deep.
func skipDepth(b []byte, wt int, depth int) ([]byte, error) {
	switch wt {
	case wireStartGroup:
		if depth > 16 {
			return nil, malformed("group nesting")
		}
		for {
			// Like gogo/protobuf, tags inside a skipped group are not
			// checked beyond their wire type.
			v, n := uvarint(b)
			if n <= 0 {
				return nil, malformed("group")
			}
			b = b[n:]
			if int(v&7) == wireEndGroup {
				return b, nil
			}
			rest, err := skipDepth(b, int(v&7), depth+1)
			if err != nil {
				return nil, err
			}
			b = rest
		}
	case wireVarint:
		_, n := uvarint(b)
		if n <= 0 {
			return nil, malformed("varint")
		}
		return b[n:], nil
	case wireFixed64:
		if len(b) < 8 {
			return nil, malformed("fixed64")
		}
		return b[8:], nil
	case wireBytes:
		_, rest, err := lenDelim(b)
		return rest, err
	case wireFixed32:
		if len(b) < 4 {
			return nil, malformed("fixed32")
		}
		return b[4:], nil
	}
	return nil, malformed(fmt.Sprintf("wire type %d", wt))
}

func malformed(what string) error { return fmt.Errorf("%w: bad %s", ErrMalformed, what) }

// labelCache maps the raw protobuf bytes of a label set to its validated
// labels.Labels. It is sharded to keep concurrent requests off one lock, and
// bounded: a full shard is emptied and starts over (series churn is rare and
// a miss only costs one rebuild).
type labelCache struct {
	shards   [64]cacheShard
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[uint64]*cacheEntry
}

type cacheEntry struct {
	raw  []byte
	ls   labels.Labels
	hash uint64
	memo bus.SeriesMemo
}

func newLabelCache(max int) *labelCache {
	c := &labelCache{perShard: max/64 + 1}
	for i := range c.shards {
		c.shards[i].m = map[uint64]*cacheEntry{}
	}
	return c
}

func (c *labelCache) get(key uint64, raw []byte) *cacheEntry {
	sh := &c.shards[key%64]
	sh.mu.RLock()
	e := sh.m[key]
	sh.mu.RUnlock()
	if e != nil && bytes.Equal(e.raw, raw) {
		return e
	}
	return nil
}

func (c *labelCache) put(key uint64, raw []byte, ls labels.Labels, hash uint64) *cacheEntry {
	e := &cacheEntry{raw: bytes.Clone(raw), ls: ls, hash: hash}
	sh := &c.shards[key%64]
	sh.mu.Lock()
	if len(sh.m) >= c.perShard {
		sh.m = make(map[uint64]*cacheEntry, len(sh.m))
	}
	sh.m[key] = e
	sh.mu.Unlock()
	return e
}

// uvarint decodes a protobuf varint the way gogo/protobuf does: at most ten
// bytes, bits beyond 64 ignored. n is 0 for truncated input, -1 for overlong.
func uvarint(b []byte) (v uint64, n int) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == 10 {
			return 0, -1
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}
