package registryapp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/caddy-mcp/caddy-mcp/catalog"
)

// importResult is what happened to one server of an imported catalog.
type importResult struct {
	Name   string    `json:"name"`
	Result string    `json:"result"` // created, updated, unchanged or refused
	Error  *apiError `json:"error,omitempty"`
}

// importCatalog answers POST /import {"ref": "<oci reference>"}: every
// server of the catalog becomes a record (created, or replaced where the
// name exists, its enabled flag kept). Each goes through the same checks as
// a record posted to the API (SSRF guard, commands only if allowed), and
// one refused server does not stop the others.
func (a *api) importCatalog(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Ref string `json:"ref"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return jsonError(err)
	}
	if in.Ref == "" {
		return &apiError{status: http.StatusBadRequest, Code: "invalid_field", Field: "ref", Msg: "ref is required: the OCI reference of a catalog (repository@sha256:… or repository:tag)"}
	}
	c, digest, err := catalog.Pull(r.Context(), in.Ref)
	if err != nil {
		return &apiError{status: http.StatusBadGateway, Code: "catalog_unavailable", Field: "ref", Msg: err.Error()}
	}
	results := make([]importResult, 0, len(c.Servers))
	for _, e := range c.Servers {
		res := importResult{Name: e.Server.Name}
		if err := a.importEntry(r, e, &res); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = apiErr(http.StatusBadRequest, "invalid_field", "%v", err)
				var fe *fieldError
				if errors.As(err, &fe) {
					ae.Field = fe.field
				}
			}
			res.Result, res.Error = "refused", ae
		}
		results = append(results, res)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"ref": digest.String(), "servers": results})
}

// importEntry writes one catalog server as a record.
func (a *api) importEntry(r *http.Request, e catalog.Entry, res *importResult) error {
	result, err := a.reg.upsert(r.Context(), e)
	res.Result = result
	return err
}

// admit applies the app's policy to a server registered from outside the
// config (the API, a catalog, a sync): commands only where allowed, URLs
// through the SSRF guard.
func (r *registry) admit(ctx context.Context, s *Server) error {
	if err := s.validate(); err != nil {
		return err
	}
	cfg := r.cfg.Load()
	if (s.Stdio != nil || s.Container != nil) && !cfg.allowCommands {
		field := "stdio"
		if s.Container != nil {
			field = "container"
		}
		return &apiError{status: http.StatusForbidden, Code: "forbidden", Field: field,
			Msg: "the API registers remote servers and templates; stdio and container servers need allow_commands in the registry's config"}
	}
	if s.URL != "" {
		if err := cfg.guard.checkURL(ctx, s.URL, nil); err != nil {
			return &apiError{status: http.StatusBadRequest, Code: "url_refused", Msg: err.Error(), Field: "url"}
		}
	}
	return nil
}

// upsert writes a catalog server as a record: created, or replaced where
// the name exists (its enabled flag, tags and probe settings kept). It
// reports created, updated or unchanged.
func (r *registry) upsert(ctx context.Context, e catalog.Entry) (string, error) {
	s := &Server{
		Name: e.Server.Name, Title: e.Title, Description: e.Description, Version: e.Version,
		Stdio: e.Server.Stdio, Container: e.Server.Container, Tools: e.Server.Tools, Enabled: true,
	}
	if len(s.Description) > maxDescription {
		s.Description = s.Description[:maxDescription]
	}
	if rc := e.Server.Remote; rc != nil {
		s.URL, s.Transport, s.Headers = rc.URL, rc.Transport, rc.Headers
	}
	if err := r.admit(ctx, s); err != nil {
		return "", err
	}
	defer r.warm(s)()
	var result string
	_, err := r.write(ctx, s.Name, func(cur *Server) (*Server, error) {
		now := time.Now().UTC()
		if cur == nil {
			result = "created"
			s.SchemaVersion, s.CreatedAt, s.UpdatedAt, s.Revision = schemaVersion, now, now, 1
			return s, nil
		}
		s.Enabled, s.Tags, s.Probe = cur.Enabled, cur.Tags, cur.Probe
		if sameReach(cur, s) && cur.Title == s.Title && cur.Description == s.Description && cur.Version == s.Version {
			result = "unchanged"
			return cur, nil
		}
		result = "updated"
		s.SchemaVersion, s.CreatedAt, s.UpdatedAt, s.Revision = schemaVersion, cur.CreatedAt, now, cur.Revision+1
		return s, nil
	})
	return result, err
}
