package registryapp

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSearchTokenize(t *testing.T) {
	for _, tc := range []struct {
		text  string
		whole bool
		want  []string
	}{
		{"getWeatherForecast", true, []string{"get", "weather", "forecast", "getweatherforecast"}},
		{"get_weather_forecast", true, []string{"get", "weather", "forecast", "get_weather_forecast"}},
		{"get-weather-forecast", true, []string{"get", "weather", "forecast", "get-weather-forecast"}},
		{"get_weather_forecast", false, []string{"get", "weather", "forecast"}},
		{"HTTPServer", true, []string{"http", "server", "httpserver"}},
		{"listS3Buckets v2Data", true, []string{"list", "s3", "bucket", "lists3buckets", "v2", "data", "v2data"}},
		{"weather", true, []string{"weather"}},
		{"forecasts", true, []string{"forecast", "forecasts"}},
		{"the_of", true, nil},
		{"Get the weather, for a city!", false, []string{"get", "weather", "city"}},
		{"  --  ", true, nil},
	} {
		if got := appendTokens(nil, tc.text, tc.whole); !slices.Equal(got, tc.want) {
			t.Errorf("appendTokens(%q, %v) = %q, want %q", tc.text, tc.whole, got, tc.want)
		}
	}
}

func TestSearchStem(t *testing.T) {
	for _, group := range [][]string{
		{"forecast", "forecasts"},
		{"query", "queries", "queried", "querying"},
		{"file", "files", "filed"},
		{"cache", "caches", "cached", "caching"},
		{"create", "creates", "created", "creating"},
		{"box", "boxes"},
		{"branch", "branches"},
		{"index", "indexes", "indexed", "indexing"},
		{"use", "uses", "used", "using"},
		{"id", "ids"},
		{"need", "needs", "needed"},
		{"string", "strings"},
		{"address", "addresses"},
	} {
		for _, w := range group[1:] {
			if stem(w) != stem(group[0]) {
				t.Errorf("stem(%q) = %q, stem(%q) = %q: want them equal", w, stem(w), group[0], stem(group[0]))
			}
		}
	}
	for _, w := range []string{"status", "class", "thing", "string", "bed", "ping"} {
		if stem(w) != strings.TrimSuffix(w, "e") {
			t.Errorf("stem(%q) = %q, want the word kept", w, stem(w))
		}
	}
}

func TestSearchRanking(t *testing.T) {
	ix := newSearchIndex()
	ix.setServer("wx", nil, []indexedTool{
		{Name: "lookup", Description: "Looks up the weather and the news for a city", Args: []string{"city"}},
		{Name: "get_weather_forecast", Description: "Five days ahead", Args: []string{"city"}},
		{Name: "get_weather_forecast_hourly", Title: "Hourly weather forecast", Description: "Hour by hour"},
		{Name: "get_weather", Description: "Current weather forecast conditions"},
	})
	ix.setServer("misc", nil, []indexedTool{{Name: "echo", Description: "Says it back"}})

	hits := ix.search("weather forecast", searchFilter{}, 0)
	pos := make(map[string]int)
	for i, h := range hits {
		pos[h.Tool] = i
	}
	if len(hits) != 4 {
		t.Fatalf("weather forecast: %d hits, want 4: %v", len(hits), hits)
	}
	if pos["get_weather_forecast"] > pos["lookup"] {
		t.Errorf("weather forecast: get_weather_forecast ranked below lookup: %v", hits)
	}
	if hits[3].Tool != "lookup" {
		t.Errorf("weather forecast: the tool mentioning only weather in its description is not last: %v", hits)
	}
	for _, q := range []string{"get_weather_forecast", "getWeatherForecast"} {
		if hits := ix.search(q, searchFilter{}, 0); len(hits) == 0 || hits[0].Tool != "get_weather_forecast" {
			t.Errorf("%s: exact name not first: %v", q, hits)
		}
	}
	if hits := ix.search("get_weather", searchFilter{}, 0); len(hits) == 0 || hits[0].Tool != "get_weather" {
		t.Errorf("get_weather: exact name not first: %v", hits)
	}
	if hits := ix.search("Forecasts HOURLY", searchFilter{}, 0); len(hits) == 0 || hits[0].Tool != "get_weather_forecast_hourly" {
		t.Errorf("Forecasts HOURLY: hourly tool not first: %v", hits)
	}
	if h := ix.search("echo", searchFilter{}, 0); len(h) != 1 || h[0] != (searchHit{Server: "misc", Tool: "echo",
		Description: "Says it back", Score: h[0].Score}) || h[0].Score <= 0 {
		t.Errorf("echo: %v", h)
	}
}

