package registryapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

var officialT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// officialHandler is the site handler over a registry that holds recs.
func officialHandler(recs ...*Server) *Handler {
	r := &registry{servers: map[string]*entry{}}
	for _, s := range recs {
		r.servers[s.Name] = &entry{rec: s}
	}
	return &Handler{Prefix: "/api", api: api{reg: r, prefix: "/api"}}
}

// remoteRecord is an enabled remote server, created at officialT0 and
// updated `updated` later.
func remoteRecord(name, version string, updated time.Duration) *Server {
	return &Server{
		SchemaVersion: schemaVersion, Name: name, Version: version, URL: "https://" + name + ".example.com/mcp",
		Enabled: true, CreatedAt: officialT0, UpdatedAt: officialT0.Add(updated), Revision: 1,
	}
}

// officialGet serves GET target; a body of status 200 is decoded strictly
// into out (an official type), any other into a problem, which it returns.
func officialGet(t *testing.T, h *Handler, target string, out any) (int, *problem, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil), next); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	body := rec.Body.Bytes()
	if rec.Code == http.StatusTeapot {
		return rec.Code, nil, body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if rec.Code == http.StatusOK {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q", target, ct)
		}
		if err := dec.Decode(out); err != nil {
			t.Fatalf("GET %s: the answer is not a %T: %v\n%s", target, out, err, body)
		}
		return rec.Code, nil, body
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("GET %s: error with Content-Type %q, want application/problem+json", target, ct)
	}
	var p problem
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("GET %s: %d, the error is not {title, status, detail}: %v\n%s", target, rec.Code, err, body)
	}
	if p.Status != rec.Code || p.Title != http.StatusText(rec.Code) || p.Detail == "" {
		t.Errorf("GET %s: %d with problem %+v", target, rec.Code, p)
	}
	return rec.Code, &p, body
}

// listNames lists GET target and returns the names and the metadata.
func listNames(t *testing.T, h *Handler, target string) ([]string, apiv0.Metadata) {
	t.Helper()
	var list apiv0.ServerListResponse
	if code, p, _ := officialGet(t, h, target, &list); code != http.StatusOK {
		t.Fatalf("GET %s: %d %+v", target, code, p)
	}
	names := []string{}
	for _, s := range list.Servers {
		names = append(names, s.Server.Name)
	}
	if list.Metadata.Count != len(list.Servers) {
		t.Errorf("GET %s: metadata.count %d for %d servers", target, list.Metadata.Count, len(list.Servers))
	}
	return names, list.Metadata
}

