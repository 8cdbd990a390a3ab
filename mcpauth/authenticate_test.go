package mcpauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
)

// TestAPIKeys accepts a key by Authorization: Bearer and by X-API-Key,
// and nothing that is not a configured key.
func TestAPIKeys(t *testing.T) {
	ci, ops := "mcpk_ci-key", "mcpk_ops-key"
	c := provision(t, &Config{
		APIKeys: []APIKey{
			{Principal: "ci", Hash: HashKey(ci), Scopes: []string{"mcp:tools"}},
			// The hash may be written in upper case.
			{Principal: "ops", Hash: "sha256:" + strings.ToUpper(strings.TrimPrefix(HashKey(ops), "sha256:")), Groups: []string{"admins"}},
		},
	})
	for _, tt := range []struct {
		name   string
		header []string
		want   *Principal
	}{
		{"bearer", withBearer(ci), &Principal{ID: "ci", Scopes: []string{"mcp:tools"}, Method: "api_key"}},
		{"bearer, scheme in lower case", []string{"Authorization", "bearer " + ops}, &Principal{ID: "ops", Groups: []string{"admins"}, Method: "api_key"}},
		{"X-API-Key", []string{"X-API-Key", ops}, &Principal{ID: "ops", Groups: []string{"admins"}, Method: "api_key"}},
	} {
		p, f := authenticate(t, c, request(tt.header...))
		if f != nil {
			t.Errorf("%s: refused: %v", tt.name, f)
		} else if !equalPrincipal(p, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, p, tt.want)
		}
	}
	// The principal is the caller's to change; the config stays as it was.
	p, _ := authenticate(t, c, request(withBearer(ci)...))
	p.Scopes[0] = "changed"
	if c.APIKeys[0].Scopes[0] != "mcp:tools" {
		t.Error("changing a principal's scopes changed the config")
	}
	for _, header := range [][]string{
		withBearer(strings.ToUpper(ci)), withBearer(ci[:len(ci)-1]),
		withBearer(HashKey(ci)), withBearer(strings.TrimPrefix(HashKey(ci), "sha256:")),
		{"X-API-Key", ci + "x"}, {"X-API-Key", ""},
	} {
		if p, f := authenticate(t, c, request(header...)); f == nil {
			t.Errorf("%q accepted as %+v", header, p)
		}
	}
	if _, f := authenticate(t, c, request("X-API-Key", ci, "X-API-Key", ops)); f == nil || f.Code != "invalid_request" {
		t.Errorf("two X-API-Key values: %v, want invalid_request", f)
	}
}

// bcryptOpenSesame is "open sesame" hashed by bcrypt at its lowest cost,
// so that the test does not spend seconds hashing.
const bcryptOpenSesame = "$2a$04$bN1xCklthwL9Ihk2w/mrXOg5CRPI.vQ6Q3cgglPkZrfuthq8UaDjW"

// TestCaddyIdentity puts Caddy's basic_auth handler in front, as a site
// would, and takes the principal it sets.
func TestCaddyIdentity(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	basic := &caddyauth.Authentication{ProvidersRaw: caddy.ModuleMap{
		"http_basic": []byte(`{"accounts":[{"username":"alice","password":"` + bcryptOpenSesame + `"}]}`),
	}}
	if err := basic.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	withCaddy := provision(t, &Config{CaddyIdentity: true, APIKeys: []APIKey{{Principal: "ci", Hash: HashKey("mcpk_ci")}}})
	without := provision(t, &Config{APIKeys: []APIKey{{Principal: "ci", Hash: HashKey("mcpk_ci")}}})

	// serve runs r through basic_auth and then authenticates it with c.
	serve := func(c *Config, r *http.Request, groups string) (int, *Principal, *Failure) {
		repl := caddyhttp.NewTestReplacer(r)
		if groups != "" {
			repl.Set("http.auth.user.groups", groups)
		}
		var p *Principal
		var f *Failure
		rec := httptest.NewRecorder()
		err := basic.ServeHTTP(rec, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			p, f = authenticate(t, c, r)
			return nil
		}))
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			return he.StatusCode, nil, nil
		}
		return http.StatusOK, p, f
	}

	r := request()
	r.SetBasicAuth("alice", "open sesame")
	if _, p, f := serve(withCaddy, r, ""); f != nil || !equalPrincipal(p, &Principal{ID: "alice", Method: "caddy"}) {
		t.Errorf("basic_auth's user: %+v %v", p, f)
	}
	r = request()
	r.SetBasicAuth("alice", "open sesame")
	if _, p, f := serve(withCaddy, r, "admins, ops dev"); f != nil || !reflect.DeepEqual(p.Groups, []string{"admins", "ops", "dev"}) {
		t.Errorf("groups from {http.auth.user.groups}: %+v %v", p, f)
	}
	r = request()
	r.SetBasicAuth("alice", "open sesame")
	if _, p, f := serve(without, r, ""); f == nil || f.Description != "no credentials" || f.Code != "" {
		t.Errorf("basic_auth's user without caddy_identity: %+v %v, want no credentials", p, f)
	}
	r = request()
	r.SetBasicAuth("alice", "wrong")
	if status, _, _ := serve(withCaddy, r, ""); status != http.StatusUnauthorized {
		t.Errorf("a wrong password reached the handler (%d)", status)
	}
	// Credentials of our own win over Caddy's identity.
	r = request("X-API-Key", "mcpk_ci")
	r.SetBasicAuth("alice", "open sesame")
	if _, p, f := serve(withCaddy, r, ""); f != nil || p.ID != "ci" {
		t.Errorf("an API key behind basic_auth: %+v %v", p, f)
	}
	// No replacer, or no user in it: nobody.
	if _, f := authenticate(t, withCaddy, request()); f == nil || f.Description != "no credentials" {
		t.Errorf("no replacer: %v", f)
	}
	r = request()
	caddyhttp.NewTestReplacer(r)
	if _, f := authenticate(t, withCaddy, r); f == nil || f.Description != "no credentials" {
		t.Errorf("no user in the replacer: %v", f)
	}
}

// TestRequiredScopes needs every required scope, whatever the method.
func TestRequiredScopes(t *testing.T) {
	c := provision(t, &Config{
		CaddyIdentity:  true,
		RequiredScopes: []string{"mcp:tools", "mcp:read"},
		APIKeys: []APIKey{
			{Principal: "both", Hash: HashKey("k1"), Scopes: []string{"mcp:read", "mcp:tools", "x"}},
			{Principal: "one", Hash: HashKey("k2"), Scopes: []string{"mcp:read"}},
		},
	})
	if _, f := authenticate(t, c, request("X-API-Key", "k1")); f != nil {
		t.Errorf("all scopes: %v", f)
	}
	_, f := authenticate(t, c, request("X-API-Key", "k2"))
	want := &Failure{Status: 403, Code: "insufficient_scope", Description: `principal "one" lacks scope mcp:tools (required: mcp:tools mcp:read)`, Scopes: []string{"mcp:tools", "mcp:read"}}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("one scope of two: %+v, want %+v", f, want)
	}
	r := request()
	caddyhttp.NewTestReplacer(r).Set("http.auth.user.id", "carol")
	if _, f := authenticate(t, c, r); f == nil || f.Status != 403 || f.Description != `principal "carol" lacks scope mcp:tools mcp:read (required: mcp:tools mcp:read)` {
		t.Errorf("Caddy's user has no scopes: %v", f)
	}
}
