package caddymcp

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/zap"
)

// An endpoint mirrors its members' catalogs (tools, prompts, resources and
// resource templates) into its MCP server, whose handlers forward to the
// member that owns each item; the SDK tells clients of changes with
// list_changed. A member's change touches only its own items, so the work
// follows the size of what changed, not of the endpoint: unless names
// collide on the aggregate (see qualifiedNames) or servers share a resource
// URI, where each change mirrors everything again so that the rules that
// settle collisions stay whole.

// memberNames are the names under which the endpoint exposes a member's
// items.
type memberNames struct {
	tools, prompts, resources, templates []string
}

// memberList is the endpoint's members in their order: its own, then those
// of its live set by name. Built when asked (rarely: mirroring everything,
// logging levels), so that a live set's change costs the same whatever its
// size. e.mu is held.
func (e *endpoint) memberList() []*member {
	if len(e.joined) == 0 {
		return e.own
	}
	ms := make([]*member, 0, len(e.own)+len(e.joined))
	ms = append(ms, e.own...)
	for _, m := range e.joined {
		ms = append(ms, m)
	}
	slices.SortFunc(ms[len(e.own):], func(x, y *member) int { return strings.Compare(x.cfg.Name, y.cfg.Name) })
	return ms
}

// only is the endpoint's one member, or nil if it has several. e.mu is held.
func (e *endpoint) only() *member {
	switch {
	case len(e.own) == 1 && len(e.joined) == 0:
		return e.own[0]
	case len(e.own) == 0 && len(e.joined) == 1:
		for _, m := range e.joined {
			return m
		}
	}
	return nil
}

// published mirrors an upstream's new catalog.
func (e *endpoint) published(u *upstream) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m := e.byUp[u]; m != nil {
		e.mirrorMember(m)
	}
}

// addMember adds a live set's server to an aggregate and mirrors it.
func (e *endpoint) addMember(m *member) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.joined[m.cfg.Name] = m
	e.byUp[m.up] = m
	m.up.watch(e)
	e.mirrorMember(m)
}

// removeMember takes a member off an aggregate with its items.
func (e *endpoint) removeMember(m *member) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.joined[m.cfg.Name] != m {
		return
	}
	delete(e.joined, m.cfg.Name)
	if e.byUp[m.up] == m {
		delete(e.byUp, m.up)
	}
	m.up.unwatch(e)
	delete(e.unlisted, m)
	if e.contested {
		e.mirrorAll() // a name it held may now go to another member
		return
	}
	if old := e.owned[m]; old != nil {
		dropNames(e.tools, old.tools, e.server.RemoveTools)
		dropNames(e.prompts, old.prompts, e.server.RemovePrompts)
		dropNames(e.resources, old.resources, e.server.RemoveResources)
		dropNames(e.templates, old.templates, e.server.RemoveResourceTemplates)
		delete(e.owned, m)
	}
}

// join adds a live set's servers to an aggregate as it attaches the set.
func (e *endpoint) join(ms []*member) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range ms {
		e.joined[m.cfg.Name] = m
		e.byUp[m.up] = m
		m.up.watch(e)
	}
	e.mirrorAll()
}

// mirrorMember mirrors one member's catalog after it changed or joined.
// e.mu is held.
func (e *endpoint) mirrorMember(m *member) {
	if !e.aggregate || e.contested {
		e.mirrorAll()
		return
	}
	cat := m.up.catalog.Load()
	if cat != nil {
		delete(e.unlisted, m)
	} else {
		e.unlisted[m] = struct{}{}
	}
	tools, prompts, resources, templates := itemsOf(m, cat)
	next := &memberNames{}
	nt, ok1 := plainNames(e.tools, m, tools, e.exposed)
	np, ok2 := plainNames(e.prompts, m, prompts, e.exposed)
	nr, ok3 := plainNames(e.resources, m, resources, uriOf)
	ntm, ok4 := plainNames(e.templates, m, templates, uriOf)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		e.mirrorAll() // a collision: the rules need every name
		return
	}
	old := e.owned[m]
	if old == nil {
		old = &memberNames{}
	}
	next.tools = syncNames(e.tools, old.tools, nt, e.mirrorTool, e.server.RemoveTools)
	next.prompts = syncNames(e.prompts, old.prompts, np, e.mirrorPrompt, e.server.RemovePrompts)
	next.resources = syncNames(e.resources, old.resources, nr, e.mirrorResource, e.server.RemoveResources)
	next.templates = syncNames(e.templates, old.templates, ntm, e.mirrorTemplate, e.server.RemoveResourceTemplates)
	if next.tools == nil && next.prompts == nil && next.resources == nil && next.templates == nil {
		delete(e.owned, m) // nothing listed (yet): a registry's idle servers cost no entry
		return
	}
	e.owned[m] = next
}

