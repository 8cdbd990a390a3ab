package caddymcp

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

var exposedNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// pairHash8 is the 8 hex digit suffix the rules give a pair.
func pairHash8(server, name string) string {
	sum := sha256.Sum256([]byte(server + "\x00" + name))
	return hex.EncodeToString(sum[:])[:8]
}

// checkExposedNames fails unless every pair has a name, every name is valid
// and no two pairs share one.
func checkExposedNames(t *testing.T, pairs []namePair, got map[namePair]string) {
	t.Helper()
	seen := make(map[string]namePair)
	for _, p := range pairs {
		name, ok := got[p]
		if !ok {
			t.Errorf("%q: no name", p)
			continue
		}
		if !exposedNamePattern.MatchString(name) {
			t.Errorf("%q: name %q does not match %s", p, name, exposedNamePattern)
		}
		if other, dup := seen[name]; dup && other != p {
			t.Errorf("%q and %q both named %q", other, p, name)
		}
		seen[name] = p
	}
}

func TestQualifiedNamesSingle(t *testing.T) {
	long := strings.Repeat("x", 70)
	tests := []struct {
		pair namePair
		want string
	}{
		{namePair{"srv", "greet"}, "srv__greet"},
		{namePair{"srv", "greet (structured)"}, "srv__greet__structured_"},
		{namePair{"my.server", "get-time"}, "my_server__get-time"},
		{namePair{"srv", "a/b:c"}, "srv__a_b_c"},
		{namePair{"srv", "héllo wörld"}, "srv__h_llo_w_rld"},
		{namePair{"srv", "日本"}, "srv____"},
		{namePair{"srv", "🙂"}, "srv___"},
		{namePair{"srv", "bad\xffutf8"}, "srv__bad_utf8"},
		{namePair{"srv", ""}, "srv___"},
		{namePair{"", ""}, "____"},
		{namePair{"srv", strings.Repeat("t", 59)}, "srv__" + strings.Repeat("t", 59)}, // 64: fits
		{namePair{"srv", strings.Repeat("t", 60)}, "srv__" + strings.Repeat("t", 50) + "_" + pairHash8("srv", strings.Repeat("t", 60))},
		{namePair{long, long}, long[:55] + "_" + pairHash8(long, long)},
	}
	for _, tt := range tests {
		got := qualifiedNames([]namePair{tt.pair})
		if len(got) != 1 || got[tt.pair] != tt.want {
			t.Errorf("%q: got %q, want %q", tt.pair, got, tt.want)
		}
		checkExposedNames(t, []namePair{tt.pair}, got)
	}
}

func TestQualifiedNamesLongIsExactly64(t *testing.T) {
	for n := 60; n < 200; n += 7 {
		p := namePair{"server", strings.Repeat("é", n)}
		name := qualifiedNames([]namePair{p})[p]
		if len(name) != 64 || !exposedNamePattern.MatchString(name) {
			t.Errorf("n=%d: %q (%d long)", n, name, len(name))
		}
	}
	// Names that differ only past the cut stay distinct.
	a := namePair{"s", strings.Repeat("a", 80) + "1"}
	b := namePair{"s", strings.Repeat("a", 80) + "2"}
	got := qualifiedNames([]namePair{a, b})
	checkExposedNames(t, []namePair{a, b}, got)
}

func TestQualifiedNamesCollisions(t *testing.T) {
	spaced := namePair{"srv", "a b"}
	underscored := namePair{"srv", "a_b"}
	// "a b" sorts before "a_b" (' ' < '_'), but "a_b" needs no replacement,
	// so it keeps the plain name, in either input order.
	for _, in := range [][]namePair{{underscored, spaced}, {spaced, underscored}} {
		got := qualifiedNames(in)
		if want := "srv__a_b"; got[underscored] != want {
			t.Errorf("%q: got %q, want %q", underscored, got[underscored], want)
		}
		if want := "srv__a_b_" + pairHash8("srv", "a b"); got[spaced] != want {
			t.Errorf("%q: got %q, want %q", spaced, got[spaced], want)
		}
	}

	// Between two mangled pairs, the (server, name) order decides: ' ' < '('.
	paren := namePair{"srv", "a(b"}
	got := qualifiedNames([]namePair{paren, spaced})
	if got[spaced] != "srv__a_b" || got[paren] != "srv__a_b_"+pairHash8("srv", "a(b") {
		t.Errorf("got %q", got)
	}

	// Across servers: "my.srv" and "my_srv" are both valid server names;
	// "my.srv" sorts first ('.' < '_') but is mangled, so "my_srv" wins.
	dotted := namePair{"my.srv", "t"}
	plain := namePair{"my_srv", "t"}
	got = qualifiedNames([]namePair{dotted, plain})
	if got[plain] != "my_srv__t" || got[dotted] != "my_srv__t_"+pairHash8("my.srv", "t") {
		t.Errorf("got %q", got)
	}

	// The join itself can collide: a + b__c and a__b + c. Neither is
	// mangled, so the (server, name) order decides.
	x, y := namePair{"a", "b__c"}, namePair{"a__b", "c"}
	got = qualifiedNames([]namePair{y, x})
	if got[x] != "a__b__c" || got[y] != "a__b__c_"+pairHash8("a__b", "c") {
		t.Errorf("got %q", got)
	}

	// A colliding long name: the suffixed form is already taken, so the
	// counter decides.
	long := strings.Repeat("n", 70)
	l1 := namePair{"srv", long}
	taken := namePair{"srv", strings.Repeat("n", 50) + "_" + pairHash8("srv", long)}
	got = qualifiedNames([]namePair{l1, taken})
	checkExposedNames(t, []namePair{l1, taken}, got)
	if got[taken] != "srv__"+taken.Name || got[l1] != got[taken][:62]+"_2" {
		t.Errorf("got %q", got)
	}

	// A suffixed name that is some other pair's plain name gets a counter too.
	c1, c2 := namePair{"s", "a b"}, namePair{"s", "a_b"}
	c3 := namePair{"s", "a_b_" + pairHash8("s", "a b")}
	got = qualifiedNames([]namePair{c3, c2, c1})
	checkExposedNames(t, []namePair{c1, c2, c3}, got)
	if got[c2] != "s__a_b" || got[c3] != "s__"+c3.Name || got[c1] != "s__"+c3.Name+"_2" {
		t.Errorf("got %q", got)
	}
}

