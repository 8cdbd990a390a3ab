package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-mcp/caddy-mcp/tests/peers"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestRegistryAPISemantics walks the registry's REST API on one Caddy, with a
// live conformance server and a URL where nothing listens. Probes are off so
// that health changes only when a test asks for a refresh.
func TestRegistryAPISemantics(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	dead := "http://" + freeAddr(t) + "/mcp"
	s := registrySite(t, map[string]any{"probe": map[string]any{"disabled": true}})
	p := s.start(t)
	srv := func(name string) string { return s.url("/api/servers/" + name) }
	create := func(t *testing.T, rec map[string]any) map[string]any {
		t.Helper()
		status, _, body := apiCall(t, "POST", s.url("/api/servers"), rec, nil)
		if status != http.StatusCreated {
			t.Fatalf("POST /api/servers %v: %d %v", rec, status, body)
		}
		return body
	}
	get := func(t *testing.T, name string) map[string]any {
		t.Helper()
		status, _, body := apiCall(t, "GET", srv(name), nil, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", name, status, body)
		}
		return body
	}
	var toolCount int // of the conformance server

	t.Run("create", func(t *testing.T) {
		status, hdr, rec := apiCall(t, "POST", s.url("/api/servers"), map[string]any{"name": "conf", "url": upstream}, nil)
		if status != http.StatusCreated {
			t.Fatalf("POST {name, url}: %d %v", status, rec)
		}
		if hdr.Get("ETag") != `"1"` || hdr.Get("Location") != "" {
			t.Errorf("ETag %q, Location %q; want \"1\" and none", hdr.Get("ETag"), hdr.Get("Location"))
		}
		st, _ := rec["status"].(map[string]any)
		if rec["name"] != "conf" || rec["url"] != upstream || rec["enabled"] != true || rec["revision"] != 1.0 ||
			rec["schema_version"] != 1.0 || rec["created_at"] != rec["updated_at"] || st == nil || st["health"] != "unknown" {
			t.Errorf("new record: %v", rec)
		}
	})

	t.Run("get", func(t *testing.T) {
		status, hdr, rec := apiCall(t, "GET", srv("conf"), nil, nil)
		if status != http.StatusOK || hdr.Get("ETag") != `"1"` || rec["name"] != "conf" {
			t.Errorf("GET: %d ETag %q %v", status, hdr.Get("ETag"), rec)
		}
		if status, _, body := apiCall(t, "GET", srv("conf"), nil, http.Header{"If-None-Match": {`"1"`}}); status != http.StatusNotModified || body != nil {
			t.Errorf("If-None-Match current: %d %v, want 304 without a body", status, body)
		}
		if status, _, _ := apiCall(t, "GET", srv("conf"), nil, http.Header{"If-None-Match": {`"7"`}}); status != http.StatusOK {
			t.Errorf("If-None-Match stale: %d, want 200", status)
		}
		status, _, body := apiCall(t, "GET", srv("nope"), nil, nil)
		raWantError(t, status, body, http.StatusNotFound, "not_found", "name", `"nope"`)
	})

	t.Run("refresh", func(t *testing.T) {
		status, _, rec := apiCall(t, "POST", srv("conf")+"/refresh", nil, nil)
		st, _ := rec["status"].(map[string]any)
		if status != http.StatusOK || st == nil || st["health"] != "healthy" || !(st["latency_ms"].(float64) > 0) ||
			st["last_check"] == nil || !(st["tool_count"].(float64) > 0) {
			t.Fatalf("refresh of a live upstream: %d %v", status, rec)
		}
		toolCount = int(st["tool_count"].(float64))
		create(t, map[string]any{"name": "dead", "url": dead})
		status, _, rec = apiCall(t, "POST", srv("dead")+"/refresh", nil, nil)
		st, _ = rec["status"].(map[string]any)
		if status != http.StatusOK || st == nil || st["health"] != "unhealthy" ||
			!strings.Contains(fmt.Sprint(st["reason"]), "connection refused") || st["last_error"] == nil {
			t.Fatalf("refresh of a closed port: %d %v; want unhealthy, reason naming the refused connection", status, rec)
		}
		if st["consecutive_failures"] != 1.0 {
			t.Errorf("one failed refresh counts %v consecutive failures, want 1", st["consecutive_failures"])
		}
	})

	t.Run("tools", func(t *testing.T) {
		_, _, got := apiCall(t, "GET", srv("conf")+"/tools", nil, nil)
		if got["count"] != float64(toolCount) || !raHasTool(got, "test_simple_text") {
			t.Errorf("tools after a refresh: %v", got)
		}
		create(t, map[string]any{"name": "called", "url": upstream})
		if _, _, got := apiCall(t, "GET", srv("called")+"/tools", nil, nil); got["count"] != 0.0 || len(got["tools"].([]any)) != 0 {
			t.Errorf("tools before any call: %v, want none", got)
		}
		cs := connect(t, s.url("/servers/called/mcp"), h1Client(), nil)
		if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
			t.Fatalf("calling through the registry's route: %v", err)
		}
		if _, _, got := apiCall(t, "GET", srv("called")+"/tools", nil, nil); got["count"] != float64(toolCount) || !raHasTool(got, "test_simple_text") {
			t.Errorf("tools after a call: %v", got)
		}
	})

	t.Run("health", func(t *testing.T) {
		want := map[string]any{"status": "ok", "servers": 3.0, "enabled": 3.0, "tools": float64(2 * toolCount),
			"health": map[string]any{"healthy": 1.0, "unhealthy": 1.0, "unknown": 1.0}}
		for _, path := range []string{"/health", "/api/health"} {
			if status, _, got := apiCall(t, "GET", s.url(path), nil, nil); status != http.StatusOK || !reflect.DeepEqual(got, want) {
				t.Errorf("GET %s: %d %v, want %v", path, status, got, want)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		for i := 1; i <= 7; i++ {
			desc := fmt.Sprintf("plain server %d", i)
			if i%3 == 0 {
				desc = fmt.Sprintf("Weather station %d", i)
			}
			create(t, map[string]any{"name": fmt.Sprintf("f%02d", i), "url": dead, "description": desc,
				"tags": []string{[]string{"team-b", "team-a"}[i%2]}, "enabled": i != 4})
		}
		all := []string{"called", "conf", "dead", "f01", "f02", "f03", "f04", "f05", "f06", "f07"}
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"", all},
			{"enabled=false", []string{"f04"}},
			{"enabled=true&tag=team-a", []string{"f01", "f03", "f05", "f07"}},
			{"tag=TEAM-B", []string{"f02", "f04", "f06"}},
			{"health=healthy", []string{"conf"}},
			{"health=unhealthy", []string{"dead"}},
			{"q=WEATHER", []string{"f03", "f06"}},
			{"q=f0&enabled=true", []string{"f01", "f02", "f03", "f05", "f06", "f07"}},
			{"q=nothing-like-this", nil},
		} {
			for _, limit := range []int{2, 3, 1000} {
				names, total := raWalk(t, s.url("/api/servers?"+c.query), limit)
				if !slices.Equal(names, c.want) || total != len(c.want) {
					t.Errorf("?%s, pages of %d: %v (total %d), want %v", c.query, limit, names, total, c.want)
				}
			}
		}
	})

	t.Run("put", func(t *testing.T) {
		old := get(t, "f01")
		status, hdr, rec := apiCall(t, "PUT", srv("f01"), map[string]any{"url": dead, "title": "Replaced", "tags": []string{"team-c"}}, nil)
		if status != http.StatusOK || hdr.Get("ETag") != `"2"` {
			t.Fatalf("PUT: %d ETag %q %v", status, hdr.Get("ETag"), rec)
		}
		if rec["created_at"] != old["created_at"] || rec["revision"] != 2.0 || !raTime(t, rec["updated_at"]).After(raTime(t, old["updated_at"])) ||
			rec["title"] != "Replaced" || rec["description"] != nil || !reflect.DeepEqual(rec["tags"], []any{"team-c"}) {
			t.Errorf("PUT replaces the spec, keeps created_at, counts the revision:\nold %v\nnew %v", old, rec)
		}
		if got := get(t, "f01"); !reflect.DeepEqual(got, rec) {
			t.Errorf("GET after PUT: %v, want %v", got, rec)
		}
	})

	t.Run("patch", func(t *testing.T) {
		_, _, rec := apiCall(t, "PATCH", srv("f02"), map[string]any{"tags": []string{"a"}}, nil)
		if !reflect.DeepEqual(rec["tags"], []any{"a"}) || rec["description"] != "plain server 2" || rec["url"] != dead || rec["revision"] != 2.0 {
			t.Errorf(`PATCH {"tags":["a"]}: %v`, rec)
		}
		_, hdr, rec := apiCall(t, "PATCH", srv("f02"), `{"description":null}`, nil)
		if _, ok := rec["description"]; ok || !reflect.DeepEqual(rec["tags"], []any{"a"}) || rec["revision"] != 3.0 || hdr.Get("ETag") != `"3"` {
			t.Errorf(`PATCH {"description":null}: %v`, rec)
		}
	})

	t.Run("if-match", func(t *testing.T) {
		before := get(t, "f02") // revision 3
		stale := http.Header{"If-Match": {`"2"`}}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", srv("f02"), map[string]any{"title": "lost"}},
			{"PUT", srv("f02"), map[string]any{"url": dead, "title": "lost"}},
			{"DELETE", srv("f02"), nil},
			{"POST", srv("f02") + "/disable", nil},
		} {
			status, _, body := apiCall(t, c.method, c.path, c.body, stale)
			raWantError(t, status, body, http.StatusPreconditionFailed, "precondition_failed", "", `"3"`)
			if got := get(t, "f02"); !reflect.DeepEqual(got, before) {
				t.Errorf("%s with a stale If-Match changed the record: %v, was %v", c.method, got, before)
			}
		}
		status, hdr, rec := apiCall(t, "PATCH", srv("f02"), map[string]any{"title": "won"}, http.Header{"If-Match": {`"3"`}})
		if status != http.StatusOK || rec["title"] != "won" || hdr.Get("ETag") != `"4"` {
			t.Errorf("PATCH with the current If-Match: %d ETag %q %v", status, hdr.Get("ETag"), rec)
		}
	})

	t.Run("enable-disable", func(t *testing.T) {
		route := s.url("/servers/f05/mcp")
		for _, step := range []struct {
			action   string
			enabled  bool
			revision float64
		}{{"disable", false, 2}, {"disable", false, 2}, {"enable", true, 3}, {"enable", true, 3}} {
			status, hdr, rec := apiCall(t, "POST", srv("f05")+"/"+step.action, nil, nil)
			if status != http.StatusOK || rec["enabled"] != step.enabled || rec["revision"] != step.revision || hdr.Get("ETag") != fmt.Sprintf(`"%v"`, step.revision) {
				t.Errorf("%s: %d %v, want enabled %v at revision %v", step.action, status, rec, step.enabled, step.revision)
			}
			if got := raRouteStatus(t, route); (got == http.StatusNotFound) == step.enabled {
				t.Errorf("after %s the route answers %d", step.action, got)
			}
			if !step.enabled {
				status, _, body := apiCall(t, "POST", srv("f05")+"/refresh", nil, nil)
				raWantError(t, status, body, http.StatusBadRequest, "invalid_field", "enabled", "disabled")
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		route := s.url("/servers/called/mcp")
		if got := raRouteStatus(t, route); got != http.StatusOK {
			t.Fatalf("before DELETE the route answers %d", got)
		}
		if status, _, body := apiCall(t, "DELETE", srv("called"), nil, nil); status != http.StatusNoContent || body != nil {
			t.Fatalf("DELETE: %d %v, want 204 without a body", status, body)
		}
		for _, path := range []string{"", "/tools"} {
			status, _, body := apiCall(t, "GET", srv("called")+path, nil, nil)
			raWantError(t, status, body, http.StatusNotFound, "not_found", "name", `"called"`)
		}
		if got := raRouteStatus(t, route); got != http.StatusNotFound {
			t.Errorf("after DELETE the route answers %d, want 404", got)
		}
		status, _, body := apiCall(t, "DELETE", srv("called"), nil, nil)
		raWantError(t, status, body, http.StatusNotFound, "not_found", "name", `"called"`)
	})

	t.Run("search", func(t *testing.T) {
		if status, _, rec := apiCall(t, "PATCH", srv("conf"), map[string]any{"tags": []string{"conformance"}}, nil); status != http.StatusOK {
			t.Fatalf("tagging conf: %d %v", status, rec)
		}
		for _, c := range []struct {
			query   string
			servers []string // the servers of the hits, in order; nil: none
		}{
			{"q=simple+text", nil},
			{"q=simple+text&server=conf", nil},
			{"q=simple+text&tag=conformance", nil},
			{"q=simple+text&limit=1", []string{"conf"}},
			{"q=simple+text&server=dead", []string{}},
			{"q=simple+text&tag=team-a", []string{}},
		} {
			status, _, got := apiCall(t, "GET", s.url("/api/search?"+c.query), nil, nil)
			hits, _ := got["results"].([]any)
			if status != http.StatusOK || (c.servers != nil && len(hits) != len(c.servers)) || (c.servers == nil && len(hits) == 0) {
				t.Errorf("search ?%s: %d %v", c.query, status, got)
				continue
			}
			for i, h := range hits {
				hit := h.(map[string]any)
				if hit["server"] != "conf" || (i == 0 && hit["tool"] != "test_simple_text") {
					t.Errorf("search ?%s: hit %d is %v; want conf's, test_simple_text first", c.query, i, hit)
				}
			}
		}
	})

	admin := p.admin + "/mcp-registry"
	t.Run("admin", func(t *testing.T) {
		if status, _, rec := apiCall(t, "POST", admin+"/servers", map[string]any{"name": "via-admin", "url": upstream}, nil); status != http.StatusCreated {
			t.Fatalf("POST through the admin API: %d %v", status, rec)
		}
		if rec := get(t, "via-admin"); rec["url"] != upstream || rec["revision"] != 1.0 {
			t.Errorf("the site API after an admin POST: %v", rec)
		}
		if status, _, rec := apiCall(t, "PATCH", admin+"/servers/via-admin", map[string]any{"title": "From admin"}, nil); status != http.StatusOK {
			t.Errorf("PATCH through the admin API: %d %v", status, rec)
		}
		if rec := get(t, "via-admin"); rec["title"] != "From admin" || rec["revision"] != 2.0 {
			t.Errorf("the site API after an admin PATCH: %v", rec)
		}
		status, _, body := apiCall(t, "POST", admin+"/servers", map[string]any{"name": "Via-Admin", "url": upstream}, nil)
		raWantError(t, status, body, http.StatusBadRequest, "invalid_field", "name", `"Via-Admin"`)

		siteAll, _ := raWalk(t, s.url("/api/servers?"), 1000)
		if adminAll, _ := raWalk(t, admin+"/servers?", 1000); !slices.Equal(adminAll, siteAll) {
			t.Errorf("the admin list %v differs from the site's %v", adminAll, siteAll)
		}
		enabled, _ := raWalk(t, s.url("/api/servers?enabled=true"), 1000)
		var table struct {
			Routes []struct {
				Server struct {
					Name   string         `json:"name"`
					Remote map[string]any `json:"remote"`
				} `json:"server"`
				Aggregate bool `json:"aggregate"`
			} `json:"routes"`
		}
		raGetJSON(t, admin+"/routes", &table)
		var routed []string
		for _, r := range table.Routes {
			routed = append(routed, r.Server.Name)
			if !r.Aggregate || r.Server.Remote["url"] == nil {
				t.Errorf("route %+v: want on the aggregate, with its URL", r)
			}
		}
		if !slices.Equal(routed, enabled) {
			t.Errorf("live routes %v, want the enabled servers %v", routed, enabled)
		}
	})

	t.Run("export", func(t *testing.T) {
		var routes []map[string]any
		raGetJSON(t, admin+"/routes/caddy", &routes)
		b, _ := json.Marshal(routes)
		if len(routes) != 1 || !strings.Contains(string(b), `"handler":"mcp_gateway"`) ||
			!strings.Contains(string(b), fmt.Sprintf(`{"name":"via-admin","remote":{"url":%q}}`, upstream)) {
			t.Fatalf("export: %s", b)
		}
		frozen := newSite(t)
		frozen.routes = routes
		frozen.start(t)
		cs := connect(t, frozen.url("/servers/via-admin/mcp"), h1Client(), nil)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"})
		if err != nil || !strings.Contains(text(res), "simple text") {
			t.Errorf("the exported config serving via-admin: %v %v", res, err)
		}
	})
}

// TestRegistryAPIBadInput sends the API what it must refuse, each refusal
// with its status, code and field, and then finds the registry, in memory
// and on disk, holding exactly what the valid requests made.
func TestRegistryAPIBadInput(t *testing.T) {
	const okURL = "http://192.0.2.10/mcp" // TEST-NET-1: allowed here, never dialled (probes off)
	s := registrySite(t, map[string]any{
		"allowed_networks": []string{"192.0.2.0/24"},
		"probe":            map[string]any{"disabled": true},
		"templates": map[string]any{"demo": map[string]any{
			"stdio": map[string]any{"command": "{mcp.executable}", "args": []string{"mcp", "demo-server"}}}},
	})
	// What the API does not serve goes on to this handler.
	s.routes = []map[string]any{{"handle": []map[string]any{
		{"handler": "mcp_registry_api"},
		{"handler": "static_response", "status_code": http.StatusTeapot, "body": `{"next":"handler"}`},
	}}}
	s.start(t)
	valid := map[string]map[string]any{
		"good": {"name": "good", "url": okURL, "tags": []string{"x"}},
		"tmpl": {"name": "tmpl", "template": "demo"},
	}
	for _, rec := range valid {
		if status, _, body := apiCall(t, "POST", s.url("/api/servers"), rec, nil); status != http.StatusCreated {
			t.Fatalf("POST %v: %d %v", rec, status, body)
		}
	}

	servers, good := s.url("/api/servers"), s.url("/api/servers/good")
	post := func(fields ...any) map[string]any { // name, value pairs
		m := map[string]any{}
		for i := 0; i < len(fields); i += 2 {
			m[fields[i].(string)] = fields[i+1]
		}
		return m
	}
	huge := `{"name":"big","url":"` + okURL + `","description":"` + strings.Repeat("a", 1<<20) + `"}`
	for _, c := range []struct {
		what        string
		method, url string
		body        any
		header      http.Header
		status      int
		code, field string
		msg         string // a part of the message, or of Allow for a 405
	}{
		{"uppercase name", "POST", servers, post("name", "Bad", "url", okURL), nil, 400, "invalid_field", "name", `"Bad"`},
		{"path in name", "POST", servers, post("name", "../x", "url", okURL), nil, 400, "invalid_field", "name", `"../x"`},
		{"empty name", "POST", servers, post("name", "", "url", okURL), nil, 400, "invalid_field", "name", `""`},
		{"65-char name", "POST", servers, post("name", strings.Repeat("a", 65), "url", okURL), nil, 400, "invalid_field", "name", "1-64"},
		{"leading dash", "POST", servers, post("name", "-x", "url", okURL), nil, 400, "invalid_field", "name", `"-x"`},
		{"duplicate", "POST", servers, post("name", "good", "url", okURL), nil, 409, "conflict", "name", `"good" already exists`},
		{"malformed JSON", "POST", servers, `{"name": "m",, }`, nil, 400, "invalid_json", "", "malformed JSON"},
		{"truncated JSON", "POST", servers, `{"name": "m", "url": `, nil, 400, "invalid_json", "", "unexpected EOF"},
		{"empty body", "POST", servers, "", nil, 400, "invalid_json", "", "empty"},
		{"two values", "POST", servers, `{"name":"two","url":"` + okURL + `"} {}`, nil, 400, "invalid_json", "", "more than one"},
		{"unknown field", "POST", servers, post("name", "u", "url", okURL, "colour", "red"), nil, 400, "unknown_field", "colour", `"colour"`},
		{"tags not a list", "POST", servers, post("name", "w", "url", okURL, "tags", "x"), nil, 400, "invalid_field", "tags", "tags"},
		{"enabled not a bool", "POST", servers, post("name", "w", "url", okURL, "enabled", "yes"), nil, 400, "invalid_field", "enabled", "enabled"},
		{"bad tag", "POST", servers, post("name", "w", "url", okURL, "tags", []string{"bad tag"}), nil, 400, "invalid_field", "tags[0]", `"bad tag"`},
		{"bad transport", "POST", servers, post("name", "w", "url", okURL, "transport", "ws"), nil, 400, "invalid_field", "transport", `"ws"`},
		{"body over 1 MiB", "POST", servers, huge, nil, 413, "too_large", "", "1048576"},
		{"metadata", "POST", servers, post("name", "r", "url", "http://169.254.169.254/"), nil, 400, "url_refused", "url", "cloud metadata service"},
		{"private", "POST", servers, post("name", "r", "url", "http://10.0.0.1/mcp"), nil, 400, "url_refused", "url", "is private"},
		{"localhost", "POST", servers, post("name", "r", "url", "http://localhost:1/mcp"), nil, 400, "url_refused", "url", "loopback name"},
		{"loopback", "POST", servers, post("name", "r", "url", "http://127.0.0.1:1/mcp"), nil, 400, "url_refused", "url", "is loopback"},
		{"numeric loopback", "POST", servers, post("name", "r", "url", "http://2130706433/mcp"), nil, 400, "url_refused", "url", "is loopback"},
		{"ftp scheme", "POST", servers, post("name", "r", "url", "ftp://192.0.2.10/mcp"), nil, 400, "url_refused", "url", `scheme "ftp"`},
		{"no scheme", "POST", servers, post("name", "r", "url", "192.0.2.10/mcp"), nil, 400, "url_refused", "url", "missing scheme"},
		{"user info", "POST", servers, post("name", "r", "url", "http://u:p@192.0.2.10/mcp"), nil, 400, "url_refused", "url", "user info"},
		{"unknown template", "POST", servers, post("name", "t", "template", "nope"), nil, 400, "invalid_field", "template", `"nope"`},
		{"stdio", "POST", servers, post("name", "c", "stdio", map[string]any{"command": "/bin/sh"}), nil, 403, "forbidden", "stdio", "allow_commands"},
		{"container", "POST", servers, post("name", "c", "container", map[string]any{"image": "alpine"}), nil, 403, "forbidden", "container", "allow_commands"},
		{"header name", "POST", servers, post("name", "h", "url", okURL, "headers", map[string]string{"Bad Header": "v"}), nil, 400, "invalid_field", "headers", `"Bad Header"`},
		{"hop-by-hop header", "POST", servers, post("name", "h", "url", okURL, "headers", map[string]string{"Host": "v"}), nil, 400, "invalid_field", "headers", `"Host"`},
		{"header value", "POST", servers, post("name", "h", "url", okURL, "headers", map[string]string{"X-Token": "a\nb"}), nil, 400, "invalid_field", "headers.X-Token", "header value"},
		{"url and template", "POST", servers, post("name", "k", "url", okURL, "template", "demo"), nil, 400, "invalid_field", "url", "got 2"},
		{"no way to reach", "POST", servers, post("name", "k"), nil, 400, "invalid_field", "url", "got 0"},
		{"PUT renames", "PUT", good, post("name", "other", "url", okURL), nil, 400, "invalid_field", "name", "cannot change"},
		{"PUT refused url", "PUT", good, post("url", "http://10.1.2.3/"), nil, 400, "url_refused", "url", "private"},
		{"PUT unknown server", "PUT", servers + "/nope", post("url", okURL), nil, 404, "not_found", "name", `"nope"`},
		{"PATCH wrong type", "PATCH", good, `{"tags":"x"}`, nil, 400, "invalid_field", "tags", "tags"},
		{"PATCH drops url", "PATCH", good, `{"url":null}`, nil, 400, "invalid_field", "url", "got 0"},
		{"PATCH to unknown template", "PATCH", good, `{"url":null,"template":"nope"}`, nil, 400, "invalid_field", "template", `"nope"`},
		{"PATCH not an object", "PATCH", good, `[1]`, nil, 400, "invalid_json", "", "merge patch"},
		{"PATCH stale", "PATCH", good, `{"title":"x"}`, http.Header{"If-Match": {`"7"`}}, 412, "precondition_failed", "", `"1"`},
		{"enable unknown", "POST", servers + "/nope/enable", nil, nil, 404, "not_found", "name", `"nope"`},
		{"limit 0", "GET", servers + "?limit=0", nil, nil, 400, "invalid_parameter", "limit", `"0"`},
		{"limit too big", "GET", servers + "?limit=1001", nil, nil, 400, "invalid_parameter", "limit", "1000"},
		{"bad cursor", "GET", servers + "?cursor=%21%21", nil, nil, 400, "invalid_parameter", "cursor", `"!!"`},
		{"bad enabled", "GET", servers + "?enabled=maybe", nil, nil, 400, "invalid_parameter", "enabled", `"maybe"`},
		{"search without q", "GET", s.url("/api/search"), nil, nil, 400, "invalid_parameter", "q", "required"},
		{"DELETE the list", "DELETE", servers, nil, nil, 405, "method_not_allowed", "", "GET, POST"},
		{"POST a server", "POST", good, nil, nil, 405, "method_not_allowed", "", "DELETE, GET, PATCH, PUT"},
		{"GET refresh", "GET", good + "/refresh", nil, nil, 405, "method_not_allowed", "", "POST"},
		{"PUT /health", "PUT", s.url("/health"), nil, nil, 405, "method_not_allowed", "", "GET, HEAD"},
		{"unknown path", "GET", s.url("/api/nope"), nil, nil, http.StatusTeapot, "", "", ""},
		{"unknown server subpath", "POST", good + "/restart", nil, nil, http.StatusTeapot, "", "", ""},
		{"too deep", "GET", good + "/tools/x", nil, nil, http.StatusTeapot, "", "", ""},
	} {
		t.Run(c.what, func(t *testing.T) {
			status, hdr, body := apiCall(t, c.method, c.url, c.body, c.header)
			switch {
			case c.status == http.StatusTeapot:
				if status != c.status || body["next"] != "handler" {
					t.Errorf("%s %s: %d %v, want the next handler's answer", c.method, c.url, status, body)
				}
			case c.status == http.StatusMethodNotAllowed:
				raWantError(t, status, body, c.status, c.code, c.field, c.method)
				if hdr.Get("Allow") != c.msg {
					t.Errorf("Allow %q, want %q", hdr.Get("Allow"), c.msg)
				}
			default:
				raWantError(t, status, body, c.status, c.code, c.field, c.msg)
			}
		})
	}

	// Nothing lost, nothing half-written: the list and the storage hold
	// exactly the two valid records, as first written.
	status, _, list := apiCall(t, "GET", servers, nil, nil)
	if status != http.StatusOK || list["total"] != 2.0 {
		t.Fatalf("list after bad input: %d %v", status, list)
	}
	for _, v := range list["servers"].([]any) {
		rec := v.(map[string]any)
		if want := valid[rec["name"].(string)]; want == nil || rec["revision"] != 1.0 || rec["url"] != want["url"] || rec["template"] != want["template"] {
			t.Errorf("after bad input the registry has %v", rec)
		}
	}
	dir := filepath.Join(s.dir, "storage", "mcp_registry", "servers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.Name())
		var rec map[string]any
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err != nil || json.Unmarshal(b, &rec) != nil || rec["revision"] != 1.0 {
			t.Errorf("stored %s: %v %v", e.Name(), rec, err)
		}
	}
	if !slices.Equal(files, []string{"good.json", "tmpl.json"}) {
		t.Errorf("storage holds %v, want good.json and tmpl.json", files)
	}
}

// TestRegistryAPIUnreadableStore restarts Caddy on a storage where one record
// is garbage and another has a newer schema: the others are served and
// writable, the bad ones are named in the log and left as they are.
func TestRegistryAPIUnreadableStore(t *testing.T) {
	upstream := peers.StartGoConformanceHTTP(t)
	s := registrySite(t, map[string]any{"probe": map[string]any{"disabled": true}})
	p := s.start(t)
	for _, name := range []string{"good-a", "good-b", "garbled", "future"} {
		if status, _, body := apiCall(t, "POST", s.url("/api/servers"), map[string]any{"name": name, "url": upstream}, nil); status != http.StatusCreated {
			t.Fatalf("POST %s: %d %v", name, status, body)
		}
	}
	p.stop()

	dir := filepath.Join(s.dir, "storage", "mcp_registry", "servers")
	file := func(name string) string { return filepath.Join(dir, name+".json") }
	garbage := []byte(`{"name": "garbled", "url": tru`)
	if err := os.WriteFile(file("garbled"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	b, err := os.ReadFile(file("future"))
	if err != nil || json.Unmarshal(b, &rec) != nil {
		t.Fatalf("reading the stored record: %v %s", err, b)
	}
	rec["schema_version"] = 99
	future, _ := json.Marshal(rec)
	if err := os.WriteFile(file("future"), future, 0o600); err != nil {
		t.Fatal(err)
	}

	p = s.start(t)
	for _, want := range []string{`record \"garbled\" in storage is unreadable`, `record \"future\" in storage has schema version 99`} {
		if !slices.ContainsFunc(strings.Split(p.logs(), "\n"), func(line string) bool {
			return strings.Contains(line, "skipping a registry record") && strings.Contains(line, want)
		}) {
			t.Errorf("the log has no line skipping a registry record with %s", want)
		}
	}
	if names, total := raWalk(t, s.url("/api/servers?"), 100); !slices.Equal(names, []string{"good-a", "good-b"}) || total != 2 {
		t.Errorf("served after restart: %v (total %d), want good-a and good-b", names, total)
	}
	cs := connect(t, s.url("/servers/good-a/mcp"), h1Client(), nil)
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "test_simple_text"}); err != nil {
		t.Errorf("calling good-a after the restart: %v", err)
	}
	status, _, body := apiCall(t, "PATCH", s.url("/api/servers/good-b"), map[string]any{"title": "still writable"}, nil)
	if status != http.StatusOK || body["revision"] != 2.0 {
		t.Errorf("PATCH good-b: %d %v", status, body)
	}
	if b, _ := os.ReadFile(file("good-b")); !strings.Contains(string(b), `"title":"still writable"`) {
		t.Errorf("good-b on disk after PATCH: %s", b)
	}
	// A write to an unreadable record must not overwrite what an operator may yet recover.
	status, _, body = apiCall(t, "POST", s.url("/api/servers"), map[string]any{"name": "garbled", "url": upstream}, nil)
	raWantError(t, status, body, http.StatusInternalServerError, "storage_error", "", `"garbled"`)
	for name, want := range map[string][]byte{"garbled": garbage, "future": future} {
		if b, _ := os.ReadFile(file(name)); string(b) != string(want) {
			t.Errorf("%s on disk changed: %s, was %s", name, b, want)
		}
	}
}

// raWantError checks an API error answer: status, code, field (""
// for none) and a part of the message.
func raWantError(t *testing.T, status int, body map[string]any, wantStatus int, code, field, msg string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	gotField, _ := e["field"].(string)
	gotMsg, _ := e["message"].(string)
	if status != wantStatus || e == nil || e["code"] != code || gotField != field || !strings.Contains(gotMsg, msg) {
		t.Errorf("got %d %v; want %d with code %q, field %q, message containing %q", status, body, wantStatus, code, field, msg)
	}
}

// raWalk lists servers limit at a time from list, a URL ending in its query
// ("…?" or "…?a=b"), following next_cursor; every page must report the same
// total, and only the last may be short. It returns the names in order.
func raWalk(t *testing.T, list string, limit int) (names []string, total int) {
	t.Helper()
	if !strings.HasSuffix(list, "?") {
		list += "&"
	}
	cursor := ""
	for page := 0; ; page++ {
		status, _, body := apiCall(t, "GET", fmt.Sprintf("%slimit=%d&cursor=%s", list, limit, url.QueryEscape(cursor)), nil, nil)
		servers, _ := body["servers"].([]any)
		if status != http.StatusOK || servers == nil || page > 50 {
			t.Fatalf("GET %s page %d: %d %v", list, page, status, body)
		}
		for _, s := range servers {
			names = append(names, s.(map[string]any)["name"].(string))
		}
		n := int(body["total"].(float64))
		if page == 0 {
			total = n
		} else if n != total {
			t.Errorf("GET %s: page %d says total %d, page 0 said %d", list, page, n, total)
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return names, total
		}
		if len(servers) != limit {
			t.Errorf("GET %s: page %d has %d servers but a next_cursor", list, page, len(servers))
		}
		cursor = next
	}
}

// raHasTool reports whether a GET …/tools answer lists the tool.
func raHasTool(answer map[string]any, name string) bool {
	tools, _ := answer["tools"].([]any)
	return slices.ContainsFunc(tools, func(v any) bool { return v.(map[string]any)["name"] == name })
}

// raRouteStatus is the status of an MCP initialize on a route.
func raRouteStatus(t *testing.T, route string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", route, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":`+
		`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// raGetJSON decodes a 200 answer of any JSON shape into v.
func raGetJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, v) != nil {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
}

// raTime parses a record's timestamp.
func raTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("timestamp %v: %v", v, err)
	}
	return tm
}