// mirrorAll mirrors every member anew, settling collisions. e.mu is held.
func (e *endpoint) mirrorAll() {
	var tools []*mirrored[*mcp.Tool]
	var prompts []*mirrored[*mcp.Prompt]
	var resources []*mirrored[*mcp.Resource]
	var templates []*mirrored[*mcp.ResourceTemplate]
	members := e.memberList()
	clear(e.unlisted)
	for _, m := range members {
		cat := m.up.catalog.Load()
		if cat == nil {
			e.unlisted[m] = struct{}{}
		}
		t, p, r, tm := itemsOf(m, cat)
		tools, prompts = append(tools, t...), append(prompts, p...)
		resources, templates = append(resources, r...), append(templates, tm...)
	}
	nt, c1 := exposeAll(e.aggregate, tools)
	np, c2 := exposeAll(e.aggregate, prompts)
	nr, c3 := firstByName(resources)
	ntm, c4 := firstByName(templates)
	e.contested = e.aggregate && (c1 || c2 || c3 || c4)
	clear(e.owned)
	syncAll(e.tools, nt, e.mirrorTool, e.server.RemoveTools, func(n string, m *member) { o := e.ownedBy(m); o.tools = append(o.tools, n) })
	syncAll(e.prompts, np, e.mirrorPrompt, e.server.RemovePrompts, func(n string, m *member) { o := e.ownedBy(m); o.prompts = append(o.prompts, n) })
	syncAll(e.resources, nr, e.mirrorResource, e.server.RemoveResources, func(n string, m *member) { o := e.ownedBy(m); o.resources = append(o.resources, n) })
	syncAll(e.templates, ntm, e.mirrorTemplate, e.server.RemoveResourceTemplates, func(n string, m *member) { o := e.ownedBy(m); o.templates = append(o.templates, n) })
}

// ownedBy is the names a member holds, made at its first. e.mu is held.
func (e *endpoint) ownedBy(m *member) *memberNames {
	o := e.owned[m]
	if o == nil {
		o = &memberNames{}
		e.owned[m] = o
	}
	return o
}

// itemsOf lists what a member's catalog offers, its tool filter applied.
func itemsOf(m *member, cat *catalog) (tools []*mirrored[*mcp.Tool], prompts []*mirrored[*mcp.Prompt], resources []*mirrored[*mcp.Resource], templates []*mirrored[*mcp.ResourceTemplate]) {
	if cat == nil {
		return
	}
	for _, t := range cat.tools {
		if m.cfg.Tools.allows(t.Name) {
			tools = append(tools, &mirrored[*mcp.Tool]{m, t.Name, t})
		}
	}
	for _, p := range cat.prompts {
		prompts = append(prompts, &mirrored[*mcp.Prompt]{m, p.Name, p})
	}
	for _, r := range cat.resources {
		resources = append(resources, &mirrored[*mcp.Resource]{m, r.URI, r})
	}
	for _, t := range cat.templates {
		templates = append(templates, &mirrored[*mcp.ResourceTemplate]{m, t.URITemplate, t})
	}
	return
}

// exposed is the name of a tool or prompt when no other name collides
// with it: the upstream's on a one-server endpoint, `<server>__<name>` fitted
// to the pattern on the aggregate (qualifiedNames, steps 1-3).
func (e *endpoint) exposed(m *member, name string) string {
	if !e.aggregate {
		return name
	}
	return plainName(namePair{m.cfg.Name, name})
}

func uriOf(_ *member, uri string) string { return uri }

// plainNames names a member's items as exposed when nothing collides, and
// reports false if something does: two of its items, or one of its items
// and another member's.
func plainNames[T any](current map[string]*mirrored[T], m *member, items []*mirrored[T], name func(*member, string) string) (map[string]*mirrored[T], bool) {
	out := make(map[string]*mirrored[T], len(items))
	for _, x := range items {
		n := name(m, x.name)
		if _, dup := out[n]; dup {
			return nil, false
		}
		if cur, ok := current[n]; ok && cur.m != m {
			return nil, false
		}
		out[n] = x
	}
	return out, true
}

// exposeAll names all tools or prompts as clients see them, and reports
// whether any collided (qualifiedNames settled it).
func exposeAll[T any](aggregate bool, items []*mirrored[T]) (map[string]*mirrored[T], bool) {
	out := make(map[string]*mirrored[T], len(items))
	if !aggregate {
		for _, x := range items {
			out[x.name] = x
		}
		return out, false
	}
	pairs := make([]namePair, len(items))
	for i, x := range items {
		pairs[i] = namePair{x.m.cfg.Name, x.name}
	}
	names := qualifiedNames(pairs)
	collided := false
	for i, x := range items {
		n := names[pairs[i]]
		if _, dup := out[n]; dup || n != plainName(pairs[i]) {
			collided = true
		}
		out[n] = x
	}
	return out, collided
}

// plainName is a pair's exposed name when nothing collides with it.
func plainName(p namePair) string {
	joined := exposedNamePart(p.Server) + "__" + exposedNamePart(p.Name)
	if len(joined) > maxExposedName {
		return hashSuffixed(joined, p)
	}
	return joined
}

