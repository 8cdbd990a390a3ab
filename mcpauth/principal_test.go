package mcpauth

import "testing"

func TestWho(t *testing.T) {
	alice := &Principal{ID: "alice", Groups: []string{"ops"}, Scopes: []string{"mcp:read"}, Method: "jwt"}
	for _, tt := range []struct {
		name string
		who  Who
		p    *Principal
		want bool
	}{
		{"by id", Who{Principals: []string{"bob", "alice"}}, alice, true},
		{"another id", Who{Principals: []string{"bob"}}, alice, false},
		{"anyone", Who{Principals: []string{"*"}}, alice, true},
		{"anyone, but nobody came", Who{Principals: []string{"*"}}, nil, false},
		{"by group", Who{Groups: []string{"admins", "ops"}}, alice, true},
		{"another group", Who{Groups: []string{"admins"}}, alice, false},
		{"by scope", Who{Scopes: []string{"mcp:read"}}, alice, true},
		{"another scope", Who{Scopes: []string{"mcp:write"}}, alice, false},
		{"a group named like the id", Who{Groups: []string{"alice"}}, alice, false},
		{"empty", Who{}, alice, false},
		{"empty lists", Who{Principals: []string{}, Groups: []string{}}, alice, false},
	} {
		if got := tt.who.Matches(tt.p); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !(Who{}).Empty() || (Who{Scopes: []string{"x"}}).Empty() {
		t.Error("Empty is wrong")
	}
	if !alice.HasScope("mcp:read") || alice.HasScope("mcp:write") || (*Principal)(nil).HasScope("mcp:read") {
		t.Error("HasScope is wrong")
	}
}