// TestSearchScores checks the BM25F arithmetic on a corpus small enough to
// work out by hand.
func TestSearchScores(t *testing.T) {
	ix := newSearchIndex()
	ix.setServer("s", nil, []indexedTool{{Name: "alpha"}, {Name: "beta", Description: "alpha"}})
	// N = 2, df(alpha) = 2: idf = ln(1 + 0.5/2.5). Average name length 1,
	// average description length 0.5.
	idf := math.Log(1.2)
	nameTF := 3 * 1 / (1 - 0.75 + 0.75*1/1.0)
	descTF := 1 * 1 / (1 - 0.75 + 0.75*1/0.5)
	want := []float64{idf * nameTF * 2.2 / (1.2 + nameTF), idf * descTF * 2.2 / (1.2 + descTF)}
	hits := ix.search("alpha", searchFilter{}, 0)
	if len(hits) != 2 || hits[0].Tool != "alpha" || math.Abs(hits[0].Score-want[0]) > 1e-12 ||
		math.Abs(hits[1].Score-want[1]) > 1e-12 {
		t.Errorf("alpha: %v, want scores %v", hits, want)
	}
}

func TestSearchFilters(t *testing.T) {
	ix := newSearchIndex()
	tool := []indexedTool{{Name: "read_file"}, {Name: "write_file"}}
	ix.setServer("a", []string{"Files", "local"}, tool)
	ix.setServer("b", []string{"files"}, tool)
	ix.setServer("c", nil, tool)
	for _, tc := range []struct {
		f    searchFilter
		want []string
	}{
		{searchFilter{}, []string{"a", "b", "c"}},
		{searchFilter{Server: "b"}, []string{"b"}},
		{searchFilter{Server: "B"}, nil},
		{searchFilter{Tag: "FILES"}, []string{"a", "b"}},
		{searchFilter{Tag: "local"}, []string{"a"}},
		{searchFilter{Server: "b", Tag: "local"}, nil},
		{searchFilter{Tag: "remote"}, nil},
	} {
		var got []string
		for _, h := range ix.search("file", tc.f, 0) {
			got = append(got, h.Server)
		}
		if got = slices.Compact(got); !slices.Equal(got, tc.want) {
			t.Errorf("filter %+v: servers %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestSearchSetServerReplaces(t *testing.T) {
	ix := newSearchIndex()
	ix.setServer("s", []string{"old"}, []indexedTool{{Name: "alpha_tool", Description: "first"}, {Name: "beta"}})
	ix.setServer("s", []string{"new"}, []indexedTool{{Name: "gamma", Description: "second"}})
	if n := ix.len(); n != 1 {
		t.Errorf("len = %d, want 1", n)
	}
	for _, q := range []string{"alpha", "beta", "first", "alpha_tool"} {
		if hits := ix.search(q, searchFilter{}, 0); hits != nil {
			t.Errorf("%q still matches after replacement: %v", q, hits)
		}
	}
	if hits := ix.search("gamma second", searchFilter{Tag: "new"}, 0); len(hits) != 1 || hits[0].Tool != "gamma" {
		t.Errorf("gamma second, tag new: %v", hits)
	}
	if hits := ix.search("gamma", searchFilter{Tag: "old"}, 0); hits != nil {
		t.Errorf("old tag still matches: %v", hits)
	}
	checkSearchIndex(t, ix)
}

func TestSearchRemoveServer(t *testing.T) {
	ix := newSearchIndex()
	ix.setServer("a", nil, []indexedTool{{Name: "shared", Description: "only in a"}})
	ix.setServer("b", nil, []indexedTool{{Name: "shared"}, {Name: "other"}})
	ix.removeServer("a")
	ix.removeServer("nonexistent")
	if n := ix.len(); n != 2 {
		t.Errorf("len = %d, want 2", n)
	}
	if hits := ix.search("shared", searchFilter{}, 0); len(hits) != 1 || hits[0].Server != "b" {
		t.Errorf("shared: %v", hits)
	}
	if hits := ix.search("only", searchFilter{}, 0); hits != nil {
		t.Errorf("only: %v", hits)
	}
	checkSearchIndex(t, ix)
	ix.removeServer("b")
	ix.setServer("c", nil, nil)
	if n, terms := ix.len(), len(ix.terms); n != 0 || terms != 0 {
		t.Errorf("emptied index: len %d, %d terms", n, terms)
	}
	if hits := ix.search("shared", searchFilter{}, 0); hits != nil {
		t.Errorf("empty index: %v", hits)
	}
}

func TestSearchEmptyQueries(t *testing.T) {
	ix := newSearchIndex()
	ix.setServer("s", nil, []indexedTool{{Name: "the", Description: "of and the"}})
	for _, q := range []string{"", "   ", "the of and", "-- __ !", "The_Of"} {
		if hits := ix.search(q, searchFilter{}, 0); hits != nil {
			t.Errorf("%q: %v, want nil", q, hits)
		}
	}
}

func TestSearchTiesAndLimit(t *testing.T) {
	ix := newSearchIndex()
	tools := []indexedTool{{Name: "echo_two", Description: "echo"}, {Name: "echo_one", Description: "echo"}}
	for _, s := range []string{"c", "a", "b"} {
		ix.setServer(s, nil, tools)
	}
	var many []indexedTool
	for i := range 30 {
		many = append(many, indexedTool{Name: fmt.Sprintf("tool%02d", i), Description: "echo echo back"})
	}
	ix.setServer("d", nil, many)
	want := []string{"a/echo_one", "a/echo_two", "b/echo_one", "b/echo_two", "c/echo_one", "c/echo_two"}
	hits := ix.search("echo", searchFilter{}, 100)
	var got []string
	for i, h := range hits[:min(len(hits), len(want))] {
		got = append(got, h.Server+"/"+h.Tool)
		if h.Score != hits[0].Score {
			t.Errorf("hit %d scores %v, hit 0 %v: want a tie", i, h.Score, hits[0].Score)
		}
	}
	if !slices.Equal(got, want) || len(hits) != 36 {
		t.Errorf("echo: %d hits starting %q, want 36 starting %q", len(hits), got, want)
	}
	if l := ix.search("echo", searchFilter{}, 0); !slices.Equal(l, hits[:20]) {
		t.Errorf("limit 0: %d hits, want the first 20 of limit 100", len(l))
	}
	if l := ix.search("echo", searchFilter{Server: "d"}, 5); !slices.Equal(l, hits[6:11]) {
		t.Errorf("server d, limit 5: %v, want %v", l, hits[6:11])
	}
}

// TestSearchIncrementalMatchesRebuild checks that statistics kept write by
// write end where a fresh build of the same content starts.
func TestSearchIncrementalMatchesRebuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vocab := strings.Fields("alpha beta gamma delta file files read write list get set cache weather " +
		"forecast city user repo issue branch commit search query index token mail send")
	randText := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(vocab[r.IntN(len(vocab))] + " ")
		}
		return b.String()
	}
	type content struct {
		tags  []string
		tools []indexedTool
	}
	ix, final := newSearchIndex(), make(map[string]content)
	for range 3000 {
		server := fmt.Sprintf("s%d", r.IntN(30))
		if r.IntN(4) == 0 {
			ix.removeServer(server)
			delete(final, server)
			continue
		}
		c := content{tags: []string{[]string{"x", "y", "z"}[r.IntN(3)]}}
		for range r.IntN(6) {
			c.tools = append(c.tools, indexedTool{
				Name:        vocab[r.IntN(len(vocab))] + "_" + vocab[r.IntN(len(vocab))],
				Title:       randText(r.IntN(3)),
				Description: randText(r.IntN(12)),
				Args:        strings.Fields(randText(r.IntN(3))),
			})
		}
		ix.setServer(server, c.tags, c.tools)
		delete(final, server)
		if len(c.tools) > 0 {
			final[server] = c
		}
	}
	checkSearchIndex(t, ix)

	fresh := newSearchIndex()
	for _, s := range slices.Sorted(maps.Keys(final)) {
		fresh.setServer(s, final[s].tags, final[s].tools)
	}
	if ix.len() != fresh.len() || ix.lenSum != fresh.lenSum || len(ix.terms) != len(fresh.terms) {
		t.Fatalf("incremental: %d tools, field lengths %v, %d terms; rebuilt: %d, %v, %d",
			ix.len(), ix.lenSum, len(ix.terms), fresh.len(), fresh.lenSum, len(fresh.terms))
	}
	queries := append(slices.Clone(vocab), "weather forecast", "read file user", "get_weather cache")
	for _, q := range queries {
		for _, f := range []searchFilter{{}, {Tag: "y"}, {Server: "s3"}} {
			got, want := ix.search(q, f, 1000), fresh.search(q, f, 1000)
			if len(got) != len(want) {
				t.Fatalf("%q %+v: %d hits, rebuilt %d", q, f, len(got), len(want))
			}
			if top := ix.search(q, f, 7); !slices.Equal(top, got[:min(7, len(got))]) {
				t.Fatalf("%q %+v: limit 7 gives %v, not the first 7 of %v", q, f, top, got)
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Server != w.Server || g.Tool != w.Tool || math.Abs(g.Score-w.Score) > 1e-9 {
					t.Fatalf("%q %+v hit %d: %s/%s %v, rebuilt %s/%s %v", q, f, i, g.Server, g.Tool, g.Score, w.Server, w.Tool, w.Score)
				}
			}
		}
	}
}

