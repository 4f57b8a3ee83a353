package loadgen

import "strings"

// Error kinds a failed request is classified into.
const (
	KindTimeout = "timeout"
	KindRefused = "refused"
	KindReset   = "reset"
	Kind5xx     = "5xx"
	Kind4xx     = "4xx"
	KindDNS     = "dns"
	KindOther   = "other"
	// KindCheck is a response that arrived but was wrong for the workload
	// (an echo that differs, a session that answers for another user).
	KindCheck = "check"
)

// Classify returns the error kind of a result with HTTP status code (0 when
// no response arrived) and error text, or "" when the request succeeded.
// Go's net/http reports transport failures only as text, so this matches the
// stable fragments of those messages.
func Classify(code uint16, errText string) string {
	switch {
	case code >= 500:
		return Kind5xx
	case code >= 400:
		return Kind4xx
	case errText == "":
		return ""
	}
	e := strings.ToLower(errText)
	switch {
	case strings.Contains(e, "no such host"), strings.Contains(e, "lookup "), strings.Contains(e, "server misbehaving"):
		return KindDNS
	case strings.Contains(e, "timeout"), strings.Contains(e, "deadline exceeded"):
		return KindTimeout
	case strings.Contains(e, "connection refused"):
		return KindRefused
	case strings.Contains(e, "connection reset"), strings.Contains(e, "broken pipe"),
		strings.HasSuffix(e, ": eof"), e == "eof", strings.Contains(e, "unexpected eof"),
		strings.Contains(e, "server closed"):
		return KindReset
	}
	return KindOther
}
