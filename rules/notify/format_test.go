package notify

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestRenderTelegramHTML(t *testing.T) {
	m := testMessage(2)
	m.Alerts[1].Status = statusResolved
	m.Alerts[1].EndsAt = testNow
	text, dropped := fitMessage(m, telegramHTML, telegramMaxLen, utf16Len)
	require.Zero(t, dropped)
	require.Equal(t, `<b>[FIRING:1] HostDiskSaturated</b>
cluster=cn-1

• <b>HostDiskSaturated</b> · critical · firing since 2026-08-22 10:00 UTC
Disk IO on host-1 is saturated
sda has been 100% busy for 10m.
instance=host-1
<a href="https://runbooks.example.com/HostDiskSaturated">Runbook</a> · <a href="https://ballast.example.com/rules?id=7">Source</a>

• <b>HostDiskSaturated</b> · critical · resolved 2026-08-22 10:30 UTC
Disk IO on host-2 is saturated
sda has been 100% busy for 10m.
instance=host-2
<a href="https://runbooks.example.com/HostDiskSaturated">Runbook</a> · <a href="https://ballast.example.com/rules?id=7">Source</a>`, text)
}

func TestRenderOtherSyntaxes(t *testing.T) {
	m := testMessage(1)
	for _, tc := range []struct {
		name string
		mk   markup
		want []string
	}{
		{"markdownv2", telegramMarkdownV2, []string{
			`*\[FIRING:1\] HostDiskSaturated*`,
			`firing since 2026\-08\-22 10:00 UTC`,
			`sda has been 100% busy for 10m\.`,
			`[Runbook](https://runbooks.example.com/HostDiskSaturated)`,
		}},
		{"wecom markdown", wecomMarkdown, []string{
			`**[FIRING:1] HostDiskSaturated**`,
			`<font color="warning">firing since 2026-08-22 10:00 UTC</font>`,
			`[Source](https://ballast.example.com/rules?id=7)`,
		}},
		{"plain", plainText, []string{
			"[FIRING:1] HostDiskSaturated\ncluster=cn-1\n\n• HostDiskSaturated · critical",
			"Runbook: https://runbooks.example.com/HostDiskSaturated",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, _ := fitMessage(m, tc.mk, 4096, byteLen)
			for _, w := range tc.want {
				require.Contains(t, text, w)
			}
		})
	}

	resolved := testMessage(3)
	resolved.Status = statusResolved
	for i := range resolved.Alerts {
		resolved.Alerts[i].Status = statusResolved
	}
	text, _ := fitMessage(resolved, wecomMarkdown, 4096, byteLen)
	require.True(t, strings.HasPrefix(text, "**[RESOLVED:3] HostDiskSaturated**"))
	require.Contains(t, text, `<font color="info">resolved</font>`)
}

func TestEscaping(t *testing.T) {
	m := testMessage(1)
	a := &m.Alerts[0]
	a.Labels["instance"] = `<b>x</b> & "y"`
	a.Annotations["summary"] = "load > 5 && ptr < 0x10"
	a.Annotations["runbook_url"] = `javascript:alert(1)`
	a.GeneratorURL = `https://ballast.example.com/graph?g0.expr=a>1&x="y"`

	html, _ := fitMessage(m, telegramHTML, telegramMaxLen, utf16Len)
	require.Contains(t, html, "instance=&lt;b&gt;x&lt;/b&gt; &amp; \"y\"")
	require.Contains(t, html, "load &gt; 5 &amp;&amp; ptr &lt; 0x10")
	require.Contains(t, html, `<a href="https://ballast.example.com/graph?g0.expr=a&gt;1&amp;x=&quot;y&quot;">Source</a>`)
	require.NotContains(t, html, "javascript")
	requireBalancedHTML(t, html)

	md, _ := fitMessage(m, telegramMarkdownV2, telegramMaxLen, utf16Len)
	require.Contains(t, md, `load \> 5 && ptr < 0x10`)
	require.Contains(t, md, `instance\=<b\>x</b\> & "y"`)

	// A ")" in a MarkdownV2 link target is escaped.
	a.GeneratorURL = `https://ballast.example.com/x_(y)`
	md, _ = fitMessage(m, telegramMarkdownV2, telegramMaxLen, utf16Len)
	require.Contains(t, md, `[Source](https://ballast.example.com/x_(y\))`)
}

var htmlTagRE = regexp.MustCompile(`</?([a-z]+)[^>]*>`)

// requireBalancedHTML checks every tag is closed in order and every & starts
// an entity: what Telegram's parser insists on.
func requireBalancedHTML(t *testing.T, s string) {
	t.Helper()
	var open []string
	for _, m := range htmlTagRE.FindAllStringSubmatch(s, -1) {
		if strings.HasPrefix(m[0], "</") {
			require.NotEmpty(t, open, "close without open in %q", s)
			require.Equal(t, open[len(open)-1], m[1])
			open = open[:len(open)-1]
		} else {
			open = append(open, m[1])
		}
	}
	require.Empty(t, open)
	stripped := htmlTagRE.ReplaceAllString(s, "")
	require.NotContains(t, stripped, "<")
	require.NotContains(t, stripped, ">")
	require.NotRegexp(t, `&(?:[^aglq]|a[^m]|l[^t]|g[^t]|q[^u])`, stripped)
}

