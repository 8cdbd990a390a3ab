package registryapp

import "slices"

// view is a record as the API shows it: the spec with what was observed.
func (e *entry) view() *Server {
	s := e.rec.clone()
	st := e.status
	st.ToolCount = len(e.tools)
	s.Status = &st
	return s
}

// get returns a server as the API shows it.
func (r *registry) get(name string) (*Server, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.servers[name]
	if e == nil {
		return nil, false
	}
	return e.view(), true
}

// list returns, by name, up to limit servers after the name after that
// match; the number that match in all; and whether more follow.
func (r *registry) list(after string, limit int, match func(*Server) bool) (page []*Server, total int, more bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.servers))
	for name := range r.servers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s := r.servers[name].view()
		if !match(s) {
			continue
		}
		total++
		if name <= after {
			continue
		}
		if len(page) == limit {
			more = true
			continue
		}
		page = append(page, s)
	}
	return page, total, more
}

// tools returns a server's tools as last listed.
func (r *registry) tools(name string) ([]Tool, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.servers[name]
	if e == nil {
		return nil, false
	}
	if e.tools == nil {
		return []Tool{}, true
	}
	return e.tools, true
}

// summary is the registry's health: counts of servers by state.
type summary struct {
	Status   string         `json:"status"`
	Servers  int            `json:"servers"`
	Enabled  int            `json:"enabled"`
	Tools    int            `json:"tools"`
	ByHealth map[string]int `json:"health"`
}

func (r *registry) summary() summary {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := summary{Status: "ok", Servers: len(r.servers), ByHealth: map[string]int{}}
	for _, e := range r.servers {
		if e.rec.Enabled {
			s.Enabled++
			s.ByHealth[e.status.Health]++
		}
		s.Tools += len(e.tools)
	}
	return s
}
