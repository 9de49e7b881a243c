package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// smsMaxRunes caps a free-text SMS: one GSM-7 segment, so a page costs one
// message where the alphabet allows.
const smsMaxRunes = 160

// targetLabels name what an alert is about, in order of preference.
var targetLabels = []string{"instance", "host", "hostname", "node", "domain", "ceph_daemon", "pool", "job"}

// NewSMS returns the notifier of cfg's provider: *Twilio, *AliyunSMS or
// *TencentSMS.
func NewSMS(cfg SMSConfig, client *http.Client, logger *slog.Logger) (Notifier, error) {
	switch cfg.Provider {
	case ProviderTwilio:
		return NewTwilio(cfg, client, logger)
	case ProviderAliyun:
		return NewAliyunSMS(cfg, client, logger)
	case ProviderTencent:
		return NewTencentSMS(cfg, client, logger)
	}
	return nil, cfg.Validate()
}

// smsFields are what an SMS says about a message: its lead alert (the
// first firing one) and how many others there are.
type smsFields struct {
	status    string
	severity  string
	alertname string
	target    string
	summary   string
	count     int
}

func smsFieldsOf(m *Message) smsFields {
	f := smsFields{status: m.status(), count: len(m.Alerts)}
	var lead Alert
	for i, a := range m.Alerts {
		if i == 0 || (a.Status != statusResolved && lead.Status == statusResolved) {
			lead = a
		}
	}
	labels := func(k string) string {
		if v := lead.Labels[k]; v != "" {
			return v
		}
		return m.CommonLabels[k]
	}
	f.severity = labels("severity")
	f.alertname = orDefault(labels("alertname"), groupName(m))
	for _, k := range targetLabels {
		if v := labels(k); v != "" {
			f.target = v
			break
		}
	}
	f.summary = summaryOf(lead)
	if f.summary == "" {
		f.summary = summaryOf(Alert{Annotations: m.CommonAnnotations})
	}
	return f
}

// text is the free-text SMS:
// "[CRITICAL] HostDown host-1: Disk full (+2 more)", "[RESOLVED] HostDown host-1".
func (f smsFields) text() string {
	tag := "[RESOLVED]"
	if f.status == statusFiring {
		tag = "[FIRING]"
		if f.severity != "" {
			tag = "[" + strings.ToUpper(clip(f.severity, 16)) + "]"
		}
	}
	head := tag + " " + clip(f.alertname, 48)
	if f.target != "" {
		head += " " + clip(f.target, 48)
	}
	tail := ""
	if f.count > 1 {
		tail = fmt.Sprintf(" (+%d more)", f.count-1)
	}
	text := head
	if f.summary != "" {
		room := smsMaxRunes - runeLen(head) - runeLen(tail) - len(": ")
		if room > 1 {
			text += ": " + clip(strings.Join(strings.Fields(f.summary), " "), room)
		}
	}
	return clip(text+tail, smsMaxRunes)
}

func runeLen(s string) int { return len([]rune(s)) }

// param is the value of a template variable, capped; providers reject empty
// variables, so an unknown value is "-".
func (f smsFields) param(name string, maxRunes int) string {
	var v string
	switch name {
	case "status":
		v = f.status
	case "severity":
		v = f.severity
	case "alertname":
		v = f.alertname
	case "target":
		v = f.target
	case "summary":
		v = strings.Join(strings.Fields(f.summary), " ")
	case "count":
		v = strconv.Itoa(f.count)
	}
	if v == "" {
		return "-"
	}
	return clip(v, maxRunes)
}

// templateParams returns the configured variable names and rune cap, with
// defaults.
func templateParams(cfg SMSConfig) ([]string, int) {
	names := cfg.TemplateParams
	if len(names) == 0 {
		names = DefaultTemplateParams
	}
	maxRunes := cfg.ParamMaxRunes
	if maxRunes == 0 {
		maxRunes = DefaultParamMaxRunes
	}
	return names, maxRunes
}

// delivered remembers, per message, the numbers already reached, so that
// the dispatcher's retry after a partial failure pages only the others.
type delivered struct {
	mu   sync.Mutex
	sent map[string]map[string]bool
}

// deliveredKeys bounds the memory; messages are retried for minutes, so a
// few hundred in flight is plenty.
const deliveredKeys = 256

// messageKey identifies a message by its group and content.
func messageKey(m *Message, content string) string {
	sum := sha256.Sum256([]byte(m.GroupKey + "\x00" + content))
	return hex.EncodeToString(sum[:])
}

// pending returns the numbers of to not yet reached for key.
func (d *delivered) pending(key string, to []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, n := range to {
		if !d.sent[key][n] {
			out = append(out, n)
		}
	}
	return out
}

func (d *delivered) mark(key string, numbers ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sent == nil {
		d.sent = make(map[string]map[string]bool)
	}
	if d.sent[key] == nil {
		if len(d.sent) >= deliveredKeys {
			for k := range d.sent { // forget an arbitrary old message
				delete(d.sent, k)
				break
			}
		}
		d.sent[key] = make(map[string]bool)
	}
	for _, n := range numbers {
		d.sent[key][n] = true
	}
}

// done forgets key once every number has been reached.
func (d *delivered) done(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sent, key)
}
