package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const (
	testTwilioToken   = "twilio-auth-token-0123456789abcdef"
	testAliyunSecret  = "aliyun-secret-Kx/9+w"
	testTencentSecret = "tencent-secret-Gu5t9xGARNpq86cd98"
)

func TestSMSText(t *testing.T) {
	one := testMessage(1)
	three := testMessage(3)
	three.Alerts[0].Status = statusResolved // the lead is the first firing alert

	resolved := testMessage(1)
	resolved.Status = statusResolved
	resolved.Alerts[0].Status = statusResolved

	bare := &Message{Status: statusFiring, Receiver: "ops", Alerts: []Alert{{Labels: map[string]string{"alertname": "Watchdog"}}}}

	long := testMessage(1)
	long.Alerts[0].Annotations["summary"] = strings.Repeat("word ", 100)

	cjk := testMessage(2)
	cjk.Alerts[0].Labels["severity"] = "严重"
	cjk.Alerts[0].Annotations["summary"] = "主机磁盘读写饱和\n请检查"

	for _, tc := range []struct {
		name string
		m    *Message
		want string
	}{
		{"one", one, "[CRITICAL] HostDiskSaturated host-1: Disk IO on host-1 is saturated"},
		{"lead is firing", three, "[CRITICAL] HostDiskSaturated host-2: Disk IO on host-2 is saturated (+2 more)"},
		{"resolved", resolved, "[RESOLVED] HostDiskSaturated host-1: Disk IO on host-1 is saturated"},
		{"bare", bare, "[FIRING] Watchdog"},
		{"cjk", cjk, "[严重] HostDiskSaturated host-1: 主机磁盘读写饱和 请检查 (+1 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, smsFieldsOf(tc.m).text())
		})
	}
	text := smsFieldsOf(long).text()
	require.Equal(t, smsMaxRunes, utf8.RuneCountInString(text))
	require.True(t, strings.HasPrefix(text, "[CRITICAL] HostDiskSaturated host-1: word word"))
	require.True(t, strings.HasSuffix(text, "…"))

	f := smsFieldsOf(cjk)
	require.Equal(t, "严重", f.param("severity", 20))
	require.Equal(t, "主机磁盘…", f.param("summary", 5))
	require.Equal(t, "2", f.param("count", 20))
	require.Equal(t, "firing", f.param("status", 20))
	require.Equal(t, "-", smsFieldsOf(bare).param("target", 20))
}

func TestTwilioRequest(t *testing.T) {
	srv := newRecorder(t, replyWith(201, `{"sid":"SM123","status":"queued"}`))
	tw, err := NewTwilio(SMSConfig{
		Provider: ProviderTwilio, URL: srv.URL, AccountSID: "AC0123", AuthToken: testTwilioToken,
		From: "+15550006666", To: []string{"+8613800001111", "+15551234567"},
	}, srv.Client(), nil)
	require.NoError(t, err)
	retry, err := tw.Notify(context.Background(), testMessage(1))
	require.NoError(t, err)
	require.False(t, retry)

	reqs := srv.requests()
	require.Len(t, reqs, 2, "one request per number")
	for i, to := range []string{"+8613800001111", "+15551234567"} {
		r := reqs[i]
		require.Equal(t, "POST", r.Method)
		require.Equal(t, "/2010-04-01/Accounts/AC0123/Messages.json", r.Path)
		require.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
		hr := &http.Request{Header: r.Header}
		user, pass, ok := hr.BasicAuth()
		require.True(t, ok)
		require.Equal(t, "AC0123", user)
		require.Equal(t, testTwilioToken, pass)
		form, err := url.ParseQuery(string(r.Body))
		require.NoError(t, err)
		require.Equal(t, url.Values{
			"To":   {to},
			"From": {"+15550006666"},
			"Body": {"[CRITICAL] HostDiskSaturated host-1: Disk IO on host-1 is saturated"},
		}, form)
	}

	// A messaging service replaces From.
	tw, err = NewTwilio(SMSConfig{Provider: ProviderTwilio, URL: srv.URL, AccountSID: "AC0123", AuthToken: testTwilioToken,
		MessagingServiceSID: "MG9", To: []string{"+15551234567"}}, srv.Client(), nil)
	require.NoError(t, err)
	_, err = tw.Notify(context.Background(), testMessage(1))
	require.NoError(t, err)
	form, err := url.ParseQuery(string(srv.requests()[2].Body))
	require.NoError(t, err)
	require.Equal(t, "MG9", form.Get("MessagingServiceSid"))
	require.Empty(t, form.Get("From"))
}