// firstByName keys resources by URI; on the aggregate the first server in
// member order wins a URI that two servers share (and that is reported).
func firstByName[T any](items []*mirrored[T]) (map[string]*mirrored[T], bool) {
	out := make(map[string]*mirrored[T], len(items))
	shared := false
	for _, x := range items {
		if _, ok := out[x.name]; ok {
			shared = true
			continue
		}
		out[x.name] = x
	}
	return out, shared
}

// syncNames brings a member's items in current in line with next: its old
// names that left are removed, what is new or changed is added. It returns
// the member's names now.
func syncNames[T any](current map[string]*mirrored[T], old []string, next map[string]*mirrored[T], add func(*mirrored[T], string), remove func(...string)) []string {
	var gone []string
	for _, n := range old {
		if _, ok := next[n]; !ok {
			gone = append(gone, n)
			delete(current, n)
		}
	}
	if len(gone) > 0 {
		remove(gone...)
	}
	var names []string // nil for none
	if len(next) > 0 {
		names = make([]string, 0, len(next))
	}
	for n, x := range next {
		names = append(names, n)
		if cur, ok := current[n]; ok && same(cur, x) {
			continue
		}
		current[n] = x
		add(x, n)
	}
	return names
}

// syncAll brings all of current in line with next, and tells own each
// name's member.
func syncAll[T any](current map[string]*mirrored[T], next map[string]*mirrored[T], add func(*mirrored[T], string), remove func(...string), own func(string, *member)) {
	var gone []string
	for n := range current {
		if _, ok := next[n]; !ok {
			gone = append(gone, n)
			delete(current, n)
		}
	}
	if len(gone) > 0 {
		remove(gone...)
	}
	for n, x := range next {
		own(n, x.m)
		if cur, ok := current[n]; ok && same(cur, x) {
			continue
		}
		current[n] = x
		add(x, n)
	}
}

// dropNames removes a leaving member's items.
func dropNames[T any](current map[string]*mirrored[T], names []string, remove func(...string)) {
	for _, n := range names {
		delete(current, n)
	}
	if len(names) > 0 {
		remove(names...)
	}
}

// same reports whether two mirrored items are the same. Catalogs are never
// changed in place: the same item is unchanged, and only a new listing's
// items need a deep look.
func same[T any](a, b *mirrored[T]) bool {
	return a.m == b.m && a.name == b.name && (any(a.item) == any(b.item) || reflect.DeepEqual(a.item, b.item))
}

func (e *endpoint) mirrorTool(x *mirrored[*mcp.Tool], name string) {
	t := *x.item
	t.Name = name
	t.InputSchema = objectSchema(t.InputSchema)
	e.addTool(&t, e.callTool(x))
}

func (e *endpoint) mirrorPrompt(x *mirrored[*mcp.Prompt], name string) {
	p := *x.item
	p.Name = name
	e.server.AddPrompt(&p, e.getPrompt(x))
}

func (e *endpoint) mirrorResource(x *mirrored[*mcp.Resource], _ string) {
	e.refused("resource", x.name, func() { e.server.AddResource(x.item, e.readResource(x.m)) })
}

func (e *endpoint) mirrorTemplate(x *mirrored[*mcp.ResourceTemplate], _ string) {
	e.refused("resource template", x.name, func() { e.server.AddResourceTemplate(x.item, e.readResource(x.m)) })
}

// addTool adds a tool, or logs why the SDK refuses it.
func (e *endpoint) addTool(t *mcp.Tool, h mcp.ToolHandler) {
	e.refused("tool", t.Name, func() { e.server.AddTool(t, h) })
}

// refused runs add, turning the SDK's panic at an item it refuses (a
// schema, a URI) into a log line: one odd upstream item must not take the
// others down.
func (e *endpoint) refused(kind, name string, add func()) {
	defer func() {
		if r := recover(); r != nil {
			e.logger.Warn("skipping an upstream "+kind+" the MCP SDK refuses", zap.String("name", name), zap.Any("reason", r))
		}
	}()
	add()
}

// objectSchema returns an input schema the SDK accepts: MCP requires an
// object schema, and some servers omit "type" or the schema altogether.
// A schema kept as JSON (compactSchemas) that is right is returned as it is.
func objectSchema(s any) any {
	if raw, ok := s.(json.RawMessage); ok {
		var head struct {
			Type any `json:"type"`
		}
		if json.Unmarshal(raw, &head) == nil && head.Type == "object" {
			return s
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return map[string]any{"type": "object"}
		}
		s = m
	}
	m, ok := s.(map[string]any)
	if !ok {
		return map[string]any{"type": "object"}
	}
	if m["type"] == "object" {
		return s
	}
	fixed := make(map[string]any, len(m)+1)
	for k, v := range m {
		fixed[k] = v
	}
	fixed["type"] = "object"
	return fixed
}
