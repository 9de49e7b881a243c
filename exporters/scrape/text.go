package scrape

import (
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// writeText writes mfs in the text format negotiated as format, byte for
// byte as expfmt's encoder does. Gauge, counter and untyped families whose
// metric and label names are legacy names (every family Ballast makes) are
// written here: expfmt escapes each label value through a strings.Replacer
// and checks each name against two validation schemes per series, which at
// 40 000 series was the largest part of a /metrics request, ahead of
// gathering. Other families go through expfmt.
func writeText(w io.Writer, mfs []*dto.MetricFamily, format expfmt.Format) error {
	var enc expfmt.Encoder // for the families left to expfmt, made once
	bp := textBufs.Get().(*[]byte)
	defer textBufs.Put(bp)
	b := (*bp)[:0]
	flush := func() error {
		_, err := w.Write(b)
		b = b[:0]
		return err
	}
	for _, mf := range mfs {
		if !plainFamily(mf) {
			if enc == nil {
				enc = expfmt.NewEncoder(w, format)
			}
			if err := flush(); err != nil {
				return err
			}
			if err := enc.Encode(mf); err != nil {
				return err
			}
			continue
		}
		name := mf.GetName()
		if mf.Help != nil {
			b = append(b, "# HELP "...)
			b = append(b, name...)
			b = append(b, ' ')
			b = appendEscaped(b, mf.GetHelp(), false)
			b = append(b, '\n')
		}
		b = append(b, "# TYPE "...)
		b = append(b, name...)
		typ := mf.GetType()
		switch typ {
		case dto.MetricType_COUNTER:
			b = append(b, " counter\n"...)
		case dto.MetricType_GAUGE:
			b = append(b, " gauge\n"...)
		default:
			b = append(b, " untyped\n"...)
		}
		for _, m := range mf.Metric {
			b = append(b, name...)
			for i, lp := range m.Label {
				if i == 0 {
					b = append(b, '{')
				} else {
					b = append(b, ',')
				}
				b = append(b, lp.GetName()...)
				b = append(b, '=', '"')
				b = appendEscaped(b, lp.GetValue(), true)
				b = append(b, '"')
			}
			if len(m.Label) > 0 {
				b = append(b, '}')
			}
			b = append(b, ' ')
			switch typ {
			case dto.MetricType_COUNTER:
				b = appendFloat(b, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				b = appendFloat(b, m.GetGauge().GetValue())
			default:
				b = appendFloat(b, m.GetUntyped().GetValue())
			}
			if m.TimestampMs != nil {
				b = append(b, ' ')
				b = strconv.AppendInt(b, m.GetTimestampMs(), 10)
			}
			b = append(b, '\n')
			if len(b) >= textFlushAt {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	err := flush()
	*bp = b
	return err
}

// textFlushAt is how much writeText buffers before it writes.
const textFlushAt = 32 << 10

var textBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, textFlushAt+4<<10)
	return &b
}}

// plainFamily tells whether writeText writes mf itself: a gauge, counter
// or untyped family with legacy names only (which no escaping scheme
// changes), every series of its type, as expfmt would demand.
func plainFamily(mf *dto.MetricFamily) bool {
	switch mf.GetType() {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
	default:
		return false
	}
	if len(mf.Metric) == 0 || !legacyName(mf.GetName()) {
		return false
	}
	// Label sets built by Pair share their interned names: a name already
	// checked is recognised by its pointer.
	var checked []*string
	for _, m := range mf.Metric {
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			if m.Counter == nil {
				return false
			}
		case dto.MetricType_GAUGE:
			if m.Gauge == nil {
				return false
			}
		default:
			if m.Untyped == nil {
				return false
			}
		}
		for i, lp := range m.Label {
			if i < len(checked) && lp.Name == checked[i] {
				continue
			}
			if !legacyName(lp.GetName()) {
				return false
			}
			if i < len(checked) {
				checked[i] = lp.Name
			} else {
				checked = append(checked, lp.Name)
			}
		}
	}
	return true
}

// legacyName is model.LegacyValidation.IsValidMetricName, the test expfmt
// applies to metric and label names alike.
func legacyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// appendEscaped escapes backslash and newline, and the double quote in
// label values, as expfmt does.
func appendEscaped(b []byte, s string, quote bool) []byte {
	// IndexByte is vectorised: three scans beat one loop over the bytes.
	if strings.IndexByte(s, '\\') < 0 && strings.IndexByte(s, '\n') < 0 && (!quote || strings.IndexByte(s, '"') < 0) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat formats f as expfmt does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
