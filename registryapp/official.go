package registryapp

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

// The official MCP Registry's read API, served from the registry's records
// so that every tool that reads registry.modelcontextprotocol.io (our own
// `caddy mcp import --registry` among them) reads this registry too:
//
//	GET /v0.1/servers                     ?cursor= &limit= &search= &updated_since= &version=latest
//	GET /v0.1/servers/{serverName}/versions
//	GET /v0.1/servers/{serverName}/versions/{version|latest}
//
// and the same under /v0. Answers are the official registry's own types
// (pkg/api/v0), errors its problem details {"title","status","detail"}.
//
// Only enabled servers reached through a URL are served. A template exists
// only in this registry's config, and a stdio command or a container would
// run on the reader's host: the official API has no form for either that
// another gateway could run as it is, so they are left out, as are disabled
// servers. The registry keeps one version of each server, its current one,
// so every server has exactly one version and it is the latest.
//
// A record maps to the official server.json as follows:
//
//	$schema      the 2025-12-11 schema URL
//	name         the record's name
//	description  the description, else the title, else "MCP server <name>" (the schema requires one)
//	title        the title
//	version      the version, else "0.0.0" (the schema requires one)
//	remotes      one: type "streamable-http" or "sse", the url, and the headers sorted by name:
//	             a value holding a placeholder {…}, and any Authorization, Proxy-Authorization
//	             or Cookie value, becomes isSecret and isRequired with no value (the reader
//	             supplies it); any other value is served as it is
//	_meta        io.modelcontextprotocol.registry/official: status "active", publishedAt the
//	             record's created_at, updatedAt and statusChangedAt its updated_at, isLatest true

// officialSchema is the server.json schema the answers follow.
const officialSchema = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"

// The official list's page size: its default and its maximum.
const (
	officialLimit    = 30
	officialMaxLimit = 100
)

// unversioned is the version of a record that has none: the official
// schema requires one.
const unversioned = "0.0.0"

// placeholder finds a Caddy placeholder ({env.TOKEN}, {file./run/secrets/x})
// in a header value: such a value is a secret the reader supplies.
var placeholder = regexp.MustCompile(`\{[^{}]+\}`)

// credentialHeaders are never served with their value, even a literal one:
// the official API may be public where /api is not.
var credentialHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true}

// problem is an error of the official API in its shape: the RFC 9457
// problem details that the official registry (huma) answers.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func (p *problem) Error() string { return p.Detail }

func newProblem(status int, format string, args ...any) *problem {
	return &problem{Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...)}
}

// official serves a request of the official API and reports whether the
// path was one of its own.
func (a *api) official(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := officialPath(r.URL.EscapedPath())
	if !ok {
		return false
	}
	var err error
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	for i, p := range parts {
		parts[i], _ = url.PathUnescape(p) // EscapedPath's escapes are valid
	}
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		err = newProblem(http.StatusMethodNotAllowed, "%s is not allowed on %s (allowed: GET, HEAD)", r.Method, r.URL.Path)
	case rest == "":
		err = a.officialList(w, r)
	case len(parts) == 2 && parts[1] == "versions":
		err = a.officialVersions(w, parts[0])
	case len(parts) == 3 && parts[1] == "versions":
		err = a.officialVersion(w, parts[0], parts[2])
	default:
		err = newProblem(http.StatusNotFound, "no such path %s: want /servers, /servers/{serverName}/versions or /servers/{serverName}/versions/{version|latest}", r.URL.Path)
	}
	if err != nil {
		writeProblem(w, err)
	}
	return true
}

// officialPath returns what follows /v0/servers or /v0.1/servers in an
// escaped path, and whether it was one of them.
func officialPath(escaped string) (string, bool) {
	for _, base := range []string{"/v0/servers", "/v0.1/servers"} {
		if rest, ok := strings.CutPrefix(escaped, base); ok && (rest == "" || rest[0] == '/') {
			return rest, true
		}
	}
	return "", false
}

