package caddymcproot_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The tests in this file keep the three descriptions of the custom Caddy
// build in agreement: xcaddy.json (the recipe for xcaddy), cmd/caddy (the
// same build with plain `go build`) and imports.go (what xcaddy links in).

const caddyModule = "github.com/caddyserver/caddy/v2"

// xcaddyRecipe mirrors the JSON shape of xcaddy's Builder, as far as the
// recipe uses it.
type xcaddyRecipe struct {
	CaddyVersion string `json:"caddy_version"`
	Plugins      []struct {
		ModulePath string `json:"module_path"`
		Version    string `json:"version"`
	} `json:"plugins"`
	Replacements []struct {
		Old string `json:"old"`
		New string `json:"new"`
	} `json:"replacements"`
}

func TestXcaddyRecipe(t *testing.T) {
	modPath, requires := readGoMod(t, "go.mod")

	data, err := os.ReadFile("xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	// Unknown fields are most likely misspelt ones, which xcaddy would
	// silently ignore.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var recipe xcaddyRecipe
	if err := dec.Decode(&recipe); err != nil {
		t.Fatalf("parsing xcaddy.json: %v", err)
	}

	caddyVersion, ok := requires[caddyModule]
	if !ok {
		t.Fatalf("go.mod does not require %s", caddyModule)
	}
	if recipe.CaddyVersion != caddyVersion {
		t.Errorf("xcaddy.json builds caddy %q, but go.mod requires %s", recipe.CaddyVersion, caddyVersion)
	}

	if len(recipe.Plugins) == 0 {
		t.Error("xcaddy.json has no plugins")
	}
	for _, p := range recipe.Plugins {
		if p.ModulePath != modPath {
			t.Errorf("xcaddy.json has plugin %q, want only this module, %s", p.ModulePath, modPath)
		}
	}

	// A replacement points xcaddy at this checkout; its path is relative
	// to the directory of xcaddy.json.
	for _, r := range recipe.Replacements {
		old, _, _ := strings.Cut(r.Old, "@")
		if old != modPath {
			t.Errorf("xcaddy.json replaces %q, want only this module, %s", r.Old, modPath)
			continue
		}
		if filepath.IsAbs(r.New) {
			t.Errorf("xcaddy.json replaces %s with the absolute path %q, which only works on one machine", old, r.New)
			continue
		}
		if got, _ := readGoMod(t, filepath.Join(filepath.FromSlash(r.New), "go.mod")); got != modPath {
			t.Errorf("xcaddy.json replaces %s with %q, which holds module %q", old, r.New, got)
		}
	}
}

func TestMainImportsPlugins(t *testing.T) {
	modPath, _ := readGoMod(t, "go.mod")
	imports := blankImports(t, filepath.Join("cmd", "caddy", "main.go"))
	for _, want := range []string{modPath, caddyModule + "/modules/standard"} {
		if !slices.Contains(imports, want) {
			t.Errorf("cmd/caddy/main.go does not blank-import %s", want)
		}
	}
}

// TestRootImportsPlugins checks that imports.go, which decides what
// xcaddy links in, imports every package of this module that registers
// something with Caddy in an init function.
func TestRootImportsPlugins(t *testing.T) {
	modPath, _ := readGoMod(t, "go.mod")
	imports := blankImports(t, "imports.go")
	for _, imp := range imports {
		if !strings.HasPrefix(imp, modPath+"/") {
			t.Errorf("imports.go imports %s, which is not in this module", imp)
		}
	}

	registering := registeringPackages(t, modPath)
	if len(registering) == 0 {
		t.Fatal("found no package that registers anything with Caddy")
	}
	for _, pkg := range registering {
		if !slices.Contains(imports, pkg) {
			t.Errorf("imports.go does not blank-import %s, which registers with Caddy", pkg)
		}
	}
}

// readGoMod returns the module path of the go.mod file at name, and the
// versions of the modules it requires.
func readGoMod(t *testing.T, name string) (modPath string, requires map[string]string) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	requires = make(map[string]string)
	inRequire := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case inRequire && fields[0] == ")":
			inRequire = false
		case inRequire && len(fields) == 2:
			requires[unquote(fields[0])] = fields[1]
		case fields[0] == "module" && len(fields) == 2:
			modPath = unquote(fields[1])
		case fields[0] == "require" && len(fields) == 2 && fields[1] == "(":
			inRequire = true
		case fields[0] == "require" && len(fields) == 3:
			requires[unquote(fields[1])] = fields[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if modPath == "" {
		t.Fatalf("%s has no module directive", name)
	}
	return modPath, requires
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// blankImports returns the paths that the Go file at name imports for
// their side effects only.
func blankImports(t *testing.T, name string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, imp := range f.Imports {
		if imp.Name != nil && imp.Name.Name == "_" {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	return paths
}

// registeringPackages returns the import paths of the module's library
// packages whose init functions call a Caddy Register function, like
// caddy.RegisterModule or caddycmd.RegisterCommand.
func registeringPackages(t *testing.T, modPath string) []string {
	t.Helper()
	var pkgs []string
	err := filepath.WalkDir(".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			base := d.Name()
			if name != "." && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") ||
				base == "testdata" || base == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name == "main" || !registersWithCaddy(f) {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(name))
		if dir == "." {
			t.Errorf("%s registers with Caddy in the root package, which only imports plugins", name)
			return nil
		}
		if pkg := path.Join(modPath, dir); !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// registersWithCaddy reports whether an init function of f calls a
// function named Register... of a Caddy package.
func registersWithCaddy(f *ast.File) bool {
	caddyNames := make(map[string]bool)
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || (p != caddyModule && !strings.HasPrefix(p, caddyModule+"/")) {
			continue
		}
		// Two Caddy packages are not named after their directories.
		name := path.Base(p)
		switch {
		case imp.Name != nil:
			name = imp.Name.Name
		case p == caddyModule:
			name = "caddy"
		case p == caddyModule+"/cmd":
			name = "caddycmd"
		}
		caddyNames[name] = true
	}

	found := false
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Name.Name != "init" || fn.Body == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return !found
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return !found
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && caddyNames[pkg.Name] && strings.HasPrefix(sel.Sel.Name, "Register") {
				found = true
			}
			return !found
		})
	}
	return found
}
