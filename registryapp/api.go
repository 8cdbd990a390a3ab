package registryapp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds a request body of the API.
const maxBody = 1 << 20

// api serves the registry's REST API under a path prefix. The site handler
// and the admin routes serve the same API.
type api struct {
	reg    *registry
	prefix string // "/api" in a site, "/mcp-registry" on the admin API
}

// apiError is an API error: a stable code, a message, and the field at
// fault if one is.
type apiError struct {
	status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
	Field  string `json:"field,omitempty"`
}

func (e *apiError) Error() string { return e.Msg }

func apiErr(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// serve handles a request of the API and reports whether the path was one
// of its own.
func (a *api) serve(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, a.prefix)
	if !ok {
		return false
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	var err error
	switch {
	case len(parts) == 1 && parts[0] == "servers":
		err = a.methods(w, r, map[string]func() error{
			http.MethodGet:  func() error { return a.list(w, r) },
			http.MethodPost: func() error { return a.create(w, r) },
		})
	case len(parts) == 2 && parts[0] == "servers":
		name := parts[1]
		err = a.methods(w, r, map[string]func() error{
			http.MethodGet:    func() error { return a.get(w, r, name) },
			http.MethodPut:    func() error { return a.replace(w, r, name) },
			http.MethodPatch:  func() error { return a.patch(w, r, name) },
			http.MethodDelete: func() error { return a.remove(w, r, name) },
		})
	case len(parts) == 3 && parts[0] == "servers":
		name := parts[1]
		switch parts[2] {
		case "enable", "disable":
			on := parts[2] == "enable"
			err = a.methods(w, r, map[string]func() error{http.MethodPost: func() error { return a.enable(w, r, name, on) }})
		case "tools":
			err = a.methods(w, r, map[string]func() error{http.MethodGet: func() error { return a.tools(w, name) }})
		case "refresh":
			err = a.methods(w, r, map[string]func() error{http.MethodPost: func() error { return a.refresh(w, r, name) }})
		default:
			return false
		}
	case len(parts) == 1 && parts[0] == "import":
		err = a.methods(w, r, map[string]func() error{http.MethodPost: func() error { return a.importCatalog(w, r) }})
	case len(parts) == 1 && parts[0] == "search":
		err = a.methods(w, r, map[string]func() error{http.MethodGet: func() error { return a.search(w, r) }})
	case len(parts) == 1 && parts[0] == "health":
		err = a.methods(w, r, map[string]func() error{http.MethodGet: func() error { return a.health(w) }})
	default:
		return false
	}
	if err != nil {
		writeError(w, err)
	}
	return true
}

// methods dispatches on the method; others get 405 with Allow.
func (a *api) methods(w http.ResponseWriter, r *http.Request, by map[string]func() error) error {
	if fn := by[r.Method]; fn != nil {
		return fn()
	}
	allow := make([]string, 0, len(by))
	for m := range by {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return apiErr(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))
}

// list answers GET /servers: filters enabled, health, tag and q (in name,
// title and description); pages of limit (default 100, at most 1000) after
// the cursor of the previous page.
func (a *api) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit", 100, 1000)
	if err != nil {
		return err
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			return &apiError{status: http.StatusBadRequest, Code: "invalid_parameter", Msg: fmt.Sprintf("cursor %q is not one this API gave", c), Field: "cursor"}
		}
		after = string(b)
	}
	var enabled *bool
	if v := q.Get("enabled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &apiError{status: http.StatusBadRequest, Code: "invalid_parameter", Msg: fmt.Sprintf("enabled %q: want true or false", v), Field: "enabled"}
		}
		enabled = &b
	}
	health, tag, text := q.Get("health"), q.Get("tag"), strings.ToLower(q.Get("q"))
	match := func(s *Server) bool {
		return (enabled == nil || s.Enabled == *enabled) &&
			(health == "" || s.Status.Health == health) &&
			(tag == "" || s.hasTag(tag)) &&
			(text == "" || strings.Contains(s.Name, text) || strings.Contains(strings.ToLower(s.Title), text) ||
				strings.Contains(strings.ToLower(s.Description), text))
	}
	page, total, more := a.reg.list(after, limit, match)
	out := struct {
		Servers    []*Server `json:"servers"`
		Total      int       `json:"total"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}{Servers: page, Total: total}
	if more {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page[len(page)-1].Name))
	}
	if out.Servers == nil {
		out.Servers = []*Server{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) get(w http.ResponseWriter, r *http.Request, name string) error {
	s, ok := a.reg.get(name)
	if !ok {
		return notFound(name)
	}
	etag := etagOf(s)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, s)
}

// create answers POST /servers: a new server, enabled unless it says not.
func (a *api) create(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeServer(r, nil, true)
	if err != nil {
		return err
	}
	if err := a.reg.admit(r.Context(), in); err != nil {
		return err
	}
	defer a.reg.warm(in)()
	s, err := a.reg.write(r.Context(), in.Name, func(cur *Server) (*Server, error) {
		if cur != nil {
			return nil, &apiError{status: http.StatusConflict, Code: "conflict", Msg: fmt.Sprintf("server %q already exists", in.Name), Field: "name"}
		}
		now := time.Now().UTC()
		in.SchemaVersion, in.CreatedAt, in.UpdatedAt, in.Revision = schemaVersion, now, now, 1
		return in, nil
	})
	if err != nil {
		return err
	}
	return a.answer(w, http.StatusCreated, s.Name)
}

// replace answers PUT /servers/{name}. A body without "enabled" leaves it
// as it is.
func (a *api) replace(w http.ResponseWriter, r *http.Request, name string) error {
	enabled := true
	if cur, ok := a.reg.get(name); ok {
		enabled = cur.Enabled
	}
	in, err := decodeServer(r, nil, enabled)
	if err != nil {
		return err
	}
	if in.Name == "" {
		in.Name = name
	}
	return a.update(w, r, name, in)
}

// patch answers PATCH /servers/{name} with a JSON merge patch (RFC 7396).
func (a *api) patch(w http.ResponseWriter, r *http.Request, name string) error {
	cur, ok := a.reg.get(name)
	if !ok {
		return notFound(name)
	}
	in, err := decodeServer(r, cur, cur.Enabled)
	if err != nil {
		return err
	}
	return a.update(w, r, name, in)
}

// update replaces a server's spec, if its ETag still matches If-Match.
func (a *api) update(w http.ResponseWriter, r *http.Request, name string, in *Server) error {
	if in.Name != name {
		return &apiError{status: http.StatusBadRequest, Code: "invalid_field", Msg: fmt.Sprintf("name %q differs from the server's %q: a name cannot change", in.Name, name), Field: "name"}
	}
	if err := a.reg.admit(r.Context(), in); err != nil {
		return err
	}
	defer a.reg.warm(in)()
	s, err := a.reg.write(r.Context(), name, func(cur *Server) (*Server, error) {
		if err := precondition(r, cur, name); err != nil {
			return nil, err
		}
		in.SchemaVersion, in.CreatedAt, in.UpdatedAt, in.Revision = schemaVersion, cur.CreatedAt, time.Now().UTC(), cur.Revision+1
		return in, nil
	})
	if err != nil {
		return err
	}
	return a.answer(w, http.StatusOK, s.Name)
}

func (a *api) remove(w http.ResponseWriter, r *http.Request, name string) error {
	_, err := a.reg.write(r.Context(), name, func(cur *Server) (*Server, error) {
		return nil, precondition(r, cur, name)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *api) enable(w http.ResponseWriter, r *http.Request, name string, on bool) error {
	if cur, ok := a.reg.get(name); ok && on {
		cur.Enabled = true
		defer a.reg.warm(cur)()
	}
	_, err := a.reg.write(r.Context(), name, func(cur *Server) (*Server, error) {
		if err := precondition(r, cur, name); err != nil {
			return nil, err
		}
		if cur.Enabled == on {
			return cur, nil
		}
		next := cur.clone()
		next.Enabled, next.UpdatedAt, next.Revision = on, time.Now().UTC(), cur.Revision+1
		return next, nil
	})
	if err != nil {
		return err
	}
	return a.answer(w, http.StatusOK, name)
}

func (a *api) tools(w http.ResponseWriter, name string) error {
	tools, ok := a.reg.tools(name)
	if !ok {
		return notFound(name)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"server": name, "tools": tools, "count": len(tools)})
}

// refresh answers POST /servers/{name}/refresh: a probe now.
func (a *api) refresh(w http.ResponseWriter, r *http.Request, name string) error {
	if err := a.reg.probe(r.Context(), name); err != nil {
		return err
	}
	return a.answer(w, http.StatusOK, name)
}

// search answers GET /search?q=…[&server=…][&tag=…][&limit=…].
func (a *api) search(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if strings.TrimSpace(q.Get("q")) == "" {
		return &apiError{status: http.StatusBadRequest, Code: "invalid_parameter", Msg: "q is required: the words to look for", Field: "q"}
	}
	limit, err := intParam(q.Get("limit"), "limit", 20, 100)
	if err != nil {
		return err
	}
	hits := a.reg.index.search(q.Get("q"), searchFilter{Server: q.Get("server"), Tag: q.Get("tag")}, limit)
	if hits == nil {
		hits = []searchHit{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"query": q.Get("q"), "results": hits})
}

func (a *api) health(w http.ResponseWriter) error {
	return writeJSON(w, http.StatusOK, a.reg.summary())
}

// answer writes a server as the registry now has it, with its ETag.
func (a *api) answer(w http.ResponseWriter, status int, name string) error {
	s, ok := a.reg.get(name)
	if !ok {
		return notFound(name)
	}
	w.Header().Set("ETag", etagOf(s))
	return writeJSON(w, status, s)
}

// decodeServer reads a server from the body: the whole spec, or with cur a
// merge patch on cur's spec; enabled is the default of "enabled". Unknown
// fields are refused; what the registry keeps itself (times, revision,
// status) is ignored.
func decodeServer(r *http.Request, cur *Server, enabled bool) (*Server, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, apiErr(http.StatusRequestEntityTooLarge, "too_large", "the body is over %d bytes", maxBody)
	}
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "invalid_json", "reading the body: %v", err)
	}
	if cur != nil {
		base, _ := json.Marshal(cur)
		if body, err = mergePatch(base, body); err != nil {
			return nil, err
		}
	}
	var in struct {
		Server
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, apiErr(http.StatusBadRequest, "invalid_json", "the body holds more than one JSON value")
	}
	s := in.Server.clone()
	s.Enabled = enabled
	if in.Enabled != nil {
		s.Enabled = *in.Enabled
	}
	s.Status, s.SchemaVersion, s.Revision, s.CreatedAt, s.UpdatedAt = nil, 0, 0, time.Time{}, time.Time{}
	return s, nil
}

// jsonError names what the decoder found wrong.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apiErr(http.StatusBadRequest, "invalid_json", "malformed JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		// The path starts with the embedded struct's Go name: the client
		// knows the JSON one.
		field := strings.TrimPrefix(typ.Field, "Server.")
		return &apiError{status: http.StatusBadRequest, Code: "invalid_field", Field: field,
			Msg: fmt.Sprintf("%s: want %s, got JSON %s", field, typ.Type, typ.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{status: http.StatusBadRequest, Code: "unknown_field", Field: field, Msg: fmt.Sprintf("unknown field %q", field)}
	case errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, "invalid_json", "the body is empty: want a JSON object")
	}
	return apiErr(http.StatusBadRequest, "invalid_json", "%v", err)
}

// mergePatch applies an RFC 7396 merge patch to a JSON object.
func mergePatch(base, patch []byte) ([]byte, error) {
	var b, p any
	if err := json.Unmarshal(base, &b); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, jsonError(err)
	}
	if _, ok := p.(map[string]any); !ok {
		return nil, apiErr(http.StatusBadRequest, "invalid_json", "a merge patch must be a JSON object")
	}
	return json.Marshal(merge(b, p))
}

func merge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = merge(t[k], v)
		}
	}
	return t
}

// precondition checks that the server exists and that If-Match, if given,
// names its current revision.
func precondition(r *http.Request, cur *Server, name string) error {
	if cur == nil {
		return notFound(name)
	}
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && !slices.Contains(splitETags(m), etagOf(cur)) {
		return apiErr(http.StatusPreconditionFailed, "precondition_failed",
			"server %q has changed: If-Match %s, current ETag %s", name, m, etagOf(cur))
	}
	return nil
}

func splitETags(h string) []string {
	var tags []string
	for _, t := range strings.Split(h, ",") {
		tags = append(tags, strings.TrimPrefix(strings.TrimSpace(t), "W/"))
	}
	return tags
}

func etagOf(s *Server) string { return `"` + strconv.FormatInt(s.Revision, 10) + `"` }

func notFound(name string) error {
	return &apiError{status: http.StatusNotFound, Code: "not_found", Msg: fmt.Sprintf("no server %q in the registry", name), Field: "name"}
}

func intParam(v, name string, def, maxV int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxV {
		return 0, &apiError{status: http.StatusBadRequest, Code: "invalid_parameter", Field: name, Msg: fmt.Sprintf("%s %q: want a number from 1 to %d", name, v, maxV)}
	}
	return n, nil
}

// writeError answers an error as {"error": {code, message, field}}.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	var fe *fieldError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiError{status: http.StatusBadRequest, Code: "invalid_field", Msg: fe.Error(), Field: fe.field}
	case errors.Is(err, errNotFound):
		ae = apiErr(http.StatusNotFound, "not_found", "%v", err)
	default:
		ae = apiErr(http.StatusInternalServerError, "storage_error", "%v", err)
	}
	_ = writeJSON(w, ae.status, map[string]any{"error": ae})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}