func TestOfficialMapping(t *testing.T) {
	alpha := remoteRecord("alpha", "1.2.0", time.Hour)
	alpha.Title, alpha.Description = "Alpha", "Alpha's tools"
	alpha.Headers = map[string]string{"X-Region": "eu", "X-API-Key": "{env.ALPHA_KEY}", "Authorization": "Bearer {file./run/secrets/alpha}"}
	beta := remoteRecord("beta", "", 2*time.Hour)
	beta.Title, beta.Transport = "Beta", "sse"
	gamma := remoteRecord("gamma", "3", 0)
	disabled := remoteRecord("disabled", "1", 0)
	disabled.Enabled = false
	tmpl := &Server{Name: "tmpl", Template: "local", Enabled: true, CreatedAt: officialT0, UpdatedAt: officialT0}
	stdio := &Server{Name: "stdio", Stdio: &caddymcp.StdioConfig{Command: "server"}, Enabled: true, CreatedAt: officialT0, UpdatedAt: officialT0}
	h := officialHandler(alpha, beta, gamma, disabled, tmpl, stdio)

	meta := func(updated time.Duration) apiv0.ResponseMeta {
		return apiv0.ResponseMeta{Official: &apiv0.RegistryExtensions{
			Status: model.StatusActive, PublishedAt: officialT0, UpdatedAt: officialT0.Add(updated),
			StatusChangedAt: officialT0.Add(updated), IsLatest: true,
		}}
	}
	secret := func(name string) model.KeyValueInput {
		return model.KeyValueInput{Name: name, InputWithVariables: model.InputWithVariables{Input: model.Input{IsSecret: true, IsRequired: true}}}
	}
	want := []apiv0.ServerResponse{{
		Server: apiv0.ServerJSON{
			Schema: model.CurrentSchemaURL, Name: "alpha", Title: "Alpha", Description: "Alpha's tools", Version: "1.2.0",
			Remotes: []model.Transport{{Type: "streamable-http", URL: "https://alpha.example.com/mcp", Headers: []model.KeyValueInput{
				secret("Authorization"), secret("X-API-Key"),
				{Name: "X-Region", InputWithVariables: model.InputWithVariables{Input: model.Input{Value: "eu"}}},
			}}},
		},
		Meta: meta(time.Hour),
	}, {
		Server: apiv0.ServerJSON{
			Schema: model.CurrentSchemaURL, Name: "beta", Title: "Beta", Description: "Beta", Version: "0.0.0",
			Remotes: []model.Transport{{Type: "sse", URL: "https://beta.example.com/mcp"}},
		},
		Meta: meta(2 * time.Hour),
	}, {
		Server: apiv0.ServerJSON{
			Schema: model.CurrentSchemaURL, Name: "gamma", Description: "MCP server gamma", Version: "3",
			Remotes: []model.Transport{{Type: "streamable-http", URL: "https://gamma.example.com/mcp"}},
		},
		Meta: meta(0),
	}}

	var bodies [][]byte
	for _, target := range []string{"/v0.1/servers", "/v0/servers", "/v0.1/servers?version=latest"} {
		var list apiv0.ServerListResponse
		code, p, body := officialGet(t, h, target, &list)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %+v", target, code, p)
		}
		if !reflect.DeepEqual(list.Servers, want) {
			t.Errorf("GET %s: servers\n%+v\nwant (only the enabled remote ones)\n%+v", target, list.Servers, want)
		}
		if list.Metadata != (apiv0.Metadata{Count: 3}) {
			t.Errorf("GET %s: metadata %+v, want count 3 and no cursor", target, list.Metadata)
		}
		if bytes.Contains(body, []byte("ALPHA_KEY")) || bytes.Contains(body, []byte("secrets/alpha")) {
			t.Errorf("GET %s: a secret header's placeholder is served:\n%s", target, body)
		}
		bodies = append(bodies, body)
	}
	if !bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("/v0 and /v0.1 differ:\n%s\n%s", bodies[0], bodies[1])
	}
	// The secret headers have no value at all, not an empty one.
	if !bytes.Contains(bodies[0], []byte(`{"isRequired":true,"isSecret":true,"name":"X-API-Key"}`)) {
		t.Errorf("the secret header as served:\n%s", bodies[0])
	}

	// One server: its versions, the version itself, latest; the name may
	// come path-escaped.
	for _, target := range []string{"/v0.1/servers/alpha/versions/1.2.0", "/v0.1/servers/alpha/versions/latest", "/v0/servers/%61lpha/versions/latest", "/v0/servers/alpha/versions/1%2E2%2E0"} {
		var one apiv0.ServerResponse
		if code, p, _ := officialGet(t, h, target, &one); code != http.StatusOK || !reflect.DeepEqual(one, want[0]) {
			t.Errorf("GET %s: %d %+v\n%+v\nwant\n%+v", target, code, p, one, want[0])
		}
	}
	var one apiv0.ServerResponse
	if code, p, _ := officialGet(t, h, "/v0.1/servers/beta/versions/0.0.0", &one); code != http.StatusOK || !reflect.DeepEqual(one, want[1]) {
		t.Errorf("beta by its version 0.0.0: %d %+v %+v", code, p, one)
	}
	for _, target := range []string{"/v0.1/servers/beta/versions", "/v0/servers/beta/versions"} {
		var versions apiv0.ServerListResponse
		code, p, _ := officialGet(t, h, target, &versions)
		if code != http.StatusOK || !reflect.DeepEqual(versions.Servers, want[1:2]) || versions.Metadata != (apiv0.Metadata{Count: 1}) {
			t.Errorf("GET %s: %d %+v %+v", target, code, p, versions)
		}
	}
}

