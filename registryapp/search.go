package registryapp

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// BM25 parameters: the customary defaults, which suit short texts like tool
// names and descriptions well enough that tuning them would not pay.
const (
	bm25K1             = 1.2
	bm25B              = 0.75
	defaultSearchLimit = 20
)

// The fields of a tool that search looks at.
const (
	fieldName = iota
	fieldTitle
	fieldArgs
	fieldDescription
	numFields
)

// fieldWeight scales a term's frequency per field before BM25 saturates it
// (BM25F): a tool's name says most about what it does, its title and argument
// names say what it works on, and a description also mentions what the tool
// merely touches on: name 3, title 2, arguments 1.5, description 1.
var fieldWeight = [numFields]float64{3, 2, 1.5, 1}

// stopwords are dropped from texts and queries: they match nearly every
// description and would only add noise and work.
var stopwords = func() map[string]bool {
	m := make(map[string]bool)
	for _, w := range strings.Fields(`a an and are as at be by can for from has have
		how if in into is it its of on or so that the then there these this to was
		what when which will with you your`) {
		m[w] = true
	}
	return m
}()

// indexedTool is one tool as the index sees it.
type indexedTool struct {
	Name        string
	Title       string
	Description string
	Args        []string // argument (input schema property) names
}

// searchHit is one ranked result.
type searchHit struct {
	Server      string  `json:"server"`
	Tool        string  `json:"tool"`
	Title       string  `json:"title,omitempty"`
	Description string  `json:"description,omitempty"`
	Score       float64 `json:"score"`
}

type searchFilter struct {
	Server string // exact server name; "" = any
	Tag    string // the server has this tag (case-insensitive); "" = any
}

// searchIndex ranks the tools of many servers by BM25F. It is an inverted
// index kept current write by write, so a search reads only the postings of
// its terms and replacing a server costs only that server's tools.
type searchIndex struct {
	mu      sync.RWMutex
	terms   map[string]*postingList
	docs    []toolDoc // by document id; ids in free are unused, the rest live
	free    []int32
	servers map[string]*indexedServer
	lenSum  [numFields]int // summed field lengths of the live documents
	scratch sync.Pool      // *searchScratch
}

type (
	indexedServer struct {
		name string
		tags []string
		docs []int32
	}
	toolDoc struct {
		srv                      *indexedServer // nil while the id is free
		name, title, description string
		lens                     [numFields]int32
		refs                     []termRef // one per distinct term, for removal
	}
	// termRef is where one of a document's postings sits, so that removing
	// the document is a constant-time swap per term, not a scan of the list.
	termRef struct {
		list *postingList
		pos  int32
	}
	postingList struct {
		term     string
		postings []posting // unordered: removal swaps the last one in
	}
	posting struct {
		doc, ref int32 // ref: the index of this term in docs[doc].refs
		tf       [numFields]uint16
	}
)

// searchScratch is one search's score per document, pooled so that a search
// allocates nothing in proportion to the corpus. Entries are zero between uses.
type searchScratch struct {
	score   []float64
	touched []int32
	top     []scoredDoc
}

type scoredDoc struct {
	doc   int32
	score float64
}

// analyzedTool is a tool's terms, computed before the write lock is taken.
type analyzedTool struct {
	lens  [numFields]int32
	terms []termFreq
}

type termFreq struct {
	term string
	tf   [numFields]uint16
}

func newSearchIndex() *searchIndex {
	return &searchIndex{
		terms:   make(map[string]*postingList),
		servers: make(map[string]*indexedServer),
		scratch: sync.Pool{New: func() any { return new(searchScratch) }},
	}
}

// setServer replaces everything indexed for a server (its tools and tags) in
// one step. Its tools are tokenized before the lock is taken, so searches wait
// only for the postings to change.
func (ix *searchIndex) setServer(server string, tags []string, tools []indexedTool) {
	analyzed := make([]analyzedTool, len(tools))
	for i, t := range tools {
		analyzed[i] = analyzeTool(t)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old := ix.servers[server]; old != nil {
		for _, id := range old.docs {
			ix.removeDoc(id)
		}
		delete(ix.servers, server)
	}
	if len(tools) == 0 {
		return
	}
	srv := &indexedServer{name: server, tags: slices.Clone(tags), docs: make([]int32, len(tools))}
	ix.servers[server] = srv
	for i, t := range tools {
		srv.docs[i] = ix.addDoc(srv, t, analyzed[i])
	}
}

// removeServer forgets a server: a server without tools has nothing to find.
func (ix *searchIndex) removeServer(server string) { ix.setServer(server, nil, nil) }

// len is the number of tools indexed.
func (ix *searchIndex) len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.docs) - len(ix.free)
}

