package registryapp

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func TestStoreRecordsAndJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := &store{storage: &certmagic.FileStorage{Path: dir}}

	if recs, bad, err := st.list(ctx); err != nil || len(recs) != 0 || len(bad) != 0 {
		t.Fatalf("an empty storage lists %v %v %v", recs, bad, err)
	}
	if j, err := st.readJournal(ctx); err != nil || j.Seq != 0 {
		t.Fatalf("an empty storage's journal: %+v %v", j, err)
	}
	failed := func(err error) { t.Errorf("writing the journal: %v", err) }
	for _, name := range []string{"a", "b", "c"} {
		if _, err := st.begin(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.put(ctx, &Server{SchemaVersion: 1, Name: name, URL: "https://" + name + ".example.com/mcp", Status: &Status{Health: HealthHealthy}}); err != nil {
			t.Fatal(err)
		}
		st.end(name, failed)
	}
	if _, err := st.begin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.remove(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	st.end("b", failed)
	st.settle()

	// What other instances read: the journal from its start, and records
	// whole, without the status (observed, never stored).
	j2, err := st.readJournal(ctx)
	if err != nil || j2.Seq != 4 {
		t.Fatalf("journal: %+v %v, want seq 4", j2, err)
	}
	if names, ok := j2.since(1); !ok || !slices.Equal(names, []string{"b", "c", "b"}) {
		t.Errorf("changes since 1: %v %v", names, ok)
	}
	if names, ok := j2.since(4); !ok || len(names) != 0 {
		t.Errorf("changes since the last: %v %v", names, ok)
	}
	if _, ok := j2.since(9); ok {
		t.Error("a journal that went back (restarted after damage) must ask for a full read")
	}
	a, err := st.get(ctx, "a")
	if err != nil || a.URL != "https://a.example.com/mcp" || a.Status != nil {
		t.Errorf("get a: %+v %v", a, err)
	}
	if _, err := st.get(ctx, "b"); err != errNotFound {
		t.Errorf("get of a removed record: %v, want errNotFound", err)
	}

	// A damaged record, one of a newer schema, one that names another
	// server, and a temporary file of an interrupted write: each bad one is
	// reported by name, the good ones are listed, the temporary file is not
	// a record.
	servers := filepath.Join(dir, "mcp_registry", "servers")
	for name, content := range map[string]string{
		"broken.json":          `{"schema_version": 1, "name": "bro`,
		"future.json":          `{"schema_version": 99, "name": "future"}`,
		"alias.json":           `{"schema_version": 1, "name": "a"}`,
		".a.json.tmp123":       `{"schema_version": 1, "name": "a"}`,
		"a.json.tmp4567890123": `{`,
	} {
		if err := os.WriteFile(filepath.Join(servers, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	recs, bad, err := st.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a", "c"}) {
		t.Errorf("listed %v, want a and c", names)
	}
	var msgs []string
	for _, err := range bad {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{`record "broken" in storage is unreadable`, `record "future" in storage has schema version 99`, `record "alias" in storage names itself "a"`} {
		if !strings.Contains(all, want) {
			t.Errorf("bad records reported as %q, want one saying %q", all, want)
		}
	}
	if len(bad) != 3 || bad["broken"] == nil || bad["future"] == nil || bad["alias"] == nil {
		t.Errorf("bad records %v, want broken, future and alias: %q", slices.Sorted(maps.Keys(bad)), all)
	}

	// Listing removes temporary files of killed writes once they are old,
	// and leaves young ones (a write in progress) alone.
	old := time.Now().Add(-2 * staleAfter)
	if err := os.Chtimes(filepath.Join(servers, "a.json.tmp4567890123"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.list(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(servers, "a.json.tmp4567890123")); !os.IsNotExist(err) {
		t.Errorf("an old temporary file is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(servers, ".a.json.tmp123")); err != nil {
		t.Errorf("a young temporary file was removed: %v", err)
	}

	// A damaged journal starts again rather than stopping every write.
	if err := os.WriteFile(filepath.Join(dir, "mcp_registry", "journal.json"), []byte("{nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if j3, err := st.readJournal(ctx); err != nil || j3.Seq != 0 {
		t.Errorf("a damaged journal: %+v %v, want an empty one", j3, err)
	}
}

func TestMergePatch(t *testing.T) {
	for _, tt := range []struct{ base, patch, want string }{
		{`{"a":1,"b":{"c":2,"d":3}}`, `{"b":{"c":null,"e":4}}`, `{"a":1,"b":{"d":3,"e":4}}`},
		{`{"tags":["x","y"]}`, `{"tags":["z"]}`, `{"tags":["z"]}`},
		{`{"a":1}`, `{"a":null}`, `{}`},
		{`{"a":{"b":1}}`, `{"a":"flat"}`, `{"a":"flat"}`},
	} {
		got, err := mergePatch([]byte(tt.base), []byte(tt.patch))
		if err != nil || string(got) != tt.want {
			t.Errorf("merge %s with %s = %s %v, want %s", tt.base, tt.patch, got, err, tt.want)
		}
	}
	for _, bad := range []string{`[1]`, `"x"`, `{`} {
		if _, err := mergePatch([]byte(`{}`), []byte(bad)); err == nil {
			t.Errorf("merge patch %s: no error", bad)
		}
	}
}

// TestJournalEncodeIsJSON: the hand-written encoding of the journal is what
// encoding/json makes of it, for every character a name may hold and for
// names no record may have (a damaged journal's).
func TestJournalEncodeIsJSON(t *testing.T) {
	for _, j := range []*journal{
		{Changes: []change{}},
		{Seq: 7, Changes: []change{{Seq: 7, Name: "a"}}},
		{Seq: 1 << 40, Changes: []change{{Seq: 1<<40 - 1, Name: "abcdefghijklmnopqrstuvwxyz0123456789"}, {Seq: 1 << 40, Name: "x._-y"}}},
		{Seq: 3, Changes: []change{{Seq: 1, Name: `q"uo\te`}, {Seq: 2, Name: "ctl\x00\n"}, {Seq: 3, Name: "Über<&>\u2028"}}},
	} {
		want, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		if got := j.appendTo(nil); string(got) != string(want) {
			t.Errorf("appendTo(nil) = %s, want %s", got, want)
		}
		var back journal
		if err := json.Unmarshal(j.appendTo(nil), &back); err != nil || back.Seq != j.Seq || len(back.Changes) != len(j.Changes) {
			t.Errorf("appendTo(nil) of %+v reads back as %+v (%v)", j, back, err)
		}
	}
}

// TestJournalNextKeepsEveryJournal: next shares arrays between journals;
// every journal keeps exactly its own changes, also when two are made from
// the same one and after the window has slid many times.
func TestJournalNextKeepsEveryJournal(t *testing.T) {
	// model is a fresh copy of a journal's latest journalKeep changes with
	// one more.
	model := func(cs []change, c change) []change {
		cs = append(slices.Clone(cs), c)
		return cs[max(0, len(cs)-journalKeep):]
	}
	type made struct {
		j    *journal
		want []change
	}
	var all []made
	j, want := &journal{}, []change(nil)
	for seq := int64(1); seq <= 5*journalKeep+3; seq++ {
		if seq%97 == 0 {
			// A second line from the same journal, made first: neither
			// may see or disturb the other.
			b := j.next("branch")
			bwant := model(want, change{Seq: seq, Name: "branch"})
			all = append(all, made{b, bwant})
			all = append(all, made{b.next("after"), model(bwant, change{Seq: seq + 1, Name: "after"})})
		}
		c := change{Seq: seq, Name: strconv.FormatInt(seq, 10)}
		j, want = j.next(c.Name), model(want, c)
		all = append(all, made{j, want})
	}
	for _, m := range all {
		if !slices.Equal(m.j.Changes, m.want) {
			t.Fatalf("journal %d holds %d changes %+v … %+v; want %d, %+v … %+v", m.j.Seq, len(m.j.Changes), m.j.Changes[0], m.j.Changes[len(m.j.Changes)-1],
				len(m.want), m.want[0], m.want[len(m.want)-1])
		}
	}
}

// fullJournal is a journal holding journalKeep changes, as a busy
// registry's does.
func fullJournal() *journal {
	j := &journal{}
	for i := range journalKeep {
		j = j.next("server-" + strconv.Itoa(i))
	}
	return j
}

// TestJournalWriteReusesItsBuffer: with Caddy's file storage, writing the
// journal allocates a small part of its size: the encoding goes into the
// last flush's buffer instead of a new one on every write.
func TestJournalWriteReusesItsBuffer(t *testing.T) {
	ctx := context.Background()
	st := &store{storage: &certmagic.FileStorage{Path: t.TempDir()}}
	j := fullJournal()
	size := len(j.appendTo(nil))
	if err := st.writeJournal(ctx, j); err != nil { // the buffer's first use
		t.Fatal(err)
	}
	const writes = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range writes {
		if err := st.writeJournal(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	perWrite := int(after.TotalAlloc-before.TotalAlloc) / writes
	if perWrite > size/4 {
		t.Errorf("a journal write allocates %d bytes, for a journal of %d: its encoding is not reused", perWrite, size)
	}
	got, err := st.storage.Load(ctx, journalKey)
	if err != nil || string(got) != string(j.appendTo(nil)) {
		t.Errorf("the journal stored is %.60q… (%v), want its encoding", got, err)
	}
}

// keepingStorage is Caddy's file storage that also keeps every value it is
// given, as a storage module may (none that runs here does): what it kept
// must stay as it was stored.
type keepingStorage struct {
	*certmagic.FileStorage
	kept [][]byte
}

func (s *keepingStorage) Store(ctx context.Context, key string, value []byte) error {
	s.kept = append(s.kept, value)
	return s.FileStorage.Store(ctx, key, value)
}

// TestJournalWriteLeavesOtherStoragesTheirBytes: a storage other than
// Caddy's file storage gets bytes of its own on every journal write.
func TestJournalWriteLeavesOtherStoragesTheirBytes(t *testing.T) {
	ctx := context.Background()
	ks := &keepingStorage{FileStorage: &certmagic.FileStorage{Path: t.TempDir()}}
	st := &store{storage: ks}
	var want []string
	for j, i := fullJournal(), 0; i < 3; i++ {
		j = j.next("next-" + strconv.Itoa(i))
		want = append(want, string(j.appendTo(nil)))
		if err := st.writeJournal(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range ks.kept {
		if string(b) != want[i] {
			t.Errorf("journal write %d: the storage kept bytes that changed after Store returned", i)
		}
	}
}