func TestTwilioRetriesOnlyTheFailedNumbers(t *testing.T) {
	var failures atomic.Int32
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		form, _ := url.ParseQuery(readBody(r))
		if form.Get("To") == "+15550000002" && failures.Add(1) == 1 {
			w.WriteHeader(500)
			return
		}
		w.WriteHeader(201)
	})
	tw, err := NewTwilio(SMSConfig{Provider: ProviderTwilio, URL: srv.URL, AccountSID: "AC1", AuthToken: testTwilioToken,
		From: "+15550006666", To: []string{"+15550000001", "+15550000002", "+15550000003"}}, srv.Client(), nil)
	require.NoError(t, err)
	m := testMessage(1)
	retry, err := tw.Notify(context.Background(), m)
	require.True(t, retry)
	require.ErrorContains(t, err, "sms twilio: to +15550000002: HTTP 500")

	retry, err = tw.Notify(context.Background(), m)
	require.NoError(t, err)
	require.False(t, retry)
	var to []string
	for _, r := range srv.requests() {
		form, err := url.ParseQuery(string(r.Body))
		require.NoError(t, err)
		to = append(to, form.Get("To"))
	}
	require.Equal(t, []string{"+15550000001", "+15550000002", "+15550000003", "+15550000002"}, to)

	// Once delivered everywhere, the same message is a new page again.
	_, err = tw.Notify(context.Background(), m)
	require.NoError(t, err)
	require.Len(t, srv.requests(), 7)
}

func readBody(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestTwilioErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		headers  []string
		retry    bool
		after    time.Duration
		wantErr  string
		requests int
	}{
		{name: "bad number", status: 400, body: `{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","status":400}`,
			wantErr: "error 21211: The 'To' number +1555 is not a valid phone number. (HTTP 400)", requests: 2},
		{name: "auth", status: 401, body: `{"code":20003,"message":"Authenticate","status":401}`, wantErr: "error 20003: Authenticate (HTTP 401)", requests: 2},
		{name: "rate limit stops the round", status: 429, body: `{"code":20429,"message":"Too Many Requests"}`, headers: []string{"Retry-After", "2"},
			retry: true, after: 2 * time.Second, wantErr: "error 20429", requests: 1},
		{name: "server", status: 503, body: "unavailable", retry: true, wantErr: "HTTP 503 Service Unavailable: unavailable", requests: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(tc.status, tc.body, tc.headers...))
			tw, err := NewTwilio(SMSConfig{Provider: ProviderTwilio, URL: srv.URL, AccountSID: "AC1", AuthToken: testTwilioToken,
				From: "+15550006666", To: []string{"+15550000001", "+15550000002"}}, srv.Client(), nil)
			require.NoError(t, err)
			tw.now = fixedNow
			retry, err := tw.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			require.ErrorContains(t, err, tc.wantErr)
			require.Len(t, srv.requests(), tc.requests)
			var ra *RetryAfterError
			if tc.after > 0 {
				requireRetryAfter(t, err, tc.after)
			} else {
				require.False(t, errors.As(err, &ra))
			}
		})
	}
}

