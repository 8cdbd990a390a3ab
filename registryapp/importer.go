package registryapp

import (
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
	if err := a.admit(r, s); err != nil {
		return err
	}
	_, err := a.reg.write(r.Context(), s.Name, func(cur *Server) (*Server, error) {
		now := time.Now().UTC()
		if cur == nil {
			res.Result = "created"
			s.SchemaVersion, s.CreatedAt, s.UpdatedAt, s.Revision = schemaVersion, now, now, 1
			return s, nil
		}
		s.Enabled, s.Tags, s.Probe = cur.Enabled, cur.Tags, cur.Probe
		if sameReach(cur, s) && cur.Title == s.Title && cur.Description == s.Description && cur.Version == s.Version {
			res.Result = "unchanged"
			return cur, nil
		}
		res.Result = "updated"
		s.SchemaVersion, s.CreatedAt, s.UpdatedAt, s.Revision = schemaVersion, cur.CreatedAt, now, cur.Revision+1
		return s, nil
	})
	return err
}