// TestSearchConcurrent runs searches while a server's tools are replaced:
// every search must see the server whole, before or after a replacement.
func TestSearchConcurrent(t *testing.T) {
	ix := newSearchIndex()
	ix.setServer("other", nil, []indexedTool{{Name: "alpha_other", Description: "alpha"}})
	set := func(word string) []indexedTool {
		var tools []indexedTool
		for i := range 5 {
			tools = append(tools, indexedTool{Name: fmt.Sprintf("%s_%d", word, i), Description: word + " tool"})
		}
		return tools
	}
	alpha, beta := set("alpha"), set("beta")
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range 2000 {
			switch i % 3 {
			case 0:
				ix.setServer("flip", []string{"t"}, alpha)
			case 1:
				ix.setServer("flip", []string{"t"}, beta)
			default:
				ix.removeServer("flip")
			}
		}
	})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if n := len(ix.search("alpha tool", searchFilter{Tag: "T"}, 0)); n != 0 && n != 5 {
					t.Errorf("alpha tool: %d hits, want 0 or 5", n)
					return
				}
				if hits := ix.search("alpha", searchFilter{}, 0); len(hits) != 1 && len(hits) != 6 {
					t.Errorf("alpha: %d hits, want 1 or 6", len(hits))
					return
				}
			}
		})
	}
	wg.Wait()
	if hits := ix.search("beta", searchFilter{Server: "flip"}, 0); len(hits) != 5 {
		t.Errorf("after the last replacement: %d hits for beta, want 5", len(hits))
	}
}

