package notify

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// markup renders the few styles a chat message uses for one syntax. Every
// piece of text, literal or from an alert, goes through escape before it is
// styled, so label values cannot break the syntax (Telegram rejects a whole
// message with "can't parse entities" otherwise).
type markup struct {
	escape func(string) string
	// bold and status style text that is already escaped.
	bold   func(string) string
	status func(firing bool, s string) string
	// link styles escaped text pointing at a raw http(s) URL.
	link func(text, href string) string
}

var (
	htmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	htmlAttr = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	// Telegram MarkdownV2 wants each of these escaped outside entities.
	markdownV2Text = strings.NewReplacer(`\`, `\\`, "_", `\_`, "*", `\*`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`,
		"~", `\~`, "`", "\\`", ">", `\>`, "#", `\#`, "+", `\+`, "-", `\-`, "=", `\=`, "|", `\|`, "{", `\{`, "}", `\}`,
		".", `\.`, "!", `\!`)
	markdownV2URL = strings.NewReplacer(`\`, `\\`, ")", `\)`)
)

func same(s string) string                  { return s }
func sameStatus(_ bool, s string) string    { return s }
func plainLink(text, href string) string    { return text + ": " + href }
func markdownLink(text, href string) string { return "[" + text + "](" + href + ")" }

var (
	telegramHTML = markup{
		escape: htmlText.Replace,
		bold:   func(s string) string { return "<b>" + s + "</b>" },
		status: sameStatus,
		link:   func(text, href string) string { return `<a href="` + htmlAttr.Replace(href) + `">` + text + "</a>" },
	}
	telegramMarkdownV2 = markup{
		escape: markdownV2Text.Replace,
		bold:   func(s string) string { return "*" + s + "*" },
		status: sameStatus,
		link:   func(text, href string) string { return "[" + text + "](" + markdownV2URL.Replace(href) + ")" },
	}
	// wecomMarkdown is WeChat Work's markdown subset; it has no escapes, and
	// colours text with <font color="info|comment|warning">.
	wecomMarkdown = markup{
		escape: same,
		bold:   func(s string) string { return "**" + s + "**" },
		status: func(firing bool, s string) string {
			color := "info"
			if firing {
				color = "warning"
			}
			return `<font color="` + color + `">` + s + "</font>"
		},
		link: markdownLink,
	}
	plainText = markup{escape: same, bold: same, status: sameStatus, link: plainLink}
)

// Rune caps on each value (label, annotation) in the full and compact
// renderings; the compact one is small enough that one alert always fits the
// smallest limit (2048 bytes).
const (
	fullValueRunes    = 512
	compactValueRunes = 100
	titleRunes        = 64
)

// clip makes s valid UTF-8 (so byte counts match what is sent) and cuts it to
// at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n-1 {
			return s[:i] + "…"
		}
		count++
	}
	return s
}

// layout is a rendered message: a header and one block per alert, each
// block starting with its own separator so blocks can be dropped whole.
type layout struct {
	header string
	blocks []string
}

// title is "[FIRING:2] HostDown" or "[RESOLVED:1] HostDown".
func title(m *Message) string {
	firing, resolved := m.counts()
	var tag string
	if m.status() == statusFiring {
		tag = fmt.Sprintf("[FIRING:%d]", firing)
	} else {
		tag = fmt.Sprintf("[RESOLVED:%d]", resolved)
	}
	if name := groupName(m); name != "" {
		return tag + " " + clip(name, titleRunes)
	}
	return tag
}

// groupName names the group: its alertname if shared, else the receiver.
func groupName(m *Message) string {
	if n := m.CommonLabels["alertname"]; n != "" {
		return n
	}
	if n := m.GroupLabels["alertname"]; n != "" {
		return n
	}
	if len(m.Alerts) == 1 {
		return m.Alerts[0].Labels["alertname"]
	}
	return m.Receiver
}

// render lays m out. The compact form keeps, per alert, only its name,
// severity, state and summary, with shorter caps.
func render(m *Message, mk markup, compact bool) layout {
	valueCap := fullValueRunes
	if compact {
		valueCap = compactValueRunes
	}
	esc := func(s string) string { return mk.escape(clip(s, valueCap)) }

	var h strings.Builder
	h.WriteString(mk.bold(mk.escape(title(m))))
	if !compact {
		if gl := labelList(m.GroupLabels, valueCap, "alertname"); gl != "" {
			h.WriteString("\n")
			h.WriteString(mk.escape(gl))
		}
	}

	blocks := make([]string, 0, len(m.Alerts))
	for _, a := range m.Alerts {
		var b strings.Builder
		b.WriteString("\n\n")
		b.WriteString(mk.escape("• "))
		b.WriteString(mk.bold(esc(orDefault(a.Labels["alertname"], "alert"))))
		if sev := a.Labels["severity"]; sev != "" {
			b.WriteString(mk.escape(" · "))
			b.WriteString(esc(sev))
		}
		b.WriteString(mk.escape(" · "))
		firing := a.Status != statusResolved
		b.WriteString(mk.status(firing, mk.escape(stateText(a))))
		summary := summaryOf(a)
		if summary != "" {
			b.WriteString("\n")
			b.WriteString(esc(summary))
		}
		if !compact {
			if d := a.Annotations["description"]; d != "" && d != summary {
				b.WriteString("\n")
				b.WriteString(esc(d))
			}
			skip := []string{"alertname", "severity"}
			for k := range m.GroupLabels {
				skip = append(skip, k)
			}
			if ll := labelList(a.Labels, valueCap, skip...); ll != "" {
				b.WriteString("\n")
				b.WriteString(mk.escape(ll))
			}
			var links []string
			if u := webURL(a.Annotations["runbook_url"]); u != "" {
				links = append(links, mk.link(mk.escape("Runbook"), u))
			}
			if u := webURL(a.GeneratorURL); u != "" {
				links = append(links, mk.link(mk.escape("Source"), u))
			}
			if len(links) > 0 {
				b.WriteString("\n")
				b.WriteString(strings.Join(links, mk.escape(" · ")))
			}
		}
		blocks = append(blocks, b.String())
	}
	return layout{header: h.String(), blocks: blocks}
}

// stateText is "firing since 2026-08-22 10:00 UTC" or "resolved …".
func stateText(a Alert) string {
	const layout = "2006-01-02 15:04 UTC"
	if a.Status == statusResolved {
		if !a.EndsAt.IsZero() {
			return "resolved " + a.EndsAt.UTC().Format(layout)
		}
		return "resolved"
	}
	if !a.StartsAt.IsZero() {
		return "firing since " + a.StartsAt.UTC().Format(layout)
	}
	return "firing"
}

// summaryOf is the alert's one-line summary: summary, message or, failing
// those, description.
func summaryOf(a Alert) string {
	for _, k := range []string{"summary", "message", "description"} {
		if v := strings.TrimSpace(a.Annotations[k]); v != "" {
			return v
		}
	}
	return ""
}

// labelList is "k=v, k=v" sorted by name, without the skipped names.
func labelList(labels map[string]string, valueCap int, skip ...string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if !contains(skip, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = clip(k, titleRunes) + "=" + clip(labels[k], valueCap)
	}
	return strings.Join(parts, ", ")
}

// webURL returns s if it is an absolute http(s) URL, else "" (a link to
// anything else is either useless or hostile).
func webURL(s string) string {
	if len(s) > 2048 || validURL(s) != nil || !utf8.ValidString(s) {
		return ""
	}
	return s
}

// more is the line that replaces dropped alerts.
func more(mk markup, n int) string {
	return "\n\n" + mk.escape(fmt.Sprintf("… and %d more", n))
}

// fit joins the header and the most whole alert blocks whose total size,
// with a "… and N more" line for the rest, is within limit. ok is false when
// not even one alert fits.
func (l layout) fit(mk markup, limit int, size func(string) int) (text string, shown int, ok bool) {
	n := len(l.blocks)
	used := size(l.header)
	if n == 0 {
		return l.header, 0, used <= limit
	}
	best := 0
	for k := 1; k <= n; k++ {
		used += size(l.blocks[k-1])
		total := used
		if k < n {
			total += size(more(mk, n-k))
		}
		if total <= limit {
			best = k
		}
		if used > limit {
			break
		}
	}
	if best == 0 {
		return "", 0, false
	}
	var b strings.Builder
	b.WriteString(l.header)
	for _, blk := range l.blocks[:best] {
		b.WriteString(blk)
	}
	if best < n {
		b.WriteString(more(mk, n-best))
	}
	return b.String(), best, true
}

// fitMessage renders m within limit: whole alerts are dropped from the end
// first, then the compact form is tried, and as a last resort only the title
// is sent. It never cuts inside markup. dropped counts alerts left out.
func fitMessage(m *Message, mk markup, limit int, size func(string) int) (text string, dropped int) {
	for _, compact := range []bool{false, true} {
		if text, shown, ok := render(m, mk, compact).fit(mk, limit, size); ok {
			return text, len(m.Alerts) - shown
		}
	}
	text = mk.bold(mk.escape(title(m)))
	if n := len(m.Alerts); n > 0 {
		text += more(mk, n)
	}
	return text, len(m.Alerts)
}

// utf16Len counts UTF-16 code units, Telegram's measure of message length;
// it is never less than the rune count.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func byteLen(s string) int { return len(s) }
