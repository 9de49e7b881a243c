package watcher

import (
	"fmt"
	"math/big"
	"net/http"
	"strings"
)

// Microversions served: Watcher's full range.
const (
	minMinor    = 0
	maxMinor    = 7
	serviceType = "infra-optim"
	// MinVersion and MaxVersion are the OpenStack-API-Minimum/Maximum-Version
	// values.
	MinVersion = "1.0"
	MaxVersion = "1.7"
)

// Microversion minors at which features appear (Watcher's history).
const (
	vStartEndTime    = 1 // audit start_time/end_time
	vForce           = 2 // audit force
	vDataModel       = 3 // GET /v1/data_model
	vWebhooks        = 4 // webhooks link in /v1
	vSkipAction      = 5 // PATCH actions, status_message
	vExtendedModel   = 6 // data_model server_pinned_az, server_flavor_extra_specs
	vDefaultParams   = 7 // audit template default_parameters
	headerVersion    = "OpenStack-API-Version"
	headerMinVersion = "OpenStack-API-Minimum-Version"
	headerMaxVersion = "OpenStack-API-Maximum-Version"
)

// Version is a negotiated microversion (major is always 1 once accepted).
type Version struct{ Major, Minor int }

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports whether v is 1.minor or newer.
func (v Version) AtLeast(minor int) bool { return v.Minor >= minor }

// VersionError is a requested version Watcher answers with 406. Headers
// tells whether the min/max/Vary headers accompany it: Watcher sets them
// only after the header parsed as two numbers.
type VersionError struct {
	Msg     string
	Headers bool
}

func (e *VersionError) Error() string { return e.Msg }

// ParseVersion negotiates the microversion from the OpenStack-API-Version
// header values, exactly as Watcher does (microversion_parse, then
// watcher.api.controllers.base.Version and v1._check_version):
//
//   - the header values are folded with ","; the last "infra-optim X"
//     entry wins, service names compare case-insensitively;
//   - no entry gives 1.0; "latest" gives 1.7; a bare "1" gives 1.0;
//   - a part that is not an integer (Python int(): optional sign,
//     surrounding spaces, "_" between digits) gives 1.0;
//   - anything but two integers is 406 "Invalid value for
//     OpenStack-API-Version header";
//   - a major other than 1, or a minor outside [0, 7], is 406 with
//     Watcher's range message.
func ParseVersion(values []string) (Version, error) {
	raw, ok := serviceVersion(strings.Join(values, ","))
	if !ok {
		return Version{1, minMinor}, nil
	}
	if strings.EqualFold(raw, "latest") {
		return Version{1, maxMinor}, nil
	}
	parts := strings.Split(raw, ".")
	nums := make([]*big.Int, len(parts))
	for i, p := range parts {
		n, ok := pyInt(p)
		if !ok {
			return Version{1, minMinor}, nil
		}
		nums[i] = n
	}
	one := big.NewInt(1)
	if len(nums) == 1 && nums[0].Cmp(one) == 0 {
		return Version{1, minMinor}, nil
	}
	if len(nums) != 2 {
		return Version{}, &VersionError{Msg: "Invalid value for " + headerVersion + " header"}
	}
	shown := nums[0].String() + "." + nums[1].String()
	if nums[0].Cmp(one) != 0 {
		return Version{}, &VersionError{Headers: true, Msg: fmt.Sprintf("Mutually exclusive versions requested. Version %s "+
			"requested but not supported by this service. The supported version range is: [%s, %s].", shown, MinVersion, MaxVersion)}
	}
	if nums[1].Cmp(big.NewInt(minMinor)) < 0 || nums[1].Cmp(big.NewInt(maxMinor)) > 0 {
		return Version{}, &VersionError{Headers: true, Msg: fmt.Sprintf("Version %s was requested but the minor version is "+
			"not supported by this service. The supported version range is: [%s, %s].", shown, MinVersion, MaxVersion)}
	}
	return Version{1, int(nums[1].Int64())}, nil
}

// serviceVersion is microversion_parse.check_standard_header: scanning
// the comma-separated entries from the last, the first whose service is
// infra-optim gives its version.
func serviceVersion(header string) (string, bool) {
	entries := strings.Split(header, ",")
	for i := len(entries) - 1; i >= 0; i-- {
		fields := strings.Fields(entries[i])
		if len(fields) < 2 {
			continue
		}
		if strings.EqualFold(fields[0], serviceType) {
			// split(None, 1) keeps the rest, inner spaces included.
			rest := strings.TrimSpace(entries[i])
			rest = strings.TrimSpace(rest[len(fields[0]):])
			return rest, true
		}
	}
	return "", false
}

// pyInt parses like Python's int(str): surrounding whitespace, an optional
// sign, ASCII digits with single underscores between them.
func pyInt(s string) (*big.Int, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return nil, false
	}
	digits := strings.ReplaceAll(s, "_", "")
	for _, r := range digits {
		if r < '0' || r > '9' {
			return nil, false
		}
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, false
	}
	if neg {
		n.Neg(n)
	}
	return n, true
}

// setVersionHeaders sets the headers every /v1 response carries.
func setVersionHeaders(h http.Header) {
	h.Set("Vary", headerVersion)
	h.Set(headerMinVersion, MinVersion)
	h.Set(headerMaxVersion, MaxVersion)
}