// checkSearchIndex fails unless the index's bookkeeping agrees with itself:
// postings and documents point at each other, and the counters add up.
func checkSearchIndex(t *testing.T, ix *searchIndex) {
	t.Helper()
	var lens [numFields]int
	live := 0
	for id, d := range ix.docs {
		if d.srv == nil {
			continue
		}
		live++
		for f, n := range d.lens {
			lens[f] += int(n)
		}
		for i, r := range d.refs {
			if p := r.list.postings[r.pos]; p.doc != int32(id) || p.ref != int32(i) || ix.terms[r.list.term] != r.list {
				t.Fatalf("doc %d term %q: posting %+v does not point back", id, r.list.term, p)
			}
		}
	}
	inServers := 0
	for _, s := range ix.servers {
		inServers += len(s.docs)
	}
	postings := 0
	for term, pl := range ix.terms {
		if len(pl.postings) == 0 {
			t.Errorf("term %q kept without postings", term)
		}
		postings += len(pl.postings)
	}
	refs := 0
	for _, d := range ix.docs {
		refs += len(d.refs)
	}
	for _, id := range ix.free {
		if ix.docs[id].srv != nil {
			t.Fatalf("doc %d is both free and in use", id)
		}
	}
	if live != ix.len() || live != inServers || lens != ix.lenSum || postings != refs {
		t.Fatalf("len %d, counted %d, in servers %d; field lengths %v, counted %v; %d postings, %d refs",
			ix.len(), live, inServers, ix.lenSum, lens, postings, refs)
	}
}

// benchCorpus generates servers of tools with realistic names, titles,
// descriptions and arguments over a vocabulary of a few thousand words whose
// use follows Zipf's law, as words in text do.
type benchCorpus struct {
	r     *rand.Rand
	vocab []string
	zipf  *rand.Zipf
}

var benchVerbs = strings.Fields("get list create update delete search fetch send run read write query find " +
	"add remove start stop upload download convert analyze translate summarize validate sync export import " +
	"schedule cancel resolve")

func newBenchCorpus(seed uint64, words int) *benchCorpus {
	r := rand.New(rand.NewPCG(seed, seed))
	syllables := []string{}
	for _, c := range "bcdfghklmnprstvz" {
		for _, v := range "aiou" {
			syllables = append(syllables, string(c)+string(v))
		}
	}
	seen := make(map[string]bool)
	var vocab []string
	for len(vocab) < words {
		var w string
		for range 2 + r.IntN(2) {
			w += syllables[r.IntN(len(syllables))]
		}
		if !seen[w] {
			seen[w] = true
			vocab = append(vocab, w)
		}
	}
	return &benchCorpus{r: r, vocab: vocab, zipf: rand.NewZipf(r, 1.1, 2, uint64(words-1))}
}