func TestFitDropsWholeAlerts(t *testing.T) {
	m := testMessage(100)
	for i := range m.Alerts {
		m.Alerts[i].Annotations["description"] = strings.Repeat("<tag> & more text ", 10)
	}
	text, dropped := fitMessage(m, telegramHTML, telegramMaxLen, utf16Len)
	require.LessOrEqual(t, utf16Len(text), telegramMaxLen)
	require.Positive(t, dropped)
	shown := strings.Count(text, "• ")
	require.Equal(t, 100, shown+dropped)
	require.True(t, strings.HasSuffix(text, fmt.Sprintf("\n\n… and %d more", dropped)), text[len(text)-40:])
	requireBalancedHTML(t, text)
	// Whole alerts: the last one shown ends with its links.
	require.Contains(t, text, fmt.Sprintf("Disk IO on host-%d is saturated", shown))
	require.NotContains(t, text, fmt.Sprintf("Disk IO on host-%d is saturated", shown+1))

	// The rest of the room was used: one more alert would not fit.
	blocks := render(m, telegramHTML, false).blocks
	require.Greater(t, utf16Len(text)-utf16Len(more(telegramHTML, dropped))+utf16Len(blocks[shown])+utf16Len(more(telegramHTML, dropped-1)), telegramMaxLen)
}

func TestFitCountsAstralRunesTwice(t *testing.T) {
	m := testMessage(40)
	for i := range m.Alerts {
		m.Alerts[i].Annotations["description"] = strings.Repeat("🔥", 100)
	}
	text, dropped := fitMessage(m, telegramHTML, telegramMaxLen, utf16Len)
	require.Positive(t, dropped)
	require.LessOrEqual(t, utf16Len(text), telegramMaxLen)
	require.Greater(t, utf16Len(text), utf8.RuneCountInString(text))
}

func TestFitWeComCJK(t *testing.T) {
	cjk := strings.Repeat("磁盘读写饱和", 40) // 240 runes, 720 bytes
	m := testMessage(30)
	for i := range m.Alerts {
		m.Alerts[i].Annotations["description"] = cjk
		m.Alerts[i].Annotations["summary"] = fmt.Sprintf("主机 host-%d 磁盘繁忙", i+1)
	}
	for _, tc := range []struct {
		messageType string
		limit       int
	}{
		{MessageTypeText, 2048},
		{MessageTypeMarkdown, 4096},
	} {
		t.Run(tc.messageType, func(t *testing.T) {
			content, dropped := fitWeCom(m, tc.messageType)
			require.LessOrEqual(t, len(content), tc.limit)
			require.Greater(t, len(content), tc.limit/2, "room left unused")
			require.True(t, utf8.ValidString(content))
			require.Positive(t, dropped)
			require.True(t, strings.HasSuffix(content, fmt.Sprintf("… and %d more", dropped)))
			require.Equal(t, 30, strings.Count(content, "• ")+dropped)
			// More runes than a rune-counting limit would allow are never sent.
			require.Less(t, utf8.RuneCountInString(content), tc.limit)
		})
	}
}

func TestFitOneHugeAlertGoesCompact(t *testing.T) {
	m := testMessage(1)
	m.Alerts[0].Annotations["description"] = strings.Repeat("描述", 5000)
	for i := 0; i < 200; i++ {
		m.Alerts[0].Labels[fmt.Sprintf("label_%03d", i)] = strings.Repeat("值", 50)
	}
	for _, tc := range []struct {
		name  string
		mk    markup
		limit int
		size  func(string) int
	}{
		{"telegram html", telegramHTML, telegramMaxLen, utf16Len},
		{"telegram markdownv2", telegramMarkdownV2, telegramMaxLen, utf16Len},
		{"wecom text", plainText, wecomTextMaxBytes, byteLen},
		{"wecom markdown", wecomMarkdown, wecomMarkdownMaxBytes, byteLen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, dropped := fitMessage(m, tc.mk, tc.limit, tc.size)
			require.Zero(t, dropped)
			require.LessOrEqual(t, tc.size(text), tc.limit)
			require.Contains(t, text, "HostDiskSaturated")
			require.Contains(t, text, "is saturated")
			require.NotContains(t, text, "label_000", "the compact form leaves labels out")
		})
	}
}

func TestFitLastResortIsTheTitle(t *testing.T) {
	m := testMessage(3)
	text, dropped := fitMessage(m, telegramHTML, 60, utf16Len)
	require.Equal(t, 3, dropped)
	require.Equal(t, "<b>[FIRING:3] HostDiskSaturated</b>\n\n… and 3 more", text)
}

func TestFitWeComCutsOnRuneBoundary(t *testing.T) {
	// A group name is clipped to 64 runes, but a receiver could in theory
	// make the title alone exceed a limit; fitWeCom still cuts safely.
	m := &Message{Receiver: strings.Repeat("组", 3000), Status: statusFiring}
	content, _ := fitWeCom(m, MessageTypeText)
	require.LessOrEqual(t, len(content), wecomTextMaxBytes)
	require.True(t, utf8.ValidString(content))
}

func TestStateAndSummary(t *testing.T) {
	a := Alert{Annotations: map[string]string{"message": "m", "description": "d"}}
	require.Equal(t, "firing", stateText(a))
	require.Equal(t, "m", summaryOf(a))
	a.Status = statusResolved
	require.Equal(t, "resolved", stateText(a))
	require.Equal(t, "d", summaryOf(Alert{Annotations: map[string]string{"description": " d "}}))
	require.Equal(t, "", summaryOf(Alert{}))

	// A message with no alerts still renders its title.
	text, dropped := fitMessage(&Message{Receiver: "ops"}, plainText, 100, byteLen)
	require.Equal(t, "[RESOLVED:0] ops", text)
	require.Zero(t, dropped)
}