func (ix *searchIndex) addDoc(srv *indexedServer, t indexedTool, a analyzedTool) int32 {
	var id int32
	if n := len(ix.free); n > 0 {
		id, ix.free = ix.free[n-1], ix.free[:n-1]
	} else {
		id = int32(len(ix.docs))
		ix.docs = append(ix.docs, toolDoc{})
	}
	d := &ix.docs[id]
	*d = toolDoc{srv: srv, name: t.Name, title: t.Title, description: t.Description,
		lens: a.lens, refs: make([]termRef, len(a.terms))}
	for i, tf := range a.terms {
		pl := ix.terms[tf.term]
		if pl == nil {
			// A copy, so the vocabulary does not pin the caller's longer strings.
			pl = &postingList{term: strings.Clone(tf.term)}
			ix.terms[pl.term] = pl
		}
		d.refs[i] = termRef{pl, int32(len(pl.postings))}
		pl.postings = append(pl.postings, posting{doc: id, ref: int32(i), tf: tf.tf})
	}
	for f, n := range a.lens {
		ix.lenSum[f] += int(n)
	}
	return id
}

func (ix *searchIndex) removeDoc(id int32) {
	d := &ix.docs[id]
	for _, r := range d.refs {
		pl := r.list
		last := len(pl.postings) - 1
		if moved := pl.postings[last]; int(r.pos) != last {
			pl.postings[r.pos] = moved
			ix.docs[moved.doc].refs[moved.ref].pos = r.pos
		}
		pl.postings = pl.postings[:last]
		if last == 0 {
			delete(ix.terms, pl.term)
		}
	}
	for f, n := range d.lens {
		ix.lenSum[f] -= int(n)
	}
	*d = toolDoc{}
	ix.free = append(ix.free, id)
}

// search ranks tools by BM25F (k1=1.2, b=0.75) over names, titles, argument
// names and descriptions, weighted by fieldWeight. limit <= 0 means 20;
// results are sorted by score desc, then server, then tool. An empty or
// all-stopword query returns nil, as does a query nothing matches.
func (ix *searchIndex) search(query string, f searchFilter, limit int) []searchHit {
	terms := appendTokens(nil, query, true)
	slices.Sort(terms)
	terms = slices.Compact(terms)
	if len(terms) == 0 {
		return nil
	}
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sc := ix.scratch.Get().(*searchScratch)
	defer ix.scratch.Put(sc)
	sc.score = slices.Grow(sc.score[:0], len(ix.docs))[:len(ix.docs)]

	n := float64(len(ix.docs) - len(ix.free))
	var norm [numFields]float64 // b / average field length
	for f, sum := range ix.lenSum {
		if sum > 0 {
			norm[f] = bm25B * n / float64(sum)
		}
	}
	for _, term := range terms {
		pl := ix.terms[term]
		if pl == nil {
			continue
		}
		df := float64(len(pl.postings))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for _, p := range pl.postings {
			lens := &ix.docs[p.doc].lens
			tf := 0.0
			for f, c := range p.tf {
				if c != 0 {
					tf += fieldWeight[f] * float64(c) / (1 - bm25B + norm[f]*float64(lens[f]))
				}
			}
			if sc.score[p.doc] == 0 {
				sc.touched = append(sc.touched, p.doc)
			}
			sc.score[p.doc] += idf * tf * (bm25K1 + 1) / (bm25K1 + tf)
		}
	}

	// Keep the best limit candidates in a heap whose root is the worst of them.
	top := sc.top[:0]
	for _, id := range sc.touched {
		c := scoredDoc{id, sc.score[id]}
		sc.score[id] = 0
		switch {
		case !f.admits(ix.docs[id].srv):
		case len(top) < limit:
			if top = append(top, c); len(top) == limit {
				for i := limit/2 - 1; i >= 0; i-- {
					ix.siftDown(top, i)
				}
			}
		case ix.compare(c, top[0]) < 0:
			top[0] = c
			ix.siftDown(top, 0)
		}
	}
	sc.touched = sc.touched[:0]
	slices.SortFunc(top, ix.compare)
	sc.top = top[:0]
	if len(top) == 0 {
		return nil
	}
	hits := make([]searchHit, len(top))
	for i, c := range top {
		d := &ix.docs[c.doc]
		hits[i] = searchHit{Server: d.srv.name, Tool: d.name, Title: d.title,
			Description: d.description, Score: c.score}
	}
	return hits
}

