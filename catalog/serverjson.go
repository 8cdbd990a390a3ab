package catalog

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

// maxDocument bounds a server document: real ones are a few KiB.
const maxDocument = 1 << 20

// schemaDates are the server.json schema versions by the date in their
// $schema URL: true for camelCase (2025-09-16 on, read as the current
// schema), false for the snake_case 2025-07-09.
var schemaDates = map[string]bool{
	"2025-07-09": false, "2025-09-16": true, "2025-09-29": true,
	"2025-10-11": true, "2025-10-17": true, "2025-12-11": true,
}

var schemaURLPattern = regexp.MustCompile(`/schemas/(\d{4}-\d{2}-\d{2})/server\.schema\.json$`)

// snakeSpellings are the fields that the snake_case shapes (2025-07-09 and
// the 2025-05 preview) spell differently, with the current spelling.
var snakeSpellings = map[string]string{
	"registry_type": "registryType", "registry_base_url": "registryBaseUrl",
	"file_sha256": "fileSha256", "runtime_hint": "runtimeHint",
	"runtime_arguments": "runtimeArguments", "package_arguments": "packageArguments",
	"environment_variables": "environmentVariables", "is_required": "isRequired",
	"is_secret": "isSecret", "value_hint": "valueHint", "is_repeated": "isRepeated",
	"website_url": "websiteUrl",
	// The preview only.
	"registry_name": "registryType", "transport_type": "type", "version_detail": "version",
}

// camelSpellings are the current spellings that no snake_case shape uses.
var camelSpellings = func() map[string]bool {
	m := map[string]bool{}
	for _, camel := range snakeSpellings {
		m[camel] = camel != "type" && camel != "version"
	}
	return m
}()

// decodeServerJSON reads one server in any shape the official registry has
// used: a current server.json (camelCase, $schema 2025-09-16 to 2025-12-11
// or none), an API ServerResponse {"server": …, "_meta": …}, the snake_case
// 2025-07-09 schema, or the 2025-05 preview (id, version_detail,
// registry_name). Legacy shapes come back converted to the current type.
// Unknown fields are ignored, since the official data grows, except a
// field spelled for the other case convention: decoding it leniently would
// drop it silently, an isSecret among them.
func decodeServerJSON(b []byte) (*apiv0.ServerJSON, error) {
	if len(b) > maxDocument {
		return nil, fmt.Errorf("server document of %d bytes: over 1 MiB", len(b))
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("server document is not JSON: %v", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("server document is a JSON %s, not an object", jsonKind(doc))
	}
	if inner, ok := obj["server"]; ok && obj["name"] == nil {
		if obj, ok = inner.(map[string]any); !ok {
			return nil, fmt.Errorf(`server response: "server" is a JSON %s, not an object`, jsonKind(inner))
		}
		var envelope struct {
			Server json.RawMessage `json:"server"`
		}
		if err := json.Unmarshal(b, &envelope); err != nil {
			return nil, fmt.Errorf("server response: %v", err)
		}
		b = envelope.Server
	}
	name, _ := obj["name"].(string)
	if name == "" {
		if _, list := obj["servers"]; list {
			return nil, errors.New("server document is a list of servers, not one server")
		}
		return nil, errors.New("server document has no name")
	}
	snake, err := detectSnakeCase(obj)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", name, err)
	}
	if snake {
		var l legacyServer
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("server %s (snake_case shape): %v", name, err)
		}
		return l.current(), nil
	}
	var s apiv0.ServerJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("server %s: %v", name, err)
	}
	return &s, nil
}

// detectSnakeCase tells the snake_case shapes from the camelCase ones: by
// the date of $schema when there is one, else by the fields. A field of the
// other convention is refused.
func detectSnakeCase(obj map[string]any) (bool, error) {
	isSnake := func(k string) bool { return snakeSpellings[k] != "" }
	isCamel := func(k string) bool { return camelSpellings[k] }
	var snake bool
	if raw, ok := obj["$schema"]; ok {
		s, _ := raw.(string)
		m := schemaURLPattern.FindStringSubmatch(s)
		camel, known := false, false
		if m != nil {
			camel, known = schemaDates[m[1]]
		}
		if !known {
			return false, fmt.Errorf("unknown $schema %v: known are the server.schema.json of %s",
				raw, strings.Join(slices.Sorted(maps.Keys(schemaDates)), ", "))
		}
		snake = !camel
	} else {
		snake = findKey(obj, "", isSnake) != ""
	}
	if snake {
		if path := findKey(obj, "", isCamel); path != "" {
			return false, fmt.Errorf("%s: a camelCase field in a snake_case (2025-07-09 or preview) document", path)
		}
		return true, nil
	}
	if path := findKey(obj, "", isSnake); path != "" {
		key := path[strings.LastIndexByte(path, '.')+1:]
		return false, fmt.Errorf("%s: a snake_case field in a camelCase document (write %q)", path, snakeSpellings[key])
	}
	return false, nil
}

// findKey returns the path of the first key, in sorted order, that match
// accepts, or "". It skips _meta (free-form) and the names of variables,
// which the publisher chooses.
func findKey(v any, path string, match func(string) bool) string {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			p := strings.TrimPrefix(path+"."+k, ".")
			switch {
			case k == "_meta":
				continue
			case match(k):
				return p
			case k == "variables":
				vars, _ := v[k].(map[string]any)
				for _, name := range slices.Sorted(maps.Keys(vars)) {
					if found := findKey(vars[name], p+"."+name, match); found != "" {
						return found
					}
				}
			default:
				if found := findKey(v[k], p, match); found != "" {
					return found
				}
			}
		}
	case []any:
		for i, e := range v {
			if found := findKey(e, fmt.Sprintf("%s[%d]", path, i), match); found != "" {
				return found
			}
		}
	}
	return ""
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "object"
}