// TestOfficialPages walks the list page by page, following
// metadata.nextCursor as the official registry's clients do.
func TestOfficialPages(t *testing.T) {
	var recs []*Server
	var all []string
	for i := range 40 {
		s := remoteRecord(fmt.Sprintf("s%02d", i), "1.0.0", 0)
		s.Enabled = i%7 != 3 // disabled ones are not counted on a page
		recs = append(recs, s)
		if s.Enabled {
			all = append(all, s.Name)
		}
	}
	h := officialHandler(recs...)

	names, md := listNames(t, h, "/v0.1/servers")
	if len(names) != 30 || md.NextCursor != names[29]+":1.0.0" {
		t.Fatalf("the default page: %d servers, cursor %q; want 30 and %q", len(names), md.NextCursor, names[len(names)-1]+":1.0.0")
	}
	for _, limit := range []int{1, 7, 10, 31, 100} {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > len(all) {
				t.Fatalf("limit %d: the walk does not end", limit)
			}
			names, md := listNames(t, h, fmt.Sprintf("/v0.1/servers?limit=%d&cursor=%s", limit, cursor))
			if len(names) > limit || (md.NextCursor != "" && len(names) != limit) {
				t.Fatalf("limit %d: a page of %d, cursor %q", limit, len(names), md.NextCursor)
			}
			got = append(got, names...)
			if md.NextCursor == "" {
				break
			}
			if md.NextCursor != names[len(names)-1]+":1.0.0" {
				t.Fatalf("limit %d: cursor %q after %s, want <name>:<version> of the last", limit, md.NextCursor, names[len(names)-1])
			}
			cursor = md.NextCursor
		}
		if !reflect.DeepEqual(got, all) {
			t.Errorf("limit %d: walked %v, want %v", limit, got, all)
		}
	}

	// The cursor orders by name, then version as text, as the official
	// one does: a server whose version is above the cursor's comes again.
	if names, _ := listNames(t, h, "/v0.1/servers?limit=2&cursor=s05:0.9"); !reflect.DeepEqual(names, []string{"s05", "s06"}) {
		t.Errorf("after s05:0.9: %v, want s05 (1.0.0 sorts after 0.9) then s06", names)
	}
	if names, _ := listNames(t, h, "/v0.1/servers?limit=2&cursor=s09:1.0.0"); !reflect.DeepEqual(names, []string{"s11", "s12"}) {
		t.Errorf("after s09:1.0.0: %v, want s11 s12 (s10 disabled)", names)
	}
	// A cursor for a server that is gone still places the page.
	if names, _ := listNames(t, h, "/v0.1/servers?limit=1&cursor=s33a:1"); !reflect.DeepEqual(names, []string{"s34"}) {
		t.Errorf("after the unknown s33a: %v, want s34", names)
	}
}

func TestOfficialFilters(t *testing.T) {
	h := officialHandler(
		remoteRecord("weather-eu", "1", 1*time.Hour),
		remoteRecord("weather-us", "1", 2*time.Hour),
		remoteRecord("github", "1", 3*time.Hour),
		remoteRecord("slack", "1", 4*time.Hour),
	)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"search=weather", []string{"weather-eu", "weather-us"}},
		{"search=WEATHER-U", []string{"weather-us"}},
		{"search=Hub", []string{"github"}},
		{"search=nothing", []string{}},
		// Strictly after: weather-us was updated at exactly T0+2h.
		{"updated_since=2026-01-02T05:04:05Z", []string{"github", "slack"}},
		{"updated_since=2026-01-02T05:04:04.999Z", []string{"github", "slack", "weather-us"}},
		{"updated_since=2026-01-02T06:04:05%2B01:00", []string{"github", "slack"}},
		{"updated_since=2026-01-02T05:04:05Z&search=weather", []string{}},
		{"version=latest&search=sla", []string{"slack"}},
		{"search=weather&limit=1&cursor=weather-eu:1", []string{"weather-us"}},
	} {
		names, md := listNames(t, h, "/v0.1/servers?"+tt.query)
		if !reflect.DeepEqual(names, tt.want) || md.NextCursor != "" {
			t.Errorf("?%s: %v (cursor %q), want %v", tt.query, names, md.NextCursor, tt.want)
		}
	}
	names, md := listNames(t, h, "/v0.1/servers?search=weather&limit=1")
	if !reflect.DeepEqual(names, []string{"weather-eu"}) || md.NextCursor != "weather-eu:1" {
		t.Errorf("the first page of a search: %v %q", names, md.NextCursor)
	}
}

