package retry

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"3", 3 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"1.5", 1500 * time.Millisecond, true},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{"Fri, 02 Jan 2026 03:04:12 GMT", 7 * time.Second, true},
		{"Friday, 02-Jan-26 03:04:12 GMT", 7 * time.Second, true}, // RFC 850, obsolete but allowed
		{"Fri Jan  2 03:04:12 2026", 7 * time.Second, true},       // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},    // in the past: now
		{"-4", 0, false},
		{"soon", 0, false},
		{"NaN", 0, false},
		{"1e300", 0, false},
		{"Inf", 0, false},
		{"+3", 0, false},
		{"0x10", 0, false},
		{"1..2", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.v, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.v, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHeaderWait(t *testing.T) {
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"2"}, "X-Ratelimit-Reset": {"9"}}, 2 * time.Second},
		{http.Header{"X-Ratelimit-Reset": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"X-Ratelimit-Reset": {"1767323050"}}, 5 * time.Second}, // a Unix time
		{http.Header{"Ratelimit-Reset": {"-4"}}, 0},
		{http.Header{"Ratelimit-Reset": {"x"}, "X-Ratelimit-Reset-After": {"4"}}, 4 * time.Second},
	}
	for _, tt := range tests {
		if got := HeaderWait(tt.h, now); got != tt.want {
			t.Errorf("HeaderWait(%v) = %v; want %v", tt.h, got, tt.want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "3", "1.5", "-1", "1e9", "NaN", http.TimeFormat, now.Format(http.TimeFormat),
		"Friday, 02-Jan-26 03:04:12 GMT", "Fri Jan  2 03:04:12 2026", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if d < 0 || d > time.Duration(maxAfter)*time.Second {
			t.Fatalf("ParseRetryAfter(%q) = %v: outside [0, %v]", v, d, time.Duration(maxAfter)*time.Second)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, false: a wait with no answer", v, d)
		}
		if n, err := strconv.Atoi(v); err == nil && strings.Trim(v, "0123456789") == "" && n < maxAfter {
			if !ok || d != time.Duration(n)*time.Second {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %ds", v, d, ok, n)
			}
		}
		if w := HeaderWait(http.Header{"Retry-After": {v}}, now); w < 0 {
			t.Fatalf("HeaderWait(Retry-After: %q) = %v", v, w)
		}
	})
}