// compare orders search results: by score descending, then server, then tool.
func (ix *searchIndex) compare(a, b scoredDoc) int {
	if a.score != b.score {
		return cmp.Compare(b.score, a.score)
	}
	da, db := &ix.docs[a.doc], &ix.docs[b.doc]
	return cmp.Or(strings.Compare(da.srv.name, db.srv.name), strings.Compare(da.name, db.name))
}

// siftDown restores the heap below h[i], the worst result at the root.
func (ix *searchIndex) siftDown(h []scoredDoc, i int) {
	for {
		worst := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(h) && ix.compare(h[c], h[worst]) > 0 {
				worst = c
			}
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

func (f searchFilter) admits(s *indexedServer) bool {
	if f.Server != "" && s.name != f.Server {
		return false
	}
	return f.Tag == "" || slices.ContainsFunc(s.tags, func(t string) bool { return strings.EqualFold(t, f.Tag) })
}

func analyzeTool(t indexedTool) analyzedTool {
	var a analyzedTool
	at := make(map[string]int)
	var tokens []string
	for f, texts := range [numFields][]string{{t.Name}, {t.Title}, t.Args, {t.Description}} {
		tokens = tokens[:0]
		for _, s := range texts {
			tokens = appendTokens(tokens, s, f == fieldName)
		}
		a.lens[f] = int32(len(tokens))
		for _, term := range tokens {
			i, ok := at[term]
			if !ok {
				i = len(a.terms)
				at[term] = i
				a.terms = append(a.terms, termFreq{term: term})
			}
			if a.terms[i].tf[f] < math.MaxUint16 {
				a.terms[i].tf[f]++
			}
		}
	}
	return a
}

// appendTokens appends the terms of text to dst: its words split at
// non-alphanumerics and camelCase humps, lower-cased, stopwords dropped,
// stemmed. With whole, a word that splits also yields itself lower-cased and
// unstemmed, so that the exact name of a tool outranks its parts.
func appendTokens(dst []string, text string, whole bool) []string {
	for _, word := range strings.Fields(text) {
		word = strings.TrimFunc(word, func(r rune) bool { return !isAlnum(r) })
		start := len(dst)
		rs := []rune(word)
		from := 0
		for i, r := range rs {
			switch {
			case !isAlnum(r):
				dst, from = appendPart(dst, rs[from:i]), i+1
			case i > from && unicode.IsUpper(r) && (!unicode.IsUpper(rs[i-1]) ||
				i+1 < len(rs) && unicode.IsLower(rs[i+1])):
				dst, from = appendPart(dst, rs[from:i]), i
			}
		}
		dst = appendPart(dst, rs[from:])
		if whole && len(dst) > start {
			if w := strings.ToLower(word); !slices.Contains(dst[start:], w) {
				dst = append(dst, w)
			}
		}
	}
	return dst
}

func appendPart(dst []string, part []rune) []string {
	if len(part) == 0 {
		return dst
	}
	if w := strings.ToLower(string(part)); !stopwords[w] {
		dst = append(dst, stem(w))
	}
	return dst
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// stem folds the common English inflections of a lower-case word onto one
// form (plural -s/-es/-ies, -ing, -ed, and a final e so that "cache",
// "caches", "cached" and "caching" meet). It is deliberately light: it may
// leave related words apart, but it treats a query and a text alike.
func stem(w string) string {
	n := len(w)
	switch {
	case n > 4 && (strings.HasSuffix(w, "ies") || strings.HasSuffix(w, "ied")):
		return w[:n-3] + "y"
	case n > 2 && w[n-1] == 's' && w[n-2] != 's' && w[n-2] != 'u':
		w = w[:n-1]
	}
	if s, ok := strings.CutSuffix(w, "ing"); ok && hasVowelStem(s) {
		w = s
	} else if s, ok := strings.CutSuffix(w, "ed"); ok && hasVowelStem(s) && !strings.HasSuffix(s, "e") {
		w = s // not after e: "need" is no past tense
	}
	if len(w) > 2 && w[len(w)-1] == 'e' {
		w = w[:len(w)-1]
	}
	return w
}

// hasVowelStem reports whether s is long enough to be what is left of a word
// after a suffix: "string" and "bed" keep their endings.
func hasVowelStem(s string) bool { return len(s) >= 2 && strings.ContainsAny(s, "aeiouy") }
