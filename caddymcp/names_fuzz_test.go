package caddymcp

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// FuzzToolNames: qualifiedNames never panics, and for any set of pairs
// gives each a name that matches ^[a-zA-Z0-9_-]{1,64}$, no two pairs the
// same, the plain name to the pair the rules put first, and the same names
// for the same set in any order. The input is one pair per line, the
// server's name before the first '/'.
func FuzzToolNames(f *testing.F) {
	long := strings.Repeat("L", 66)
	for _, s := range []string{
		"srv/echo",
		"srv/a b\nsrv/a_b\nsrv/a(b\nsrv/a)b",
		"my.srv/t\nmy_srv/t\nmy-srv/t",
		"a/b__c\na__b/c\na_/_b__c",
		"srv/" + long + "\nsrv/" + long + "x\nsrv/" + long + "y",
		"srv/\n/\n/x\nsrv/é\nsrv/ü\nsrv/日本",
		"srv/a\nsrv/a\nsrv/a",
		"\xff\xfe/\x00\nsrv/\xc3",
		strings.Repeat("s", 64) + "/" + strings.Repeat("n", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var pairs []namePair
		for line := range strings.SplitSeq(input, "\n") {
			server, name, _ := strings.Cut(line, "/")
			pairs = append(pairs, namePair{server, name})
		}
		got := qualifiedNames(pairs)
		checkExposedNames(t, pairs, got)
		checkPlainNameWinner(t, pairs, got)
		if again := qualifiedNames(pairs); !maps.Equal(again, got) {
			t.Fatalf("a second run gave other names:\n%q\n%q", got, again)
		}
		reversed := slices.Clone(pairs)
		slices.Reverse(reversed)
		if other := qualifiedNames(reversed); !maps.Equal(other, got) {
			t.Fatalf("the names depend on the order:\n%q\n%q", got, other)
		}
		if t.Failed() {
			t.Fatalf("input %q", pairs)
		}
	})
}