func TestOfficialErrors(t *testing.T) {
	disabled := remoteRecord("off", "1", 0)
	disabled.Enabled = false
	tmpl := &Server{Name: "tmpl", Template: "local", Enabled: true}
	h := officialHandler(remoteRecord("alpha", "1.2.0", 0), disabled, tmpl)
	for _, tt := range []struct {
		target string
		status int
		detail string
	}{
		{"/v0.1/servers/nothing/versions", 404, `server "nothing" not found`},
		{"/v0.1/servers/nothing/versions/latest", 404, `server "nothing" not found`},
		{"/v0/servers/io.example%2Falpha/versions/latest", 404, `server "io.example/alpha" not found`},
		{"/v0.1/servers/off/versions/latest", 404, `server "off" not found (only enabled servers reached through a URL`},
		{"/v0.1/servers/tmpl/versions", 404, `server "tmpl" not found`},
		{"/v0.1/servers/alpha/versions/1.0.0", 404, `server "alpha" has no version "1.0.0": it has "1.2.0"`},
		{"/v0.1/servers/alpha", 404, "no such path /v0.1/servers/alpha"},
		{"/v0.1/servers/alpha/versions/1.2.0/more", 404, "no such path"},
		{"/v0.1/servers/", 404, "no such path"},
		{"/v0.1/servers?limit=0", 400, `limit "0": want a number from 1 to 100`},
		{"/v0.1/servers?limit=101", 400, `limit "101"`},
		{"/v0.1/servers?limit=ten", 400, `limit "ten"`},
		{"/v0.1/servers?cursor=alpha", 400, `cursor "alpha": want <name>:<version>`},
		{"/v0.1/servers?cursor=Alpha:1", 400, `cursor "Alpha:1"`},
		{"/v0.1/servers?cursor=alpha:", 400, `cursor "alpha:"`},
		{"/v0.1/servers?updated_since=yesterday", 400, `updated_since "yesterday": want an RFC 3339 time`},
		{"/v0.1/servers?updated_since=2026-01-02", 400, `updated_since "2026-01-02"`},
		{"/v0.1/servers?version=1.2.0", 400, `version "1.2.0": only "latest" is supported`},
	} {
		code, p, body := officialGet(t, h, tt.target, nil)
		if code != tt.status || p == nil || !strings.Contains(p.Detail, tt.detail) {
			t.Errorf("GET %s: %d %s, want %d saying %q", tt.target, code, body, tt.status, tt.detail)
		}
	}

	// Only reads.
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v0.1/servers", strings.NewReader("{}")), nil); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(rec.Body.String(), `"status":405`) {
		t.Errorf("POST /v0.1/servers: %d, Allow %q, %s", rec.Code, rec.Header().Get("Allow"), rec.Body)
	}

	// Other paths go on to the next handler; the site's API stays.
	for _, target := range []string{"/v0/publish", "/v0.2/servers", "/v0.1/serversx", "/v1/servers", "/servers/alpha/mcp"} {
		if code, _, _ := officialGet(t, h, target, nil); code != http.StatusTeapot {
			t.Errorf("GET %s: %d, want it passed to the next handler", target, code)
		}
	}
	rec = httptest.NewRecorder()
	if err := h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/servers/alpha", nil), nil); err != nil || rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"name":"alpha"`) {
		t.Errorf("GET /api/servers/alpha beside the official API: %v %d %s", err, rec.Code, rec.Body)
	}
}

// TestOfficialFixtureShape compares the keys of a list, at every level
// but the server's own (the official types check those), with the
// official registry's, in the shared fixtures.
func TestOfficialFixtureShape(t *testing.T) {
	fixture, err := os.ReadFile("../../shared/fixtures/official-registry/servers.page1.json")
	if err != nil {
		t.Fatal(err)
	}
	h := officialHandler(remoteRecord("alpha", "1", 0), remoteRecord("beta", "1", 0))
	_, _, body := officialGet(t, h, "/v0.1/servers?limit=1", &apiv0.ServerListResponse{})
	shape := func(b []byte) map[string][]string {
		var list map[string]any
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		keys := func(v any) []string { return slices.Sorted(maps.Keys(v.(map[string]any))) }
		item := list["servers"].([]any)[0].(map[string]any)
		meta := item["_meta"].(map[string]any)
		return map[string][]string{
			"list": keys(list), "metadata": keys(list["metadata"]), "item": keys(item), "_meta": keys(meta),
			"official": keys(meta["io.modelcontextprotocol.registry/official"]),
			"$schema":  {item["server"].(map[string]any)["$schema"].(string)},
		}
	}
	if got, want := shape(body), shape(fixture); !reflect.DeepEqual(got, want) {
		t.Errorf("keys of our list:\n%v\nof the official one:\n%v", got, want)
	}
}

// TestOfficialNeverShowsCredentials: a literal Authorization (or Cookie)
// value is served as a secret without its value, like a placeholder.
func TestOfficialNeverShowsCredentials(t *testing.T) {
	s := &Server{Name: "x", URL: "https://x.example.com/mcp", Headers: map[string]string{
		"authorization": "Bearer sk-live-123", "Cookie": "session=abc", "X-Region": "eu",
	}}
	res := officialServer(s)
	b, _ := json.Marshal(res)
	for _, secret := range []string{"sk-live-123", "session=abc"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the official answer shows %q: %s", secret, b)
		}
	}
	if !strings.Contains(string(b), `"value":"eu"`) {
		t.Errorf("a plain header lost its value: %s", b)
	}
}
