package registryapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// Storage layout. Each record is one key, written whole (Caddy's file
// storage writes a temporary file and renames it), so after a crash a record
// is whole or absent. The journal lists the latest changes, for other Caddy
// instances sharing the storage to follow.
const (
	storePrefix = "mcp_registry"
	serversDir  = storePrefix + "/servers"
	journalKey  = storePrefix + "/journal.json"
	writeLock   = storePrefix + "/write"
	journalKeep = 1024
)

// store keeps the registry's records in Caddy's storage.
type store struct {
	storage certmagic.Storage

	// Writers of this process take turns on mu; the first takes the
	// storage's write lock too, so that other instances wait. The journal
	// entry of a write is written after the write has answered, by one
	// flusher at a time, and the flush that finds nothing newer gives the
	// storage lock back. A write that comes during a flush keeps the lock:
	// it neither waits for the flush nor takes the lock anew.
	mu      sync.Mutex
	held    bool          // the storage lock is ours
	journal *journal      // while held: the journal as it stands, written or not
	flushed chan struct{} // while a flush runs: closed when it ends

	journalBuf []byte // the flush's encoding of the journal (writeJournal)

	cacheMu sync.Mutex
	cached  *journal // as last read or written, while the key's stat says so
	stat    certmagic.KeyInfo
}

// journal is the sequence of changes: its number, and the latest names.
// A journal is not changed once made (next makes another), so that
// writers, the flusher and the cache can share one.
type journal struct {
	Seq     int64    `json:"seq"`
	Changes []change `json:"changes"` // oldest first, at most journalKeep

	extended bool // next used the array after Changes; st.mu
}

type change struct {
	Seq  int64  `json:"seq"`
	Name string `json:"name"`
}

func recordKey(name string) string { return path.Join(serversDir, name+".json") }

// errNotFound is a record that does not exist.
var errNotFound = errors.New("not found")

// get reads one record.
func (st *store) get(ctx context.Context, name string) (*Server, error) {
	b, err := st.storage.Load(ctx, recordKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading record %q from storage: %w", name, err)
	}
	return decodeRecord(name, b)
}

func decodeRecord(name string, b []byte) (*Server, error) {
	var s Server
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("record %q in storage is unreadable: %v", name, err)
	}
	if s.SchemaVersion < 1 || s.SchemaVersion > schemaVersion {
		return nil, fmt.Errorf("record %q in storage has schema version %d; this build reads 1 to %d", name, s.SchemaVersion, schemaVersion)
	}
	if s.Name != name {
		return nil, fmt.Errorf("record %q in storage names itself %q", name, s.Name)
	}
	s.Status = nil
	return &s, nil
}

// list reads every record. Records that cannot be read are reported by
// name beside the ones that can: one bad record hides no other.
func (st *store) list(ctx context.Context) ([]*Server, map[string]error, error) {
	keys, err := st.storage.List(ctx, serversDir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing records in storage: %w", err)
	}
	var out []*Server
	bad := map[string]error{}
	for _, k := range keys {
		name, ok := strings.CutSuffix(path.Base(k), ".json")
		if !ok || strings.HasPrefix(path.Base(k), ".") {
			st.removeStale(ctx, k) // not a record: a temporary file of an interrupted write
			continue
		}
		s, err := st.get(ctx, name)
		switch {
		case errors.Is(err, errNotFound):
		case err != nil:
			bad[name] = err
		default:
			out = append(out, s)
		}
	}
	return out, bad, nil
}

// staleAfter is how old a temporary file beside the records must be before
// it is removed: a write in progress (here or in another instance) takes
// milliseconds.
const staleAfter = 10 * time.Minute

// removeStale removes a file beside the records that is not one (left by a
// write that was killed) once it is old enough.
func (st *store) removeStale(ctx context.Context, key string) {
	if info, err := st.storage.Stat(ctx, key); err == nil && time.Since(info.Modified) > staleAfter {
		_ = st.storage.Delete(ctx, key)
	}
}

// begin takes this process's turn to write and the storage's write lock,
// and returns the journal as it stands. end must follow.
func (st *store) begin(ctx context.Context) (*journal, error) {
	st.mu.Lock()
	if !st.held {
		if err := st.storage.Lock(ctx, writeLock); err != nil {
			st.mu.Unlock()
			return nil, fmt.Errorf("locking the registry's storage: %w", err)
		}
		j, err := st.readJournal(ctx)
		if err != nil {
			_ = st.storage.Unlock(context.WithoutCancel(ctx), writeLock)
			st.mu.Unlock()
			return nil, err
		}
		st.held, st.journal = true, j
	}
	return st.journal, nil
}

// end gives the turn to the next writer. A change (name not "") becomes
// the journal's next entry, written in the background, failed told of an
// error; the storage lock is kept until it is written. Without a change,
// and with no flush running, the storage lock is given back at once.
func (st *store) end(name string, failed func(error)) {
	defer st.mu.Unlock()
	switch {
	case name != "":
		st.journal = st.journal.next(name)
		if st.flushed == nil {
			st.flushed = make(chan struct{})
			go st.flush(failed)
		}
	case st.flushed == nil:
		st.release()
	}
}

