package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/caddy-mcp/caddy-mcp/caddymcp"
	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

// The package kinds the gateway can run, in order of preference, and the
// program that runs each; the remote types it can reach, in order of
// preference, and caddymcp's name for each.
var (
	packageKinds = []string{model.RegistryTypeOCI, model.RegistryTypeNPM, model.RegistryTypePyPI}
	programs     = map[string]string{model.RegistryTypeOCI: "docker", model.RegistryTypeNPM: "npx", model.RegistryTypePyPI: "uvx"}
	remoteTypes  = []string{model.TransportTypeStreamableHTTP, model.TransportTypeSSE}
	transports   = map[string]string{model.TransportTypeStreamableHTTP: "streamable", model.TransportTypeSSE: "sse"}
)

var (
	entryNameInvalid = regexp.MustCompile(`[^A-Za-z0-9._-]`)
	envNameInvalid   = regexp.MustCompile(`[^A-Z0-9_]`)
	envNamePattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	imageRefPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@-]*$`)
	placeholderChars = strings.NewReplacer("{", `\{`, "}", `\}`)
)

// mapServer maps an official server to a catalog entry, with notes on what
// was left out and what the operator must provide. On error, the notes so
// far come with it. The rules:
//
//   - Name: the official name's last path segment, every character outside
//     [A-Za-z0-9._-] turned into '-', leading '.', '-', '_' dropped, cut to
//     64. Source, Version, Title and Description are copied.
//   - Choice: the first streamable-http remote, else the first sse remote,
//     else the first stdio package of kind oci, else npm, else pypi. Every
//     other remote and package is noted as not used. mcpb, nuget, cargo and
//     unknown kinds are noted as skipped (the gateway cannot run them), and
//     so are packages whose own transport is not stdio (the gateway would
//     have to start them and reach them over HTTP). Nothing runnable: error.
//   - remote: Remote{URL, Transport streamable|sse, Headers}. A URL variable
//     takes its value, else --var NAME=VALUE, else its default; none, or a
//     secret one, is an error (caddymcp expands no placeholders in URLs).
//   - oci: Container{Image, Args, Env}, and Entry.Image. Image is the
//     identifier, with registryBaseUrl's host in front when the identifier
//     names no registry and the base is not Docker Hub, and :version when it
//     has no tag or digest. The container gets caddymcp's defaults (no
//     network among them). npm: Stdio{npx -y identifier@version args…}.
//     pypi: Stdio{uvx identifier==version args…}.
//   - runtimeArguments (docker's, npx's, uvx's) are never passed — docker's
//     would undo the container's hardening: each is noted as skipped.
//   - Headers, environment variables and arguments: a secret is always a
//     placeholder {env.NAME}; otherwise the document's value (its {name}
//     variables resolved the same way, other braces kept literally), else
//     --var, else the default, else a placeholder — for an optional argument
//     nothing: it is left out, and noted. NAME is the header, variable,
//     valueHint or flag name upper-cased, characters outside [A-Z0-9_] as
//     '_' (X-API-Key → X_API_KEY). Every placeholder is listed in
//     Variables, sorted by name, with isRequired, isSecret and description.
//   - A named argument gives two arguments, flag then value; a repeated one
//     appears once.
//   - Environment names must match [A-Za-z_][A-Za-z0-9_]*; for a container,
//     DOCKER_*, PATH and HOME are skipped (they would configure docker).
//   - Secrets are never copied, whatever the document or --var holds. Text
//     from either is escaped (\{ \}) so that Caddy does not read it as a
//     placeholder ({env.…}, {file.…}) of the gateway's host.
//   - The result passes caddymcp's ServerConfig.Validate.
func mapServer(s *apiv0.ServerJSON, vars map[string]string) (Entry, []string, error) {
	m := &mapper{vars: vars, used: map[string]bool{}, variables: map[string]Variable{}}
	e := Entry{
		Server: caddymcp.ServerConfig{Name: entryName(s.Name)},
		Source: s.Name, Version: s.Version, Title: s.Title, Description: s.Description,
	}
	remote, pkg := m.choose(s)
	var err error
	switch {
	case remote != nil:
		e.Server.Remote, err = m.remote(remote)
	case pkg != nil:
		err = m.pkg(&e, pkg)
	case len(s.Packages)+len(s.Remotes) == 0:
		err = errors.New("no packages and no remotes: nothing the gateway can run")
	default:
		var offers []string
		for i := range s.Remotes {
			offers = append(offers, remoteLabel(&s.Remotes[i]))
		}
		for i := range s.Packages {
			offers = append(offers, packageLabel(&s.Packages[i]))
		}
		err = fmt.Errorf("nothing the gateway can run among: %s", strings.Join(offers, ", "))
	}
	if err == nil {
		e.Variables = m.finish()
		err = e.Server.Validate()
	}
	if err != nil {
		return Entry{}, m.notes, fmt.Errorf("%s: %w", s.Name, err)
	}
	return e, m.notes, nil
}

// mapper holds what mapping one server collects.
type mapper struct {
	vars      map[string]string
	used      map[string]bool // vars keys looked up
	variables map[string]Variable
	notes     []string
}

func (m *mapper) note(format string, args ...any) {
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
}

// choose picks the remote or package to run and notes all the others.
func (m *mapper) choose(s *apiv0.ServerJSON) (*model.Transport, *model.Package) {
	var remote *model.Transport
	var pkg *model.Package
	for _, t := range remoteTypes {
		for i := range s.Remotes {
			if remote == nil && s.Remotes[i].Type == t {
				remote = &s.Remotes[i]
			}
		}
	}
	for _, kind := range packageKinds {
		for i, p := range s.Packages {
			if remote == nil && pkg == nil && p.RegistryType == kind && stdio(&p) {
				pkg = &s.Packages[i]
			}
		}
	}
	chosen := ""
	if remote != nil {
		chosen = remoteLabel(remote)
	} else if pkg != nil {
		chosen = packageLabel(pkg)
	}
	for i := range s.Remotes {
		switch r := &s.Remotes[i]; {
		case r == remote:
		case transports[r.Type] == "":
			m.note("skipped: %s: only streamable-http and sse remotes can be reached", remoteLabel(r))
		default:
			m.note("not used: %s (chose %s)", remoteLabel(r), chosen)
		}
	}
	for i := range s.Packages {
		switch p := &s.Packages[i]; {
		case p == pkg:
		case programs[p.RegistryType] == "":
			m.note("skipped: %s packages cannot be run by the gateway (%s)", cmp.Or(p.RegistryType, "untyped"), p.Identifier)
		case !stdio(p):
			m.note("skipped: %s speaks %s: the gateway would have to start it and reach it over HTTP, which it does not support", packageLabel(p), p.Transport.Type)
		default:
			m.note("not used: %s (chose %s)", packageLabel(p), chosen)
		}
	}
	return remote, pkg
}

func (m *mapper) remote(r *model.Transport) (*caddymcp.RemoteConfig, error) {
	u, err := m.url(r.URL, r.Variables)
	if err != nil {
		return nil, err
	}
	rc := &caddymcp.RemoteConfig{URL: u, Transport: transports[r.Type]}
	for _, h := range r.Headers {
		if rc.Headers == nil {
			rc.Headers = map[string]string{}
		}
		rc.Headers[h.Name] = m.required(h.InputWithVariables, h.Name)
	}
	return rc, nil
}

// url resolves the {variables} of a remote's URL to plain values.
func (m *mapper) url(tmpl string, defs map[string]model.Input) (string, error) {
	return substitute(tmpl, func(s string) string { return s }, func(name string) (string, error) {
		def := defs[name]
		if def.IsSecret {
			return "", fmt.Errorf("url variable %q is secret: it cannot go into a URL, where caddymcp expands no placeholders", name)
		}
		v := def.Value
		if v == "" {
			v, _ = m.lookup(name)
		}
		if v = cmp.Or(v, def.Default); v == "" {
			return "", fmt.Errorf("url variable %q has no default: give it with --var %s=VALUE", name, name)
		}
		return v, nil
	})
}

func (m *mapper) pkg(e *Entry, p *model.Package) error {
	prog, instead := programs[p.RegistryType], ""
	if prog == "docker" {
		instead = " (give the container volumes or a network in the config instead)"
	}
	for _, a := range p.RuntimeArguments {
		m.note("skipped: runtime argument %s: the gateway runs %s with its own options%s", argLabel(a), prog, instead)
	}
	args := m.arguments(p.PackageArguments)
	env := m.env(p.EnvironmentVariables, p.RegistryType == model.RegistryTypeOCI)
	if p.RegistryType == model.RegistryTypeOCI {
		image, err := imageRef(p)
		if err != nil {
			return err
		}
		if last := image[strings.LastIndexByte(image, '/')+1:]; !strings.ContainsAny(last, ":@") {
			m.note("image %s has neither tag nor digest: docker runs its latest", image)
		}
		m.note("the container runs with caddymcp's defaults, no network among them: set one if the server calls out")
		e.Image = image
		e.Server.Container = &caddymcp.ContainerConfig{Image: image, Args: args, Env: env}
		return nil
	}
	defaultBase, pinned := model.RegistryURLNPM, p.Identifier+"@"+p.Version
	if p.RegistryType == model.RegistryTypePyPI {
		defaultBase, pinned = model.RegistryURLPyPI, p.Identifier+"=="+p.Version
	}
	if p.Version == "" {
		pinned = p.Identifier
		m.note("%s has no version: %s takes the latest", packageLabel(p), prog)
	}
	if base := strings.TrimSuffix(p.RegistryBaseURL, "/"); base != "" && base != defaultBase {
		m.note("%s is published to %s: %s fetches it from the registry it is configured with", packageLabel(p), base, prog)
	}
	head := []string{placeholderChars.Replace(pinned)}
	if prog == "npx" {
		head = []string{"-y", head[0]}
	}
	e.Server.Stdio = &caddymcp.StdioConfig{Command: prog, Args: append(head, args...), Env: env}
	return nil
}

func (m *mapper) arguments(list []model.Argument) []string {
	var out []string
	for i, a := range list {
		key := a.ValueHint
		if a.Type == model.ArgumentTypeNamed {
			key = strings.TrimLeft(a.Name, "-")
		}
		key = cmp.Or(key, fmt.Sprintf("argument_%d", i+1))
		v, ok := m.optional(a.InputWithVariables, key)
		switch {
		case !ok && !a.IsRequired:
			m.note("left out: optional argument %s has no value or default (give one with --var %s=VALUE)", argLabel(a), key)
			continue
		case !ok:
			v = m.placeholder(key, a.Input)
		}
		if a.IsSecret {
			m.note("secret argument %s: its value will show on the server's command line", argLabel(a))
		}
		if a.Type == model.ArgumentTypeNamed && a.Name != "" {
			out = append(out, placeholderChars.Replace(a.Name))
		}
		out = append(out, v)
	}
	return out
}

func (m *mapper) env(list []model.KeyValueInput, container bool) map[string]string {
	var env map[string]string
	for _, kv := range list {
		switch {
		case !envNamePattern.MatchString(kv.Name):
			m.note("skipped: environment variable %q: not a valid name", kv.Name)
		case container && (strings.HasPrefix(kv.Name, "DOCKER_") || kv.Name == "PATH" || kv.Name == "HOME"):
			m.note("skipped: environment variable %s: it would configure docker, not the container", kv.Name)
		default:
			if env == nil {
				env = map[string]string{}
			}
			env[kv.Name] = m.required(kv.InputWithVariables, kv.Name)
		}
	}
	return env
}

// optional renders an input: a secret as a placeholder; else the document's
// value, --var key=VALUE or the default, escaped. false: none of them.
func (m *mapper) optional(in model.InputWithVariables, key string) (string, bool) {
	if in.IsSecret {
		return m.placeholder(key, in.Input), true
	}
	if in.Value != "" {
		v, _ := substitute(in.Value, placeholderChars.Replace, func(name string) (string, error) {
			def, ok := in.Variables[name]
			if !ok { // not a variable: literal text, as the schema says
				return placeholderChars.Replace("{" + name + "}"), nil
			}
			return m.required(model.InputWithVariables{Input: def}, name), nil
		})
		return v, true
	}
	if v, ok := m.lookup(key); ok {
		return placeholderChars.Replace(v), true
	}
	return placeholderChars.Replace(in.Default), in.Default != ""
}

// required renders an input that must have a value: a placeholder if
// nothing else.
func (m *mapper) required(in model.InputWithVariables, key string) string {
	if v, ok := m.optional(in, key); ok {
		return v
	}
	return m.placeholder(key, in.Input)
}

// placeholder declares the Variable that stands for an input and returns
// {env.NAME}.
func (m *mapper) placeholder(key string, in model.Input) string {
	name := envName(key)
	if _, given := m.vars[key]; given && in.IsSecret {
		m.used[key] = true
		m.note("not stored: the --var %s given for a secret; set %s where the gateway runs", key, name)
	}
	if in.IsSecret && in.Value != "" {
		m.note("not stored: the document's value for secret %s", key)
	}
	v := m.variables[name]
	v.Name = name
	v.Description = cmp.Or(v.Description, in.Description)
	v.Required = v.Required || in.IsRequired
	v.Secret = v.Secret || in.IsSecret
	m.variables[name] = v
	return "{env." + name + "}"
}

func (m *mapper) lookup(key string) (string, bool) {
	v, ok := m.vars[key]
	if ok {
		m.used[key] = true
	}
	return v, ok && v != ""
}

// finish returns the Variables, sorted, and notes them and the unused vars.
func (m *mapper) finish() []Variable {
	var out []Variable
	for _, name := range slices.Sorted(maps.Keys(m.variables)) {
		v := m.variables[name]
		kind := "optional"
		if v.Required {
			kind = "required"
		}
		if v.Secret {
			kind += ", secret"
		}
		m.note("provide %s where the gateway runs (%s)", name, kind)
		out = append(out, v)
	}
	for _, key := range slices.Sorted(maps.Keys(m.vars)) {
		if !m.used[key] {
			m.note("unused: --var %s matches nothing this server uses", key)
		}
	}
	return out
}

// substitute replaces every {name} of tmpl by sub(name) and passes the text
// around them through lit.
func substitute(tmpl string, lit func(string) string, sub func(name string) (string, error)) (string, error) {
	var b strings.Builder
	for {
		open := strings.IndexByte(tmpl, '{')
		end := strings.IndexByte(tmpl[open+1:], '}') + open + 1
		if open < 0 || end <= open {
			b.WriteString(lit(tmpl))
			return b.String(), nil
		}
		v, err := sub(tmpl[open+1 : end])
		if err != nil {
			return "", err
		}
		b.WriteString(lit(tmpl[:open]))
		b.WriteString(v)
		tmpl = tmpl[end+1:]
	}
}

// imageRef is the image an oci package runs.
func imageRef(p *model.Package) (string, error) {
	ref := p.Identifier
	if !imageRefPattern.MatchString(ref) {
		return "", fmt.Errorf("oci package identifier %q is not an image reference", ref)
	}
	first, _, path := strings.Cut(ref, "/")
	if named := path && (strings.ContainsAny(first, ".:") || first == "localhost"); !named && p.RegistryBaseURL != "" {
		u, err := url.Parse(p.RegistryBaseURL)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("oci package registryBaseUrl %q is not a URL with a host", p.RegistryBaseURL)
		}
		if u.Host != "docker.io" && !strings.HasSuffix(u.Host, ".docker.io") {
			ref = u.Host + "/" + ref
		}
	}
	if last := ref[strings.LastIndexByte(ref, '/')+1:]; !strings.ContainsAny(last, ":@") && p.Version != "" {
		ref += ":" + p.Version
	}
	return ref, nil
}

// entryName turns an official name (io.github.owner/name) into a gateway
// server name.
func entryName(official string) string {
	n := entryNameInvalid.ReplaceAllString(official[strings.LastIndexByte(official, '/')+1:], "-")
	n = strings.TrimLeft(n, "._-")
	return n[:min(len(n), 64)]
}

// envName is the environment variable that stands for an input.
func envName(key string) string {
	n := envNameInvalid.ReplaceAllString(strings.ToUpper(key), "_")
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	return n
}

func stdio(p *model.Package) bool {
	return p.Transport.Type == "" || p.Transport.Type == model.TransportTypeStdio
}

func remoteLabel(r *model.Transport) string { return r.Type + " remote " + r.URL }

func packageLabel(p *model.Package) string { return p.RegistryType + " package " + p.Identifier }

func argLabel(a model.Argument) string { return cmp.Or(a.Name, a.ValueHint, a.Value) }

// Map maps a server of the official registry's current shape (as its list
// API answers) to a catalog entry, as import does without variables: for
// the mcp_registry app's sync.
func Map(s *apiv0.ServerJSON) (Entry, []string, error) { return mapServer(s, nil) }
