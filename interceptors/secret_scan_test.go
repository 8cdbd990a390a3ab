package interceptors

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
)

// Real-shaped fake secrets, put together from pieces so that this file
// holds nothing that a secret scanner would flag.
var (
	fakeAWSKey      = "AKIA" + "Z7Q4" + strings.Repeat("X", 12)
	fakeAWSTempKey  = "ASIA" + strings.Repeat("Q2", 8)
	fakeGitHubPAT   = "ghp" + "_" + strings.Repeat("a1B2", 9)
	fakeGitHubApp   = "ghs" + "_" + strings.Repeat("Zz9", 12)
	fakeFineGrained = "github" + "_pat_" + strings.Repeat("B", 22) + "_" + strings.Repeat("c", 59)
	fakeSlack       = "xox" + "b-" + "123456789012-" + strings.Repeat("abc", 8)
	fakePEM         = "-----BEGIN " + "RSA PRIVATE" + " KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
	fakeOpenSSH     = "-----BEGIN " + "OPENSSH PRIVATE" + " KEY-----"
	fakeJWT         = "eyJ" + "hbGciOiJIUzI1NiJ9" + ".eyJ" + "zdWIiOiJhbGljZSJ9" + "." + "c2lnbmF0dXJlX3BhcnQ"
	fakeGoogle      = "AI" + "za" + strings.Repeat("Sy_", 11) + "ab"
	fakeStripe      = "sk_" + "live_" + strings.Repeat("4eC3", 6)
	fakeInternal    = "ik-" + strings.Repeat("0f", 8)
)

// escapeAll writes every character of s as a JSON \u escape.
func escapeAll(s string) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// quoted is s as a JSON string.
func quoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func newSecretScan(t *testing.T, s *SecretScan) *SecretScan {
	t.Helper()
	if s.Patterns == nil {
		s.Patterns = map[string]string{"internal_key": `\bik-[0-9a-f]{16}\b`}
	}
	return provisioned(t, s)
}

func TestSecretScanFinds(t *testing.T) {
	s := newSecretScan(t, &SecretScan{})
	for _, tc := range []struct {
		pattern, secret, args string
	}{
		{"aws_access_key_id", fakeAWSKey, `{"key":` + quoted(fakeAWSKey) + `}`},
		{"aws_access_key_id", fakeAWSTempKey, `{"env":["AWS_ACCESS_KEY_ID=` + fakeAWSTempKey + `"]}`},
		{"github_token", fakeGitHubPAT, `{"auth":` + quoted("token "+fakeGitHubPAT) + `}`},
		{"github_token", fakeGitHubApp, `{"a":{"b":[1,true,null,` + quoted(fakeGitHubApp) + `]}}`},
		{"github_token", fakeFineGrained, `{"t":` + quoted(fakeFineGrained) + `}`},
		{"slack_token", fakeSlack, `{"hook":` + quoted(fakeSlack) + `}`},
		{"private_key", fakePEM, `{"file":` + quoted(fakePEM) + `}`},
		{"private_key", fakeOpenSSH, `{"file":` + quoted(fakeOpenSSH) + `}`},
		{"jwt", fakeJWT, `{"headers":{"Authorization":` + quoted("Bearer "+fakeJWT) + `}}`},
		{"google_api_key", fakeGoogle, `{"url":` + quoted("https://maps.example/api?key="+fakeGoogle) + `}`},
		{"stripe_secret_key", fakeStripe, `{"k":` + quoted(fakeStripe) + `}`},
		{"internal_key", fakeInternal, `{"k":` + quoted(fakeInternal) + `}`},
		// Every character escaped: only the decoded string shows it.
		{"github_token", fakeGitHubPAT, `{"q":"` + escapeAll(fakeGitHubPAT) + `"}`},
		{"aws_access_key_id", fakeAWSKey, `{"q":"key ` + escapeAll(fakeAWSKey) + ` here"}`},
		{"private_key", fakePEM, `{"q":"` + escapeAll(fakePEM) + `"}`},
		// A secret as an object key.
		{"stripe_secret_key", fakeStripe, `{` + quoted(fakeStripe) + `:1}`},
		// Password, secret, token and api_key fields, in the document and in
		// JSON text inside a string, with an escaped key.
		{"json_secret_field", "correct horse", `{"user":"bob","password":"correct horse"}`},
		{"json_secret_field", "s3cr3t-value", `{"config":{"API_KEY":"s3cr3t-value"}}`},
		{"json_secret_field", "0123456789ab", `{"text":` + quoted(`{"token": "0123456789ab"}`) + `}`},
		{"json_secret_field", "hunter2hunter2", `{"` + escapeAll("secret") + `":"hunter2hunter2"}`},
		// Not JSON at all: scanned as text.
		{"github_token", fakeGitHubPAT, `not json ` + fakeGitHubPAT},
		{"github_token", fakeGitHubPAT, `{"a":1} "` + fakeGitHubPAT + `"`},
	} {
		err := s.Before(t.Context(), newCall("fs", "write", tc.args))
		want := "argument contains a secret (" + tc.pattern + ")"
		if err == nil || err.Error() != want {
			t.Errorf("arguments %.70s: got %v, want %q", tc.args, err, want)
		}
		if err != nil && strings.Contains(err.Error(), tc.secret) {
			t.Errorf("the refusal %q shows the secret", err)
		}

		result := `{"content":[{"type":"text","text":` + quoted(tc.args) + `}]}`
		err = s.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Result: json.RawMessage(result)})
		// The same arguments as the JSON text of a result: one more round
		// of escapes.
		want = "result contains a secret (" + tc.pattern + ")"
		if err == nil || err.Error() != want {
			t.Errorf("result with %.70s: got %v, want %q", tc.args, err, want)
		}
	}
}

