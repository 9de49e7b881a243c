package prw

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// AppendWriteRequest appends the protobuf encoding of b as a
// prometheus.WriteRequest to dst and returns the extended slice.
func AppendWriteRequest(dst []byte, b *bus.SampleBatch) []byte {
	for i := range b.Series {
		dst = AppendTimeSeries(dst, &b.Series[i])
	}
	return dst
}

// AppendTimeSeries appends one WriteRequest.timeseries field (tag 1) holding s.
// Concatenated outputs form a valid WriteRequest, which lets producers split
// a batch into several messages without re-encoding.
func AppendTimeSeries(dst []byte, s *bus.Series) []byte {
	// The body is written first, behind room for its length sized from an
	// estimate (the labels' byte size, 20 bytes per sample), and moved only
	// when the length turns out to need another width: one walk over the
	// labels, not two, and the same bytes as sizing first.
	guess := uvarintSize(s.Labels.ByteSize() + 20*uint64(len(s.Samples)))
	dst = append(dst, 0x0a)
	at := len(dst)
	dst = append(dst, make([]byte, guess)...)
	s.Labels.Range(func(l labels.Label) {
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(labelSize(l)))
		dst = appendString(dst, 0x0a, l.Name)
		dst = appendString(dst, 0x12, l.Value)
	})
	for _, smp := range s.Samples {
		dst = append(dst, 0x12)
		dst = binary.AppendUvarint(dst, uint64(sampleSize(smp)))
		dst = append(dst, 0x09)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(smp.V))
		if smp.T != 0 {
			dst = append(dst, 0x10)
			dst = binary.AppendUvarint(dst, uint64(smp.T))
		}
	}
	n := len(dst) - at - guess
	switch w := uvarintSize(uint64(n)); {
	case w < guess:
		copy(dst[at+w:], dst[at+guess:])
		dst = dst[:len(dst)-(guess-w)]
	case w > guess:
		end := len(dst)
		dst = append(dst, make([]byte, w-guess)...)
		copy(dst[at+w:], dst[at+guess:end])
	}
	binary.PutUvarint(dst[at:], uint64(n))
	return dst
}

// TimeSeriesSize is the encoded size of AppendTimeSeries(nil, s).
func TimeSeriesSize(s *bus.Series) int {
	n := timeSeriesSize(s)
	return 1 + uvarintSize(uint64(n)) + n
}

// EncodeSnappy returns the snappy-compressed WriteRequest for b, the body of a
// remote-write request.
func EncodeSnappy(b *bus.SampleBatch) []byte {
	raw := AppendWriteRequest(nil, b)
	return s2.EncodeSnappy(nil, raw)
}

func timeSeriesSize(s *bus.Series) int {
	n := 0
	s.Labels.Range(func(l labels.Label) {
		ls := labelSize(l)
		n += 1 + uvarintSize(uint64(ls)) + ls
	})
	for _, smp := range s.Samples {
		ss := sampleSize(smp)
		n += 1 + uvarintSize(uint64(ss)) + ss
	}
	return n
}

func labelSize(l labels.Label) int {
	return 2 + uvarintSize(uint64(len(l.Name))) + len(l.Name) + uvarintSize(uint64(len(l.Value))) + len(l.Value)
}

func sampleSize(s bus.Sample) int {
	n := 9
	if s.T != 0 {
		n += 1 + uvarintSize(uint64(s.T))
	}
	return n
}

func appendString(dst []byte, tag byte, s string) []byte {
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// unsafeString views b as a string without copying; the caller must not keep
// it beyond b's lifetime.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