// TestAliyunSignatureKnownVectors checks the RPC v1 signature against the
// examples published in Alibaba Cloud's documentation (the SMS "HTTP
// protocol and signature" page and the ECS signature page); both were
// recomputed independently with Python's hmac module.
func TestAliyunSignatureKnownVectors(t *testing.T) {
	sms := url.Values{
		"AccessKeyId": {"testId"}, "Action": {"SendSms"}, "Format": {"XML"}, "OutId": {"123"},
		"PhoneNumbers": {"15300000001"}, "RegionId": {"cn-hangzhou"}, "SignName": {"阿里云短信测试专用"},
		"SignatureMethod": {"HMAC-SHA1"}, "SignatureNonce": {"45e25e9b-0a6f-4070-8c85-2956eda1b466"},
		"SignatureVersion": {"1.0"}, "TemplateCode": {"SMS_71390007"}, "TemplateParam": {`{"customer":"test"}`},
		"Timestamp": {"2017-07-12T02:42:19Z"}, "Version": {"2017-05-25"},
	}
	canonical := aliyunCanonicalQuery(sms)
	require.Equal(t, "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou"+
		"&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"+
		"&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"+
		"&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25",
		canonical)
	require.Equal(t, "zJDF+Lrzhj/ThnlvIToysFRq6t4=", aliyunSignature("testSecret", aliyunStringToSign("GET", canonical)))

	ecs := url.Values{
		"AccessKeyId": {"testid"}, "Action": {"DescribeRegions"}, "Format": {"XML"}, "SignatureMethod": {"HMAC-SHA1"},
		"SignatureNonce": {"3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"}, "SignatureVersion": {"1.0"},
		"Timestamp": {"2016-02-23T12:46:24Z"}, "Version": {"2014-05-26"},
	}
	sts := aliyunStringToSign("GET", aliyunCanonicalQuery(ecs))
	require.Equal(t, "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1"+
		"%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z"+
		"%26Version%3D2014-05-26", sts)
	require.Equal(t, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=", aliyunSignature("testsecret", sts))
}

func TestAliyunEncode(t *testing.T) {
	require.Equal(t, "a%20b%2Ac~d%2B%2F%3D%26", aliyunEncode("a b*c~d+/=&"))
	require.Equal(t, "-_.~AZaz09", aliyunEncode("-_.~AZaz09"))
	require.Equal(t, "%E5%91%8A", aliyunEncode("告"))
}

func newTestAliyun(t *testing.T, srv *recorder) *AliyunSMS {
	t.Helper()
	a, err := NewAliyunSMS(SMSConfig{
		Provider: ProviderAliyun, URL: srv.URL + "/", AccessKeyID: "LTAI-test", AccessKeySecret: testAliyunSecret,
		SignName: "巴拉斯特", TemplateCode: "SMS_123456", To: []string{"+8613800001111", "+85261234567"},
		TemplateParams: []string{"severity", "alertname", "target", "summary", "count"}, ParamMaxRunes: 12,
	}, srv.Client(), nil)
	require.NoError(t, err)
	a.now = fixedNow
	a.nonce = func() string { return "nonce-1" }
	return a
}

func TestAliyunRequest(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		// The server verifies the signature the way Aliyun does: over every
		// parameter but Signature, with the shared secret.
		form, err := url.ParseQuery(readBody(r))
		if err != nil {
			w.WriteHeader(400)
			return
		}
		got := form.Get("Signature")
		form.Del("Signature")
		if got != aliyunSignature(testAliyunSecret, aliyunStringToSign(r.Method, aliyunCanonicalQuery(form))) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation."}`))
			return
		}
		_, _ = w.Write([]byte(`{"Code":"OK","Message":"OK","BizId":"9006197469364984^0","RequestId":"F655A8D5-B967-440B-8683-DAD6FF8DE990"}`))
	})
	a := newTestAliyun(t, srv)
	m := testMessage(2)
	m.Alerts[0].Annotations["summary"] = "主机 host-1 磁盘读写饱和，请尽快处理"
	retry, err := a.Notify(context.Background(), m)
	require.NoError(t, err)
	require.False(t, retry)

	r := srv.requests()[0]
	require.Equal(t, "POST", r.Method)
	require.Equal(t, "/", r.Path)
	require.Equal(t, "application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	form, err := url.ParseQuery(string(r.Body))
	require.NoError(t, err)
	sig := form.Get("Signature")
	require.NotEmpty(t, sig)
	form.Del("Signature")
	require.Equal(t, url.Values{
		"AccessKeyId":      {"LTAI-test"},
		"Action":           {"SendSms"},
		"Format":           {"JSON"},
		"PhoneNumbers":     {"8613800001111,85261234567"},
		"RegionId":         {"cn-hangzhou"},
		"SignName":         {"巴拉斯特"},
		"SignatureMethod":  {"HMAC-SHA1"},
		"SignatureNonce":   {"nonce-1"},
		"SignatureVersion": {"1.0"},
		"TemplateCode":     {"SMS_123456"},
		"TemplateParam":    {`{"alertname":"HostDiskSat…","count":"2","severity":"critical","summary":"主机 host-1 磁…","target":"host-1"}`},
		"Timestamp":        {"2026-08-22T10:30:00Z"},
		"Version":          {"2017-05-25"},
	}, form)
	// Recompute the string to sign by hand from the documented rules.
	// The body is the canonical query then the signature, so the string to
	// sign can be rebuilt from it by the documented rule.
	canonical, _, ok := strings.Cut(string(r.Body), "&Signature=")
	require.True(t, ok)
	sts := "POST&%2F&" + strings.NewReplacer("%", "%25", "&", "%26", "=", "%3D").Replace(canonical)
	require.Equal(t, sts, aliyunStringToSign("POST", aliyunCanonicalQuery(form)))
}

func TestAliyunErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		retry   bool
		wantErr string
	}{
		{"flow control", 200, `{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控Permits:1","RequestId":"R1"}`, true,
			"sms aliyun: isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1 (HTTP 200, request R1)"},
		{"throttling", 400, `{"Code":"Throttling.User","Message":"Request was denied due to user flow control."}`, true, "Throttling.User"},
		{"system error", 200, `{"Code":"isp.SYSTEM_ERROR","Message":"system error"}`, true, "isp.SYSTEM_ERROR"},
		{"bad number", 200, `{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"invalid mobile number"}`, false, "isv.MOBILE_NUMBER_ILLEGAL"},
		{"bad template", 200, `{"Code":"isv.SMS_TEMPLATE_ILLEGAL","Message":"template illegal"}`, false, "isv.SMS_TEMPLATE_ILLEGAL"},
		{"bad signature", 400, `{"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation."}`, false, "SignatureDoesNotMatch"},
		{"no balance", 200, `{"Code":"isv.AMOUNT_NOT_ENOUGH","Message":"account balance not enough"}`, false, "isv.AMOUNT_NOT_ENOUGH"},
		{"gateway", 502, "<html>", true, "sms aliyun: unreadable reply: HTTP 502 Bad Gateway: <html>"},
		{"unreadable 200", 200, "{}", false, "unreadable reply: HTTP 200 OK: {}"},
		{"OK but 500", 500, `{"Code":"OK"}`, true, "OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(tc.status, tc.body))
			a := newTestAliyun(t, srv)
			retry, err := a.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// TestTC3KnownVector checks TC3-HMAC-SHA256 against the worked example of
// Tencent Cloud's signature v3 documentation (CVM DescribeInstances);
// payload hash, canonical request hash and signature were recomputed
// independently with Python's hashlib/hmac.
func TestTC3KnownVector(t *testing.T) {
	payload := []byte(`{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`)
	ts := time.Unix(1551113065, 0)
	canonical := tc3CanonicalRequest("cvm.tencentcloudapi.com", "application/json; charset=utf-8", payload)
	require.Equal(t, "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n"+
		"35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064", canonical)
	sts := tc3StringToSign(ts, "cvm", canonical)
	require.Equal(t, "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"+
		"5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", sts)
	require.Equal(t, "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
		tc3Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "2019-02-25", "cvm", sts))
	require.Equal(t, "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "+
		"SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
		tc3Authorization("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm",
			"cvm.tencentcloudapi.com", "application/json; charset=utf-8", payload, ts))
}

// verifyTC3 is the server side of TC3: it rebuilds the signature from the
// request with its own HMAC chain and the shared secret.
func verifyTC3(r *http.Request, body []byte, secretKey string) bool {
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil {
		return false
	}
	date := time.Unix(ts, 0).UTC().Format("2006-01-02")
	payloadHash := sha256.Sum256(body)
	canonical := "POST\n/\n\ncontent-type:" + r.Header.Get("Content-Type") + "\nhost:" + r.Host + "\n\ncontent-type;host\n" + hex.EncodeToString(payloadHash[:])
	canonicalHash := sha256.Sum256([]byte(canonical))
	sts := "TC3-HMAC-SHA256\n" + strconv.FormatInt(ts, 10) + "\n" + date + "/sms/tc3_request\n" + hex.EncodeToString(canonicalHash[:])
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	k := mac(mac(mac([]byte("TC3"+secretKey), date), "sms"), "tc3_request")
	want := hex.EncodeToString(mac(k, sts))
	auth := r.Header.Get("Authorization")
	return strings.HasSuffix(auth, ", Signature="+want) &&
		strings.HasPrefix(auth, "TC3-HMAC-SHA256 Credential=AKIDtest/"+date+"/sms/tc3_request, SignedHeaders=content-type;host, ")
}

func newTestTencent(t *testing.T, srv *recorder, to ...string) *TencentSMS {
	t.Helper()
	if len(to) == 0 {
		to = []string{"+8613800001111"}
	}
	ts, err := NewTencentSMS(SMSConfig{
		Provider: ProviderTencent, URL: srv.URL, SecretID: "AKIDtest", SecretKey: testTencentSecret,
		SDKAppID: "1400006666", SignName: "巴拉斯特", TemplateID: "1110", To: to,
	}, srv.Client(), nil)
	require.NoError(t, err)
	ts.now = fixedNow
	return ts
}

func TestTencentRequest(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		body := []byte(readBody(r))
		if !verifyTC3(r, body, testTencentSecret) {
			_, _ = w.Write([]byte(`{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"The provided credentials could not be validated."},"RequestId":"r"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"Response":{"SendStatusSet":[
			{"SerialNo":"5000:1","PhoneNumber":"+8613800001111","Fee":1,"Code":"Ok","Message":"send success","IsoCode":"CN"},
			{"SerialNo":"5000:2","PhoneNumber":"+15551234567","Fee":1,"Code":"Ok","Message":"send success","IsoCode":"US"}],
			"RequestId":"a0aabda6-cf91-4f3e-a81f-9198114a2279"}}`))
	})
	ts := newTestTencent(t, srv, "+8613800001111", "+15551234567")
	retry, err := ts.Notify(context.Background(), testMessage(1))
	require.NoError(t, err)
	require.False(t, retry)

	r := srv.requests()[0]
	require.Equal(t, "POST", r.Method)
	require.Equal(t, "/", r.Path)
	require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, "SendSms", r.Header.Get("X-TC-Action"))
	require.Equal(t, "2021-01-11", r.Header.Get("X-TC-Version"))
	require.Equal(t, "ap-guangzhou", r.Header.Get("X-TC-Region"))
	require.Equal(t, strconv.FormatInt(testNow.Unix(), 10), r.Header.Get("X-TC-Timestamp"))
	require.JSONEq(t, `{
		"PhoneNumberSet": ["+8613800001111", "+15551234567"],
		"SmsSdkAppId": "1400006666",
		"SignName": "巴拉斯特",
		"TemplateId": "1110",
		"TemplateParamSet": ["critical", "HostDiskSaturated", "host-1", "Disk IO on host-1 i…"]
	}`, string(r.Body))
}