func TestQualifiedNamesDuplicatesAndEmpty(t *testing.T) {
	p := namePair{"srv", "a b"}
	got := qualifiedNames([]namePair{p, p, p})
	if len(got) != 1 || got[p] != "srv__a_b" {
		t.Errorf("got %q", got)
	}
	if got := qualifiedNames(nil); len(got) != 0 {
		t.Errorf("nil input: got %q", got)
	}
}

func TestQualifiedNamesOrderIndependent(t *testing.T) {
	long := strings.Repeat("L", 66)
	pairs := []namePair{
		{"srv", "a b"}, {"srv", "a_b"}, {"srv", "a(b"}, {"srv", "a)b"},
		{"srv", "a_b_" + pairHash8("srv", "a(b")},
		{"my.srv", "t"}, {"my_srv", "t"}, {"my-srv", "t"},
		{"a", "b__c"}, {"a__b", "c"}, {"a_", "_b__c"},
		{"srv", long}, {"srv", long + "x"}, {"srv", ""}, {"srv", "é"}, {"srv", "ü"},
		{"other", "greet"}, {"srv", "greet"},
	}
	want := qualifiedNames(pairs)
	checkExposedNames(t, pairs, want)
	if len(want) != len(pairs) {
		t.Fatalf("got %d names for %d pairs", len(want), len(pairs))
	}
	// The unmangled pairs keep their plain names.
	for p, name := range map[namePair]string{
		{"srv", "a_b"}: "srv__a_b", {"my_srv", "t"}: "my_srv__t", {"my-srv", "t"}: "my-srv__t",
		{"a", "b__c"}: "a__b__c", {"srv", "greet"}: "srv__greet",
	} {
		if want[p] != name {
			t.Errorf("%q: got %q, want %q", p, want[p], name)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		shuffled := append([]namePair(nil), pairs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := qualifiedNames(shuffled); !maps.Equal(got, want) {
			t.Fatalf("order %q:\n got %q\nwant %q", shuffled, got, want)
		}
	}
}

// TestQualifiedNamesProperty checks validity and uniqueness over random
// inputs built from characters that collide once sanitized.
func TestQualifiedNamesProperty(t *testing.T) {
	alphabet := []rune("ab_- .é日\x00")
	rng := rand.New(rand.NewPCG(3, 4))
	randString := func(max int) string {
		var b strings.Builder
		for range rng.IntN(max + 1) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 200 {
		var pairs []namePair
		for range 1 + rng.IntN(40) {
			pairs = append(pairs, namePair{randString(4), randString(4)})
			if rng.IntN(8) == 0 {
				pairs = append(pairs, namePair{randString(40), randString(40)})
			}
		}
		got := qualifiedNames(pairs)
		checkExposedNames(t, pairs, got)
		checkPlainNameWinner(t, pairs, got)
		if t.Failed() {
			t.Fatalf("input %q", pairs)
		}
	}
}

// checkPlainNameWinner fails unless, among the pairs whose name after steps
// 1-3 is the same, the first in the order (unmangled before mangled, then by
// server and name) keeps that name.
func checkPlainNameWinner(t *testing.T, pairs []namePair, got map[namePair]string) {
	t.Helper()
	before := func(a, b namePair) bool {
		if a.mangled() != b.mangled() {
			return !a.mangled()
		}
		if a.Server != b.Server {
			return a.Server < b.Server
		}
		return a.Name < b.Name
	}
	winner := make(map[string]namePair)
	for _, p := range pairs {
		plain := exposedNamePart(p.Server) + "__" + exposedNamePart(p.Name)
		if len(plain) > maxExposedName {
			plain = hashSuffixed(plain, p)
		}
		if w, ok := winner[plain]; !ok || before(p, w) {
			winner[plain] = p
		}
	}
	for plain, w := range winner {
		if got[w] != plain {
			t.Errorf("%q should keep %q, got %q", w, plain, got[w])
		}
	}
}
