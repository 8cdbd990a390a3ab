package interceptors

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// jsonOfSize is a JSON document of exactly n bytes (n >= 8).
func jsonOfSize(n int) string {
	return `{"a":"` + strings.Repeat("x", n-8) + `"}`
}

func TestSizeLimit(t *testing.T) {
	sl := provisioned(t, &SizeLimit{Arguments: 64 << 10, Result: 1 << 20})
	for _, tc := range []struct {
		args, result int
		wantBefore   string
		wantAfter    string
	}{
		{args: 100, result: 100},
		{args: 64 << 10, result: 1 << 20},
		{args: 70000, result: 10, wantBefore: "arguments of 70000 bytes exceed the limit of 64 KiB (65536 bytes)"},
		{args: 10, result: 1<<20 + 1, wantAfter: "result of 1048577 bytes exceeds the limit of 1.0 MiB (1048576 bytes)"},
	} {
		if len(jsonOfSize(tc.args)) != tc.args {
			t.Fatalf("jsonOfSize(%d) is %d bytes", tc.args, len(jsonOfSize(tc.args)))
		}
		err := sl.Before(t.Context(), newCall("fs", "write", jsonOfSize(tc.args)))
		if got := errText(err); got != tc.wantBefore {
			t.Errorf("arguments of %d bytes: got %q, want %q", tc.args, got, tc.wantBefore)
		}
		err = sl.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Result: json.RawMessage(jsonOfSize(tc.result))})
		if got := errText(err); got != tc.wantAfter {
			t.Errorf("result of %d bytes: got %q, want %q", tc.result, got, tc.wantAfter)
		}
	}

	// Only the arguments are limited.
	sl = provisioned(t, &SizeLimit{Arguments: 16})
	if err := sl.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Result: json.RawMessage(jsonOfSize(5000))}); err != nil {
		t.Errorf("no result limit: refused: %v", err)
	}
	if err := sl.Before(t.Context(), newCall("fs", "write", jsonOfSize(17))); err == nil {
		t.Error("arguments of 17 bytes passed a limit of 16")
	}
}

// errText is err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSizeLimitProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		sl   *SizeLimit
		want string
	}{
		{&SizeLimit{}, "neither arguments nor result is limited"},
		{&SizeLimit{Arguments: -1}, "arguments -1: must not be negative"},
		{&SizeLimit{Arguments: 10, Result: -5}, "result -5: must not be negative"},
	} {
		if err := provision(t, tc.sl); errText(err) != tc.want {
			t.Errorf("%+v: got error %v, want %q", *tc.sl, err, tc.want)
		}
	}
}

func TestSizeLimitCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"size_limit {\n arguments\n}":          "wrong argument count",
		"size_limit {\n arguments 1 KiB\n}":    "wrong argument count",
		"size_limit {\n result lots\n}":        `result "lots": strconv.ParseFloat`,
		"size_limit {\n result 99999999EiB\n}": `result "99999999EiB": too large`,
		"size_limit {\n request 1MiB\n}":       `unrecognized size_limit option "request"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