// officialList answers GET /servers: the served servers by name (then
// version, as the official registry orders them), a page of limit after the
// cursor "<name>:<version>" of the previous page's last item.
func (a *api) officialList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := officialLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > officialMaxLimit {
			return newProblem(http.StatusBadRequest, "limit %q: want a number from 1 to %d", v, officialMaxLimit)
		}
		limit = n
	}
	var since time.Time
	if v := q.Get("updated_since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return newProblem(http.StatusBadRequest, "updated_since %q: want an RFC 3339 time such as 2025-08-07T13:15:04Z", v)
		}
		since = t
	}
	if v := q.Get("version"); v != "" && v != "latest" {
		return newProblem(http.StatusBadRequest, "version %q: only \"latest\" is supported (this registry keeps one version of each server)", v)
	}
	afterName, afterVersion, err := parseCursor(q.Get("cursor"))
	if err != nil {
		return err
	}
	search := strings.ToLower(q.Get("search"))
	page, _, more := a.reg.list("", limit, func(s *Server) bool {
		return servedOfficially(s) &&
			strings.Contains(s.Name, search) && // names are lower-case
			(since.IsZero() || s.UpdatedAt.After(since)) &&
			(afterName == "" || s.Name > afterName || s.Name == afterName && officialVersion(s) > afterVersion)
	})
	out := apiv0.ServerListResponse{Servers: make([]apiv0.ServerResponse, 0, len(page)), Metadata: apiv0.Metadata{Count: len(page)}}
	for _, s := range page {
		out.Servers = append(out.Servers, officialServer(s))
	}
	if more {
		last := page[len(page)-1]
		out.Metadata.NextCursor = last.Name + ":" + officialVersion(last)
	}
	return writeJSON(w, http.StatusOK, out)
}

// parseCursor reads "<name>:<version>"; a server name holds no ':', a
// version may.
func parseCursor(c string) (name, version string, err error) {
	if c == "" {
		return "", "", nil
	}
	name, version, ok := strings.Cut(c, ":")
	if !ok || !namePattern.MatchString(name) || version == "" {
		return "", "", newProblem(http.StatusBadRequest, "cursor %q: want <name>:<version>, the metadata.nextCursor of the previous page", c)
	}
	return name, version, nil
}

// officialVersions answers GET /servers/{serverName}/versions: the one
// version the registry keeps.
func (a *api) officialVersions(w http.ResponseWriter, name string) error {
	s, err := a.officialGet(name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, apiv0.ServerListResponse{
		Servers: []apiv0.ServerResponse{officialServer(s)}, Metadata: apiv0.Metadata{Count: 1},
	})
}

// officialVersion answers GET /servers/{serverName}/versions/{version}:
// the server if the version is its own or "latest".
func (a *api) officialVersion(w http.ResponseWriter, name, version string) error {
	s, err := a.officialGet(name)
	if err != nil {
		return err
	}
	if version != "latest" && version != officialVersion(s) {
		return newProblem(http.StatusNotFound, "server %q has no version %q: it has %q (or ask for latest)", s.Name, version, officialVersion(s))
	}
	return writeJSON(w, http.StatusOK, officialServer(s))
}

// officialGet finds a served server by name.
func (a *api) officialGet(name string) (*Server, error) {
	s, ok := a.reg.get(name)
	if !ok || !servedOfficially(s) {
		return nil, newProblem(http.StatusNotFound, "server %q not found (only enabled servers reached through a URL are served here)", name)
	}
	return s, nil
}

// servedOfficially reports whether a record has a form in the official API.
func servedOfficially(s *Server) bool { return s.Enabled && s.URL != "" }

func officialVersion(s *Server) string { return cmp.Or(s.Version, unversioned) }

// officialServer is a record as the official API shows it.
func officialServer(s *Server) apiv0.ServerResponse {
	remote := model.Transport{Type: model.TransportTypeStreamableHTTP, URL: s.URL}
	if s.Transport == "sse" {
		remote.Type = model.TransportTypeSSE
	}
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		h := model.KeyValueInput{Name: name}
		if v := s.Headers[name]; placeholder.MatchString(v) || credentialHeaders[http.CanonicalHeaderKey(name)] {
			h.IsSecret, h.IsRequired = true, true
		} else {
			h.Value = v
		}
		remote.Headers = append(remote.Headers, h)
	}
	updated := s.UpdatedAt.UTC()
	return apiv0.ServerResponse{
		Server: apiv0.ServerJSON{
			Schema: officialSchema, Name: s.Name, Title: s.Title, Version: officialVersion(s),
			Description: cmp.Or(s.Description, s.Title, "MCP server "+s.Name),
			Remotes:     []model.Transport{remote},
		},
		Meta: apiv0.ResponseMeta{Official: &apiv0.RegistryExtensions{
			Status: model.StatusActive, PublishedAt: s.CreatedAt.UTC(),
			UpdatedAt: updated, StatusChangedAt: updated, IsLatest: true,
		}},
	}
}

// writeProblem answers an error as problem details.
func writeProblem(w http.ResponseWriter, err error) {
	var p *problem
	if !errors.As(err, &p) {
		p = newProblem(http.StatusInternalServerError, "%v", err)
	}
	b, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(p.Status)
	_, _ = w.Write(b)
}
