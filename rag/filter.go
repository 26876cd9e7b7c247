package rag

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Metadata is a chunk's payload: flat key/value pairs whose values are
// strings, booleans or numbers (JSON numbers decode as float64; int and
// int64 are accepted too).
type Metadata map[string]any

// Limits on metadata.
const (
	MaxMetadataKeys   = 64
	MaxMetadataKeyLen = 128
	MaxMetadataValLen = 4096
)

// Validate rejects nested values, non-finite numbers and oversized entries.
func (m Metadata) Validate() error {
	if len(m) > MaxMetadataKeys {
		return fmt.Errorf("%w: metadata has %d keys (max %d)", ErrInvalidArgument, len(m), MaxMetadataKeys)
	}
	for k, v := range m {
		if k == "" || len(k) > MaxMetadataKeyLen {
			return fmt.Errorf("%w: metadata key %q", ErrInvalidArgument, k)
		}
		if _, ok := scalar(v); !ok {
			return fmt.Errorf("%w: metadata %q: value %v (%T) is not a string, bool or finite number", ErrInvalidArgument, k, v, v)
		}
		if s, ok := v.(string); ok && len(s) > MaxMetadataValLen {
			return fmt.Errorf("%w: metadata %q: value longer than %d bytes", ErrInvalidArgument, k, MaxMetadataValLen)
		}
	}
	return nil
}

// scalar normalises a metadata or filter value: numbers become float64.
func scalar(v any) (any, bool) {
	switch x := v.(type) {
	case string, bool:
		return x, true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		f := float64(x)
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil && !math.IsInf(f, 0)
	}
	return nil, false
}

// Filter keeps points whose metadata matches every key. A value is a
// string, bool or number (equality), or a list of them (any of). An empty
// Filter matches everything. JSON: {"lang": "en", "year": [2024, 2025]}.
type Filter map[string]any

// Validate returns an error wrapping ErrInvalidFilter for nested objects,
// empty lists, empty keys or non-scalar values.
func (f Filter) Validate() error {
	if len(f) > MaxMetadataKeys {
		return fmt.Errorf("%w: %d keys (max %d)", ErrInvalidFilter, len(f), MaxMetadataKeys)
	}
	for k, v := range f {
		if k == "" || len(k) > MaxMetadataKeyLen {
			return fmt.Errorf("%w: key %q", ErrInvalidFilter, k)
		}
		if _, err := filterValues(k, v); err != nil {
			return err
		}
	}
	return nil
}

// FilterValues returns the normalised alternatives for key: strings, bools
// and float64s. Stores translate filters with it.
func (f Filter) FilterValues(key string) ([]any, error) { return filterValues(key, f[key]) }

// Keys returns the filter's keys, sorted (stable requests, stable tests).
func (f Filter) Keys() []string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func filterValues(key string, v any) ([]any, error) {
	var list []any
	switch x := v.(type) {
	case []any:
		list = x
	case []string:
		for _, s := range x {
			list = append(list, s)
		}
	case []float64:
		for _, n := range x {
			list = append(list, n)
		}
	case []int:
		for _, n := range x {
			list = append(list, n)
		}
	default:
		s, ok := scalar(v)
		if !ok {
			return nil, fmt.Errorf("%w: %q: value %v (%T) is not a string, bool, number or list of them", ErrInvalidFilter, key, v, v)
		}
		return []any{s}, nil
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: %q: empty list", ErrInvalidFilter, key)
	}
	out := make([]any, 0, len(list))
	for _, e := range list {
		s, ok := scalar(e)
		if !ok {
			return nil, fmt.Errorf("%w: %q: list element %v (%T) is not a string, bool or number", ErrInvalidFilter, key, e, e)
		}
		out = append(out, s)
	}
	return out, nil
}

// Matcher is a validated Filter compiled for repeated evaluation.
type Matcher struct {
	keys []string
	alts [][]any
}

// Compile validates f; a nil *Matcher (from an empty filter) matches all.
func (f Filter) Compile() (*Matcher, error) {
	if len(f) == 0 {
		return nil, nil
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	m := &Matcher{}
	for _, k := range f.Keys() {
		vals, _ := filterValues(k, f[k])
		m.keys = append(m.keys, k)
		m.alts = append(m.alts, vals)
	}
	return m, nil
}

// Match reports whether md satisfies every condition.
func (m *Matcher) Match(md Metadata) bool {
	if m == nil {
		return true
	}
	for i, k := range m.keys {
		v, ok := md[k]
		if !ok {
			return false
		}
		nv, ok := scalar(v)
		if !ok {
			return false
		}
		found := false
		for _, alt := range m.alts[i] {
			if alt == nv {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ParseFilter decodes a JSON filter object and validates it.
func ParseFilter(data []byte) (Filter, error) {
	if len(data) == 0 || string(data) == "null" {
		return nil, nil
	}
	var f Filter
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFilter, err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}