func (c *benchCorpus) word() string { return c.vocab[c.zipf.Uint64()] }

func (c *benchCorpus) tool() indexedTool {
	verb, noun := benchVerbs[c.r.IntN(len(benchVerbs))], c.vocab[c.r.IntN(len(c.vocab))]
	extra := c.word()
	names := []string{verb + "_" + noun + "_" + extra, verb + strings.ToUpper(noun[:1]) + noun[1:], verb + "-" + noun}
	var desc []string
	for range 8 + c.r.IntN(20) {
		if c.r.IntN(4) == 0 {
			desc = append(desc, []string{"the", "a", "for", "of", "and", "with"}[c.r.IntN(6)])
		} else {
			desc = append(desc, c.word())
		}
	}
	var args []string
	for range 1 + c.r.IntN(4) {
		args = append(args, c.word()+"_"+c.word())
	}
	return indexedTool{Name: names[c.r.IntN(len(names))], Title: verb + " " + noun + " " + extra,
		Description: strings.Join(desc, " "), Args: args}
}

func (c *benchCorpus) tools(n int) []indexedTool {
	tools := make([]indexedTool, n)
	for i := range tools {
		tools[i] = c.tool()
	}
	return tools
}

func (c *benchCorpus) tags() []string {
	all := []string{"weather", "finance", "dev", "docs", "search", "media", "ops", "data"}
	return []string{all[c.r.IntN(len(all))], all[c.r.IntN(len(all))]}
}

// query is a 1-3 word query, now and then with a verb, or an exact tool name.
func (c *benchCorpus) query() string {
	if c.r.IntN(10) == 0 {
		return c.tool().Name
	}
	words := []string{c.word()}
	for range c.r.IntN(3) {
		if c.r.IntN(3) == 0 {
			words = append(words, benchVerbs[c.r.IntN(len(benchVerbs))])
		} else {
			words = append(words, c.word())
		}
	}
	return strings.Join(words, " ")
}

func (c *benchCorpus) index(servers, toolsEach int) *searchIndex {
	ix := newSearchIndex()
	for i := range servers {
		ix.setServer(fmt.Sprintf("srv%05d", i), c.tags(), c.tools(toolsEach))
	}
	return ix
}

func BenchmarkSearch10kTools(b *testing.B) {
	c := newBenchCorpus(1, 3000)
	ix := c.index(1000, 10)
	queries := make([]string, 1000)
	for i := range queries {
		queries[i] = c.query()
	}
	ix.search(queries[0], searchFilter{}, 0) // fills the scratch pool, as a running server's would be
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ix.search(queries[i%len(queries)], searchFilter{}, 0)
		i++
	}
}

// BenchmarkSearchLatency10kTools reports the latency distribution of single
// queries, one in ten filtered by tag, one in twenty by server.
func BenchmarkSearchLatency10kTools(b *testing.B) {
	c := newBenchCorpus(2, 3000)
	ix := c.index(1000, 10)
	const perOp = 2000
	var took []time.Duration
	for b.Loop() {
		for i := range perOp {
			var f searchFilter
			switch {
			case i%20 == 0:
				f.Server = fmt.Sprintf("srv%05d", c.r.IntN(1000))
			case i%10 == 0:
				f.Tag = "Dev"
			}
			q := c.query()
			start := time.Now()
			ix.search(q, f, 0)
			took = append(took, time.Since(start))
		}
	}
	slices.Sort(took)
	ms := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))]) / 1e6 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

func BenchmarkSetServer10kTools(b *testing.B)  { benchSetServer(b, 1000) }
func BenchmarkSetServer100kTools(b *testing.B) { benchSetServer(b, 10000) }

// benchSetServer replaces one server's 10 tools in an index of servers×10.
func benchSetServer(b *testing.B, servers int) {
	c := newBenchCorpus(3, 3000)
	ix := c.index(servers, 10)
	replacements := make([][]indexedTool, 100)
	for i := range replacements {
		replacements[i] = c.tools(10)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ix.setServer(fmt.Sprintf("srv%05d", i%servers), nil, replacements[i%len(replacements)])
		i++
	}
}

func BenchmarkIndexMemory100kTools(b *testing.B) {
	var kib float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix := newBenchCorpus(4, 3000).index(10000, 10)
		runtime.GC()
		runtime.ReadMemStats(&after)
		kib = float64(after.HeapAlloc-before.HeapAlloc) / 1024 / float64(ix.len())
	}
	b.ReportMetric(kib, "KiB/tool")
}
