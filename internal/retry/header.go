package retry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAfter bounds a parsed delay: about 115 days, far beyond any real
// answer, so that a garbage number is "unknown" rather than an overflow.
const maxAfter = 1e7 // seconds

// ParseRetryAfter reads one Retry-After value (RFC 9110 §10.2.3): a
// number of seconds (a decimal fraction is taken too, as some APIs send
// one) or an HTTP date, which counts from now (a date in the past is 0).
// ok is false for anything else, a negative number included.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789.") == "" { // no sign, exponent, hex or NaN
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s >= maxAfter {
			return 0, false
		}
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(0, t.Sub(now)), time.Duration(maxAfter)*time.Second), true
	}
	return 0, false
}

// resetHeaders are the rate-limit headers that say when the limit resets,
// in seconds from now or, above a day's seconds, as a Unix time.
var resetHeaders = []string{"X-RateLimit-Reset", "RateLimit-Reset", "X-Ratelimit-Reset-After"}

// HeaderWait is the wait an answer's headers ask for: Retry-After (see
// ParseRetryAfter), else the first rate-limit reset header that parses,
// else 0 (they say nothing).
func HeaderWait(h http.Header, now time.Time) time.Duration {
	if d, ok := ParseRetryAfter(h.Get("Retry-After"), now); ok {
		return d
	}
	for _, k := range resetHeaders {
		s, err := strconv.ParseFloat(strings.TrimSpace(h.Get(k)), 64)
		if err != nil || !(s >= 0 && s < 1e12) {
			continue
		}
		if s > 86400 { // a Unix time
			return max(0, time.Unix(int64(s), 0).Sub(now))
		}
		return time.Duration(s * float64(time.Second))
	}
	return 0
}