// flush writes the journal until what it wrote is the latest, then gives
// the storage lock back.
func (st *store) flush(failed func(error)) {
	for {
		st.mu.Lock()
		j := st.journal
		st.mu.Unlock()
		if err := st.writeJournal(context.Background(), j); err != nil {
			failed(err)
		}
		st.mu.Lock()
		if st.journal == j {
			st.release()
			close(st.flushed)
			st.flushed = nil
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
	}
}

// release gives the storage lock back. st.mu is held.
func (st *store) release() {
	_ = st.storage.Unlock(context.Background(), writeLock)
	st.held, st.journal = false, nil
}

// quiet takes the turn once no flush runs, until unlock: the storage lock
// is not ours, and the journal in the storage is the latest of this process.
func (st *store) quiet() (unlock func()) {
	st.mu.Lock()
	for st.flushed != nil {
		done := st.flushed
		st.mu.Unlock()
		<-done
		st.mu.Lock()
	}
	return st.mu.Unlock
}

// settle waits for the journal entries of past writes to be written.
func (st *store) settle() { st.quiet()() }

// put writes a record whole (its status is not stored).
func (st *store) put(ctx context.Context, s *Server) error {
	stored := s.clone()
	stored.Status = nil
	b, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	if err := st.storage.Store(ctx, recordKey(s.Name), b); err != nil {
		return fmt.Errorf("writing record %q to storage: %w", s.Name, err)
	}
	return nil
}

// remove deletes a record.
func (st *store) remove(ctx context.Context, name string) error {
	if err := st.storage.Delete(ctx, recordKey(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting record %q from storage: %w", name, err)
	}
	return nil
}

// next is the journal with one more change, keeping the latest
// journalKeep. j is not changed (a flush may be reading it): the change
// goes into the array's room after j's entries, which only j's first next
// may take; without room, the entries kept move to an array of twice
// journalKeep, so that a write copies about one entry, not the journal.
func (j *journal) next(name string) *journal {
	c := change{Seq: j.Seq + 1, Name: name}
	keep := j.Changes[max(0, len(j.Changes)-journalKeep+1):]
	var changes []change
	if !j.extended && len(j.Changes) < cap(j.Changes) {
		changes = append(keep, c)
	} else {
		changes = append(append(make([]change, 0, 2*journalKeep), keep...), c)
	}
	j.extended = true
	return &journal{Seq: c.Seq, Changes: changes}
}

// writeJournal stores j as the journal. The storage lock is held, and it
// runs in one flush at a time.
func (st *store) writeJournal(ctx context.Context, j *journal) error {
	var b []byte
	if _, ok := st.storage.(*certmagic.FileStorage); ok {
		// Caddy's file storage has written the bytes out when Store
		// returns, and keeps none: one buffer serves every flush, where
		// a new one would be 40 bytes a change kept, on every write.
		b = j.appendTo(st.journalBuf[:0])
		st.journalBuf = b
	} else {
		b = j.appendTo(nil) // another storage module may keep what it is given
	}
	if err := st.storage.Store(ctx, journalKey, b); err != nil {
		return fmt.Errorf("writing the registry's journal: %w", err)
	}
	if info, err := st.storage.Stat(ctx, journalKey); err == nil { // the lock is held: nobody else wrote
		st.remember(j, info)
	}
	return nil
}

// appendTo appends the journal as JSON to b, written out by hand: it is
// rewritten on every write, and encoding/json's reflection over its
// thousand entries was most of the cost.
func (j *journal) appendTo(b []byte) []byte {
	b = slices.Grow(b, 32+len(j.Changes)*40)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, j.Seq, 10)
	b = append(b, `,"changes":[`...)
	for i, c := range j.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seq":`...)
		b = strconv.AppendInt(b, c.Seq, 10)
		b = append(b, `,"name":`...)
		b = appendName(b, c.Name)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendName appends a name as a JSON string. A record's name (namePattern)
// needs no escapes and is copied as it is; anything else (read from a
// damaged journal) goes through encoding/json.
func appendName(b []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			q, _ := json.Marshal(name) // a string: cannot fail
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"')
}

// since returns the names changed after seq, or false when the journal no
// longer reaches back that far (or went back: it was damaged and started
// again), and everything must be read.
func (j *journal) since(seq int64) ([]string, bool) {
	if j.Seq < seq || (j.Seq > seq && (len(j.Changes) == 0 || j.Changes[0].Seq > seq+1)) {
		return nil, false
	}
	var names []string
	for _, c := range j.Changes {
		if c.Seq > seq {
			names = append(names, c.Name)
		}
	}
	return names, true
}

// readJournal reads the journal; a missing one is empty. The journal is
// read on every write and every poll, so it is decoded again only when its
// size or time changed.
func (st *store) readJournal(ctx context.Context) (*journal, error) {
	info, err := st.storage.Stat(ctx, journalKey)
	if errors.Is(err, fs.ErrNotExist) {
		return &journal{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the registry's journal: %w", err)
	}
	st.cacheMu.Lock()
	if st.cached != nil && info.Size == st.stat.Size && info.Modified.Equal(st.stat.Modified) {
		j := st.cached
		st.cacheMu.Unlock()
		return j, nil
	}
	st.cacheMu.Unlock()
	b, err := st.storage.Load(ctx, journalKey)
	if errors.Is(err, fs.ErrNotExist) {
		return &journal{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the registry's journal: %w", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		// A damaged journal starts again: its number going back makes
		// every instance read all records.
		return &journal{}, nil
	}
	st.remember(&j, info) // the stat from before the read: a write since shows
	return &j, nil
}

// remember caches the journal with its key's stat.
func (st *store) remember(j *journal, info certmagic.KeyInfo) {
	st.cacheMu.Lock()
	defer st.cacheMu.Unlock()
	st.cached, st.stat = j, info
}
