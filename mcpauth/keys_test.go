package mcpauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestHashKey(t *testing.T) {
	sum := sha256.Sum256([]byte("mcpk_example"))
	if got, want := HashKey("mcpk_example"), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("HashKey = %s, want %s", got, want)
	}
	if HashKey("a") == HashKey("b") {
		t.Error("two keys hash alike")
	}
}

func TestNewKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(k, "mcpk_"))
		if !strings.HasPrefix(k, "mcpk_") || err != nil || len(raw) != 32 {
			t.Fatalf("key %q: want mcpk_ and 32 bytes base64url (%v)", k, err)
		}
		if seen[k] {
			t.Fatalf("key %q made twice", k)
		}
		seen[k] = true
	}
}

// TestAPIKeyCommand runs `caddy mcp api-key`: the key it prints
// authenticates with the hash it prints.
func TestAPIKeyCommand(t *testing.T) {
	run := func(stdin string, args ...string) (string, error) {
		cmd := APIKeyCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(args)
		err := cmd.Execute()
		return out.String(), err
	}
	out, err := run("")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^key:  (mcpk_[A-Za-z0-9_-]{43})\nhash: (sha256:[0-9a-f]{64})\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output %q", out)
	}
	c := provision(t, &Config{APIKeys: []APIKey{{Principal: "ci", Hash: m[2]}}})
	if p, f := authenticate(t, c, request("X-API-Key", m[1])); f != nil || p.ID != "ci" {
		t.Errorf("the printed key with the printed hash: %+v %v", p, f)
	}

	if out, err := run("", "--hash", m[1]); err != nil || out != m[2]+"\n" {
		t.Errorf("--hash <key>: %q %v, want %s", out, err, m[2])
	}
	if out, err := run(m[1]+"\n", "--hash", "-"); err != nil || out != m[2]+"\n" {
		t.Errorf("--hash - from stdin: %q %v, want %s", out, err, m[2])
	}
	if _, err := run("", "--hash", ""); err == nil || !strings.Contains(err.Error(), "--hash: the key is empty") {
		t.Errorf("--hash of nothing: %v", err)
	}
	if _, err := run("", "extra"); err == nil {
		t.Error("an argument was accepted")
	}
}