func TestSecretScanPasses(t *testing.T) {
	sum := sha256.Sum256([]byte("hello"))
	s := newSecretScan(t, &SecretScan{Allow: []string{`^AKIA` + `IOSFODNN7EXAMPLE$`, `^\*+$`}})
	for _, args := range []string{
		`{}`,
		`{"query":"how do I rotate an AWS access key? see the AKIA prefix docs","limit":10}`,
		`{"id":"123e4567-e89b-12d3-a456-426614174000"}`,
		`{"digest":"` + hex.EncodeToString(sum[:]) + `","upper":"` + strings.ToUpper(hex.EncodeToString(sum[:])) + `"}`,
		`{"commit":"9fceb02d0ae598e95dc970b74767f19372d61af8"}`,
		`{"text":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"}`,
		`{"password":"short"}`,                   // under 8 characters
		`{"token":12345678901234}`,               // not a string
		`{"password_hint":"the name of my cat"}`, // not a secret field
		`{"next_page_token_count":"0123456789"}`,
		`{"note":"ghp_ is the prefix of GitHub tokens"}`,
		`{"url":"https://example.com/eyJ/path"}`,
		// Exempted by allow: AWS's documented example key, and a masked
		// password (in the document and in text).
		`{"key":"AKIA` + `IOSFODNN7EXAMPLE"}`,
		`{"password":"********"}`,
		`{"text":"{\"password\": \"**********\"}"}`,
	} {
		if err := s.Before(t.Context(), newCall("fs", "write", args)); err != nil {
			t.Errorf("arguments %s: refused: %v", args, err)
		}
		if err := s.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Result: json.RawMessage(args)}); err != nil {
			t.Errorf("result %s: refused: %v", args, err)
		}
	}
}

func TestSecretScanDirections(t *testing.T) {
	off := false
	args := `{"k":` + quoted(fakeGitHubPAT) + `}`
	secretErr := errors.New("upstream failed with credentials " + fakeSlack)

	s := newSecretScan(t, &SecretScan{Arguments: &off})
	if err := s.Before(t.Context(), newCall("fs", "write", args)); err != nil {
		t.Errorf("arguments off: arguments refused: %v", err)
	}
	if err := s.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Result: json.RawMessage(args)}); err == nil {
		t.Error("arguments off: a result with a secret passed")
	}
	err := s.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Err: secretErr})
	if err == nil || err.Error() != "error contains a secret (slack_token)" {
		t.Errorf("error with a secret: got %v, want a refusal naming slack_token", err)
	}

	s = newSecretScan(t, &SecretScan{Results: &off})
	if err := s.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Result: json.RawMessage(args)}); err != nil {
		t.Errorf("results off: result refused: %v", err)
	}
	if err := s.After(t.Context(), newCall("fs", "read", `{}`), &caddymcp.Outcome{Err: secretErr}); err != nil {
		t.Errorf("results off: error refused: %v", err)
	}
	if err := s.Before(t.Context(), newCall("fs", "write", args)); err == nil {
		t.Error("results off: arguments with a secret passed")
	}
}

func TestSecretScanProvisionErrors(t *testing.T) {
	off := false
	for _, tc := range []struct {
		s    *SecretScan
		want string
	}{
		{&SecretScan{Patterns: map[string]string{"ok": `x+`, "broken": `ab(c`}}, `pattern "broken": error parsing regexp`},
		{&SecretScan{Patterns: map[string]string{"jwt": `x+`}}, `pattern "jwt": the name of a built-in pattern`},
		{&SecretScan{Patterns: map[string]string{}, Allow: []string{`[z-a]`}}, `allow "[z-a]": error parsing regexp`},
		{&SecretScan{Patterns: map[string]string{}, Arguments: &off, Results: &off}, "arguments and results are both off"},
	} {
		if err := provision(t, tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got error %v, want %q", tc.s, err, tc.want)
		}
	}
}

func TestSecretScanCaddyfileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"secret_scan {\n pattern lonely\n}":            "pattern: expected a name and a regexp",
		"secret_scan {\n pattern a x\n pattern a y\n}": `pattern "a": defined twice`,
		"secret_scan {\n allow\n}":                     "allow: at least one regexp is required",
		"secret_scan {\n arguments maybe\n}":           `arguments "maybe": must be on or off`,
		"secret_scan {\n results\n}":                   "wrong argument count",
		"secret_scan {\n patterns a b\n}":              `unrecognized secret_scan option "patterns"`,
	} {
		if _, err := unmarshalModule(t, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got error %v, want %q", in, err, want)
		}
	}
}
