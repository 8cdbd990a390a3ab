package caddymcp

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

// recorder is an interceptor that notes what it saw, and refuses where told.
type recorder struct {
	name          string
	log           *[]string
	refuseBefore  bool
	refuseAfter   bool
	sawOutcomeErr *error
}

func (r *recorder) Before(_ context.Context, c *Call) error {
	*r.log = append(*r.log, r.name+".before "+c.Tool)
	if r.refuseBefore {
		return errors.New(r.name + " says no")
	}
	return nil
}

func (r *recorder) After(_ context.Context, _ *Call, o *Outcome) error {
	*r.log = append(*r.log, r.name+".after")
	if r.sawOutcomeErr != nil {
		*r.sawOutcomeErr = o.Err
	}
	if r.refuseAfter {
		return errors.New(r.name + " hides the result")
	}
	return nil
}

func TestChainOrder(t *testing.T) {
	call := func(c chain) (json.RawMessage, bool, error) {
		var upstream bool
		res, err := c.run(context.Background(), &Call{Tool: "t", Started: time.Now()}, func(context.Context) (json.RawMessage, bool, error) {
			upstream = true
			return json.RawMessage(`{"content":[]}`), false, nil
		})
		return res, upstream, err
	}
	t.Run("all pass", func(t *testing.T) {
		var log []string
		c := chain{{"a", &recorder{name: "a", log: &log}}, {"b", &recorder{name: "b", log: &log}}}
		res, upstream, err := call(c)
		if err != nil || !upstream || string(res) != `{"content":[]}` {
			t.Fatalf("res %s err %v upstream %v", res, err, upstream)
		}
		if want := []string{"a.before t", "b.before t", "b.after", "a.after"}; !slices.Equal(log, want) {
			t.Fatalf("order %v, want %v", log, want)
		}
	})
	t.Run("refused before", func(t *testing.T) {
		var log []string
		var seen error
		c := chain{{"a", &recorder{name: "a", log: &log, sawOutcomeErr: &seen}}, {"b", &recorder{name: "b", log: &log, refuseBefore: true}},
			{"c", &recorder{name: "c", log: &log}}}
		_, upstream, err := call(c)
		var r *Refused
		if upstream || !errors.As(err, &r) || r.By != "b" || err.Error() != "refused by b: b says no" {
			t.Fatalf("err %v upstream %v", err, upstream)
		}
		// c never began, so it sees no end; a sees b's refusal.
		if want := []string{"a.before t", "b.before t", "a.after"}; !slices.Equal(log, want) {
			t.Fatalf("order %v, want %v", log, want)
		}
		if !errors.As(seen, &r) {
			t.Fatalf("a saw outcome error %v, want the refusal", seen)
		}
	})
	t.Run("refused after", func(t *testing.T) {
		var log []string
		var seen error
		c := chain{{"a", &recorder{name: "a", log: &log, sawOutcomeErr: &seen}}, {"b", &recorder{name: "b", log: &log, refuseAfter: true}}}
		res, upstream, err := call(c)
		if !upstream || res != nil || err == nil || err.Error() != "refused by b: b hides the result" {
			t.Fatalf("res %s err %v upstream %v", res, err, upstream)
		}
		if seen == nil {
			t.Fatal("a did not see that b refused the result")
		}
	})
}