func TestTencentRetriesOnlyTheFailedNumbers(t *testing.T) {
	var calls atomic.Int32
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			_, _ = w.Write([]byte(`{"Response":{"SendStatusSet":[
				{"PhoneNumber":"+8613800001111","Code":"Ok","Message":"send success"},
				{"PhoneNumber":"+8613800002222","Code":"LimitExceeded.PhoneNumberThirtySecondLimit","Message":"30s limit"}],"RequestId":"r1"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"Response":{"SendStatusSet":[{"PhoneNumber":"+8613800002222","Code":"Ok","Message":"send success"}],"RequestId":"r2"}}`))
	})
	ts := newTestTencent(t, srv, "+8613800001111", "+8613800002222")
	m := testMessage(1)
	retry, err := ts.Notify(context.Background(), m)
	require.True(t, retry)
	require.ErrorContains(t, err, "sms tencent: to +8613800002222: LimitExceeded.PhoneNumberThirtySecondLimit: 30s limit")
	retry, err = ts.Notify(context.Background(), m)
	require.NoError(t, err)
	require.False(t, retry)

	var second struct{ PhoneNumberSet []string }
	require.NoError(t, json.Unmarshal(srv.requests()[1].Body, &second))
	require.Equal(t, []string{"+8613800002222"}, second.PhoneNumberSet)
}

func TestTencentErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		retry   bool
		wantErr string
	}{
		{"signature", 200, `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"bad signature"},"RequestId":"r"}}`, false,
			"sms tencent: AuthFailure.SignatureFailure: bad signature (request r)"},
		{"throttled", 200, `{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"too many"},"RequestId":"r"}}`, true, "RequestLimitExceeded"},
		{"internal", 200, `{"Response":{"Error":{"Code":"InternalError.Timeout","Message":"timeout"},"RequestId":"r"}}`, true, "InternalError.Timeout"},
		{"template", 200, `{"Response":{"SendStatusSet":[{"PhoneNumber":"+8613800001111","Code":"FailedOperation.TemplateIncorrectOrUnapproved","Message":"template"}]}}`, false,
			"to +8613800001111: FailedOperation.TemplateIncorrectOrUnapproved: template"},
		{"daily limit", 200, `{"Response":{"SendStatusSet":[{"PhoneNumber":"+8613800001111","Code":"LimitExceeded.PhoneNumberDailyLimit","Message":"daily"}]}}`, false,
			"LimitExceeded.PhoneNumberDailyLimit"},
		{"gateway", 504, "", true, "unreadable reply: HTTP 504 Gateway Timeout"},
		{"empty response", 200, `{"Response":{}}`, false, "unreadable reply"},
		{"not json", 200, "<html>", false, "unreadable reply: HTTP 200 OK: <html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(tc.status, tc.body))
			ts := newTestTencent(t, srv)
			retry, err := ts.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestNewSMSPicksTheProvider(t *testing.T) {
	tw, err := NewSMS(SMSConfig{Provider: ProviderTwilio, AccountSID: "AC1", AuthToken: "x", From: "+15550006666", To: []string{"+15550000001"}}, nil, nil)
	require.NoError(t, err)
	require.IsType(t, &Twilio{}, tw)
	al, err := NewSMS(SMSConfig{Provider: ProviderAliyun, AccessKeyID: "k", AccessKeySecret: "s", SignName: "n", TemplateCode: "SMS_1", To: []string{"+8613800001111"}}, nil, nil)
	require.NoError(t, err)
	require.IsType(t, &AliyunSMS{}, al)
	require.Equal(t, DefaultAliyunURL, al.(*AliyunSMS).endpoint)
	tc, err := NewSMS(SMSConfig{Provider: ProviderTencent, SecretID: "i", SecretKey: "k", SDKAppID: "1", SignName: "n", TemplateID: "1", To: []string{"+8613800001111"}}, nil, nil)
	require.NoError(t, err)
	require.IsType(t, &TencentSMS{}, tc)
	require.Equal(t, "sms.tencentcloudapi.com", tc.(*TencentSMS).host)
	_, err = NewSMS(SMSConfig{Provider: "carrier-pigeon"}, nil, nil)
	require.ErrorContains(t, err, `provider: "carrier-pigeon" is not one of twilio, aliyun, tencent`)
	_, err = NewTwilio(SMSConfig{Provider: ProviderAliyun}, nil, nil)
	require.ErrorContains(t, err, "is not twilio")
}

func TestDeliveredIsBounded(t *testing.T) {
	var d delivered
	for i := 0; i < 3*deliveredKeys; i++ {
		d.mark(fmt.Sprint(i), "+1")
	}
	require.LessOrEqual(t, len(d.sent), deliveredKeys)
	d.mark("k", "+1")
	require.Equal(t, []string{"+2"}, d.pending("k", []string{"+1", "+2"}))
	d.done("k")
	require.Equal(t, []string{"+1", "+2"}, d.pending("k", []string{"+1", "+2"}))
}
