package caddymcp

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// maxExposedName is the longest tool or prompt name clients accept
// everywhere: names must match ^[a-zA-Z0-9_-]{1,64}$.
const maxExposedName = 64

// namePair is an upstream tool or prompt: the server's name and the name
// the upstream gives it.
type namePair struct{ Server, Name string }

// mangled reports whether exposing the pair has to change its characters.
func (p namePair) mangled() bool {
	return exposedNamePart(p.Server) != p.Server || exposedNamePart(p.Name) != p.Name
}

// qualifiedNames maps every (server, name) pair to a unique exposed name
// matching ^[a-zA-Z0-9_-]{1,64}$, for the aggregate endpoint:
//
//  1. In the server and the name separately, every character outside
//     [a-zA-Z0-9_-] becomes '_'; an empty part becomes "_".
//  2. The two are joined with "__": "<server>__<name>".
//  3. A result longer than 64 is cut to 55 characters, and '_' and the first
//     8 hex digits of sha256(server + "\x00" + name) (the original strings)
//     are appended, making it 64 exactly.
//  4. When different pairs give the same result, they are ordered: pairs
//     that step 1 left untouched (see namePair.mangled) before those it
//     changed, and among equals by server, then name (byte-wise). The first
//     keeps the result, and each other gets the suffix of step 3 added to its
//     joined name (cut so that the whole is at most 64).
//  5. Should that still collide, "_2", "_3", ... is appended (cutting
//     before it as needed) until the name is unused.
//
// The outcome depends only on the set of pairs, never on their order, so
// a client sees the same names across reloads. It never fails.
func qualifiedNames(pairs []namePair) map[namePair]string {
	type sortable struct {
		namePair
		mangled bool
	}
	sorted := make([]sortable, len(pairs))
	for i, p := range pairs {
		sorted[i] = sortable{p, p.mangled()}
	}
	slices.SortFunc(sorted, func(a, b sortable) int {
		if a.mangled != b.mangled {
			if a.mangled {
				return 1
			}
			return -1
		}
		if c := strings.Compare(a.Server, b.Server); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	unique := make([]namePair, 0, len(sorted))
	for i, p := range sorted {
		if i == 0 || p.namePair != sorted[i-1].namePair {
			unique = append(unique, p.namePair)
		}
	}

	// Steps 1-3; in sorted order, the first pair to claim a name keeps it.
	joined := make([]string, len(unique))
	out := make(map[namePair]string, len(unique))
	used := make(map[string]bool, len(unique))
	var losers []int
	for i, p := range unique {
		joined[i] = exposedNamePart(p.Server) + "__" + exposedNamePart(p.Name)
		name := joined[i]
		if len(name) > maxExposedName {
			name = hashSuffixed(joined[i], p)
		}
		if used[name] {
			losers = append(losers, i)
			continue
		}
		used[name] = true
		out[p] = name
	}

	// Steps 4-5, after every plain name is taken, so that no pair's suffixed
	// name can take the plain name of a pair later in the order.
	for _, i := range losers {
		p := unique[i]
		base := hashSuffixed(joined[i], p)
		name := base
		for n := 2; used[name]; n++ {
			suffix := "_" + strconv.Itoa(n)
			name = base[:min(len(base), maxExposedName-len(suffix))] + suffix
		}
		used[name] = true
		out[p] = name
	}
	return out
}

// exposedNamePart replaces each character outside [a-zA-Z0-9_-] with '_'
// (one per code point, or per byte of invalid UTF-8), and "" with "_".
func exposedNamePart(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// hashSuffixed returns joined, cut so that the result fits in 64, with '_'
// and 8 hex digits of the pair's hash appended.
func hashSuffixed(joined string, p namePair) string {
	sum := sha256.Sum256([]byte(p.Server + "\x00" + p.Name))
	suffix := "_" + hex.EncodeToString(sum[:4])
	return joined[:min(len(joined), maxExposedName-len(suffix))] + suffix
}
