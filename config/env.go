package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Setting is one configurable value: its YAML path, environment variable,
// help text and current value.
type Setting struct {
	Path, Env, Help, Value string
	field                  reflect.Value
}

// Settings lists every setting of c in declaration order; --help prints it.
func Settings(c *Config) []Setting {
	var out []Setting
	walk(reflect.ValueOf(c).Elem(), "", &out)
	return out
}

func walk(v reflect.Value, prefix string, out *[]Setting) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			walk(fv, path, out)
			continue
		}
		env := f.Tag.Get("env")
		if env == "" {
			env = envName(path)
		}
		*out = append(*out, Setting{Path: path, Env: env, Help: f.Tag.Get("help"), Value: format(fv), field: fv})
	}
}

// envName is a setting's variable unless its env tag names another.
func envName(path string) string {
	return "AURAX_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// removedSettings no longer exist: the predictive policy's tuning became
// constants (scaling/predictive.go, measured in scaling/SIMULATION.md). A
// file that sets one fails as any unknown key does; the environment is
// read by name, so applyEnv looks for these variables too rather than
// ignore them.
var removedSettings = []string{
	"scaling.predictive.alpha", "scaling.predictive.beta", "scaling.predictive.utilization",
	"scaling.predictive.peak_window", "scaling.predictive.peak_weight", "scaling.predictive.burst_z",
	"scaling.predictive.burstiness_low", "scaling.predictive.burstiness_high",
	"scaling.predictive.steady_window", "scaling.predictive.wait_eps", "scaling.predictive.backlog_drain",
}

func applyEnv(c *Config, lookup func(string) (string, bool)) error {
	if lookup == nil {
		return nil
	}
	for _, path := range removedSettings {
		if _, ok := lookup(envName(path)); ok {
			return fmt.Errorf("%s (%s): removed, the predictive policy's tuning is fixed (see scaling/SIMULATION.md)", path, envName(path))
		}
	}
	for _, s := range Settings(c) {
		raw, ok := lookup(s.Env)
		if !ok {
			continue
		}
		if err := parse(s.field, raw); err != nil {
			return fmt.Errorf("%s (%s=%q): %w", s.Path, s.Env, redact(s, raw), err)
		}
	}
	return nil
}

// redact keeps secrets out of error messages.
func redact(s Setting, raw string) string {
	if strings.Contains(s.Path, "key") {
		return "<redacted>"
	}
	return raw
}

func parse(v reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration like 30s or 5m")
		}
		v.SetInt(int64(d))
		return nil
	case []string:
		var list []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		v.Set(reflect.ValueOf(list))
		return nil
	case map[string]string:
		m := map[string]string{}
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("%q is not key=value", p)
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		v.SetInt(n)
	case reflect.Float64, reflect.Float32:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k+"="+x[k])
		}
		sort.Strings(keys)
		return strings.Join(keys, ",")
	}
	return fmt.Sprint(v.Interface())
}
