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
	mu      sync.Mutex // writers of this process queue here, then take the storage lock

	cacheMu sync.Mutex
	cached  *journal // as last read or written, while the key's stat says so
	stat    certmagic.KeyInfo
}

// journal is the sequence of changes: its number, and the latest names.
type journal struct {
	Seq     int64    `json:"seq"`
	Changes []change `json:"changes"` // oldest first, at most journalKeep
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

// lock takes the process's and then the storage's write lock: other
// Caddy instances sharing the storage wait for it too.
func (st *store) lock(ctx context.Context) (unlock func(), err error) {
	st.mu.Lock()
	if err := st.storage.Lock(ctx, writeLock); err != nil {
		st.mu.Unlock()
		return nil, fmt.Errorf("locking the registry's storage: %w", err)
	}
	return func() {
		_ = st.storage.Unlock(context.WithoutCancel(ctx), writeLock)
		st.mu.Unlock()
	}, nil
}

// settle waits for the journal entry of the last write to be written.
func (st *store) settle() {
	st.mu.Lock()
	defer st.mu.Unlock() //nolint:staticcheck // an empty critical section: waiting is the point
}

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

// appendJournal records a change after j, which it advances. The locks are
// held.
func (st *store) appendJournal(ctx context.Context, j *journal, name string) error {
	j.Seq++
	j.Changes = append(j.Changes, change{Seq: j.Seq, Name: name})
	if len(j.Changes) > journalKeep {
		j.Changes = j.Changes[len(j.Changes)-journalKeep:]
	}
	if err := st.storage.Store(ctx, journalKey, j.encode()); err != nil {
		return fmt.Errorf("writing the registry's journal: %w", err)
	}
	if info, err := st.storage.Stat(ctx, journalKey); err == nil { // the lock is held: nobody else wrote
		st.remember(j, info)
	}
	return nil
}

// encode is the journal as JSON, written out by hand: it is rewritten on
// every write, and encoding/json's reflection over its thousand entries
// was most of the cost. Names match namePattern ([a-z0-9._-]), which
// strconv quotes as JSON does.
func (j *journal) encode() []byte {
	b := make([]byte, 0, 32+len(j.Changes)*40)
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
		b = strconv.AppendQuote(b, c.Name)
		b = append(b, '}')
	}
	return append(b, "]}"...)
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
		j := *st.cached
		st.cacheMu.Unlock()
		j.Changes = slices.Clip(j.Changes) // appends copy
		return &j, nil
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
	out := j
	out.Changes = slices.Clip(out.Changes)
	return &out, nil
}

// remember caches the journal with its key's stat. j is not changed
// afterwards: readers get a copy whose appends copy (readJournal).
func (st *store) remember(j *journal, info certmagic.KeyInfo) {
	st.cacheMu.Lock()
	defer st.cacheMu.Unlock()
	st.cached, st.stat = j, info
}