// legacyServer reads both snake_case shapes: 2025-07-09 and the 2025-05
// preview, which differ in a few names (registry_name and name for
// registry_type and identifier, transport_type for type, version_detail).
type legacyServer struct {
	Name          string                   `json:"name"`
	Description   string                   `json:"description"`
	Version       string                   `json:"version"`
	VersionDetail struct{ Version string } `json:"version_detail"`
	WebsiteURL    string                   `json:"website_url"`
	Repository    *model.Repository        `json:"repository"`
	Packages      []legacyPackage          `json:"packages"`
	Remotes       []legacyTransport        `json:"remotes"`
	Meta          *apiv0.ServerMeta        `json:"_meta"`
}

type legacyPackage struct {
	RegistryType         string           `json:"registry_type"`
	RegistryName         string           `json:"registry_name"`
	RegistryBaseURL      string           `json:"registry_base_url"`
	Identifier           string           `json:"identifier"`
	Name                 string           `json:"name"`
	Version              string           `json:"version"`
	FileSHA256           string           `json:"file_sha256"`
	RuntimeHint          string           `json:"runtime_hint"`
	Transport            *legacyTransport `json:"transport"`
	RuntimeArguments     []legacyArgument `json:"runtime_arguments"`
	PackageArguments     []legacyArgument `json:"package_arguments"`
	EnvironmentVariables []legacyKeyValue `json:"environment_variables"`
}

type legacyTransport struct {
	Type          string           `json:"type"`
	TransportType string           `json:"transport_type"`
	URL           string           `json:"url"`
	Headers       []legacyKeyValue `json:"headers"`
}

type legacyInput struct {
	Description string                 `json:"description"`
	IsRequired  bool                   `json:"is_required"`
	Format      string                 `json:"format"`
	Value       string                 `json:"value"`
	IsSecret    bool                   `json:"is_secret"`
	Default     string                 `json:"default"`
	Choices     []string               `json:"choices"`
	Variables   map[string]legacyInput `json:"variables"`
}

type legacyArgument struct {
	legacyInput
	Type       string `json:"type"`
	Name       string `json:"name"`
	ValueHint  string `json:"value_hint"`
	IsRepeated bool   `json:"is_repeated"`
}

type legacyKeyValue struct {
	legacyInput
	Name string `json:"name"`
}

func (l legacyServer) current() *apiv0.ServerJSON {
	s := &apiv0.ServerJSON{
		Schema: model.CurrentSchemaURL, Name: l.Name, Description: l.Description,
		Version: cmp.Or(l.Version, l.VersionDetail.Version), WebsiteURL: l.WebsiteURL,
		Repository: l.Repository, Meta: l.Meta,
	}
	for _, p := range l.Packages {
		s.Packages = append(s.Packages, p.current())
	}
	for _, r := range l.Remotes {
		s.Remotes = append(s.Remotes, r.current())
	}
	return s
}

func (p legacyPackage) current() model.Package {
	kind := cmp.Or(p.RegistryType, p.RegistryName)
	if kind == "docker" { // the preview's name for oci
		kind = model.RegistryTypeOCI
	}
	c := model.Package{
		RegistryType: kind, RegistryBaseURL: p.RegistryBaseURL,
		Identifier: cmp.Or(p.Identifier, p.Name), Version: p.Version,
		FileSHA256: p.FileSHA256, RunTimeHint: p.RuntimeHint,
		Transport: model.Transport{Type: model.TransportTypeStdio}, // the preview has none
	}
	if p.Transport != nil {
		c.Transport = p.Transport.current()
	}
	for _, a := range p.RuntimeArguments {
		c.RuntimeArguments = append(c.RuntimeArguments, a.current())
	}
	for _, a := range p.PackageArguments {
		c.PackageArguments = append(c.PackageArguments, a.current())
	}
	for _, e := range p.EnvironmentVariables {
		c.EnvironmentVariables = append(c.EnvironmentVariables, e.current())
	}
	return c
}

func (t legacyTransport) current() model.Transport {
	c := model.Transport{Type: cmp.Or(t.Type, t.TransportType), URL: t.URL}
	for _, h := range t.Headers {
		c.Headers = append(c.Headers, h.current())
	}
	return c
}

func (a legacyArgument) current() model.Argument {
	return model.Argument{
		InputWithVariables: a.withVariables(), Type: model.ArgumentType(a.Type),
		Name: a.Name, ValueHint: a.ValueHint, IsRepeated: a.IsRepeated,
	}
}

func (kv legacyKeyValue) current() model.KeyValueInput {
	return model.KeyValueInput{InputWithVariables: kv.withVariables(), Name: kv.Name}
}

func (in legacyInput) withVariables() model.InputWithVariables {
	c := model.InputWithVariables{Input: in.input()}
	for name, v := range in.Variables {
		if c.Variables == nil {
			c.Variables = map[string]model.Input{}
		}
		c.Variables[name] = v.input()
	}
	return c
}

func (in legacyInput) input() model.Input {
	return model.Input{
		Description: in.Description, IsRequired: in.IsRequired, Format: model.Format(in.Format),
		Value: in.Value, IsSecret: in.IsSecret, Default: in.Default, Choices: in.Choices,
	}
}
