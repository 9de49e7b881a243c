// Package memstate is a StateStore and PlanLoader kept in memory, optionally
// journaled to a file so that a restarted process finds the states it
// recorded. It serves the applier's tests, its crash test, the applier
// benchmark and a simulator-only server; production plans live in the
// Watcher API's SQLite persistence.
//
// It stores states; it never executes anything.
package memstate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
)

// Transition is one recorded state change.
type Transition struct {
	Kind    string `json:"kind"` // "plan" or "action"
	ID      string `json:"id"`
	From    string `json:"from"`
	To      string `json:"to"`
	Message string `json:"message,omitempty"`
}

// record is a journal line: a plan added, or a transition.
type record struct {
	Add        *applier.Plan `json:"add,omitempty"`
	Transition *Transition   `json:"transition,omitempty"`
}

type entry struct {
	state, message string
}

// Store keeps plans and their actions' states. It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	plans   map[string]applier.Plan // as added; states live in states
	order   []string
	owner   map[string]string // action ID → plan ID
	states  map[string]entry  // "plan/<id>" and "action/<id>"
	history []Transition
	journal *os.File
}

var (
	_ actuators.StateStore = (*Store)(nil)
	_ applier.PlanLoader   = (*Store)(nil)
)

// New returns an empty store that lives in memory only.
func New() *Store {
	return &Store{plans: map[string]applier.Plan{}, owner: map[string]string{}, states: map[string]entry{}}
}

// Open returns a store journaled to path: what an earlier process recorded
// there is replayed, and every change is appended with one write, so a
// process killed at any point leaves a readable journal.
func Open(path string) (*Store, error) {
	s := New()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state journal: %w", err)
	}
	// Replay whole lines; a line cut short by a crash can only be the last
	// one, and is cut off so the next append starts on a line of its own.
	r := bufio.NewReaderSize(f, 1<<20)
	var good int64
	for {
		line, err := r.ReadBytes('\n')
		var rec record
		if err != nil || json.Unmarshal(line, &rec) != nil {
			if err != nil && !errors.Is(err, io.EOF) {
				_ = f.Close()
				return nil, fmt.Errorf("read state journal %s: %w", path, err)
			}
			break
		}
		good += int64(len(line))
		switch {
		case rec.Add != nil:
			s.add(*rec.Add)
		case rec.Transition != nil:
			s.apply(*rec.Transition)
		}
	}
	if err := f.Truncate(good); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("trim state journal %s: %w", path, err)
	}
	s.journal = f
	return s, nil
}

// Close closes the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	return err
}

func (s *Store) write(r record) error {
	if s.journal == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = s.journal.Write(append(b, '\n'))
	return err
}

// Add stores a plan with its actions' states ("" is PENDING; a plan's ""
// is PENDING too).
func (s *Store) Add(p applier.Plan) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.plans[p.ID]; dup {
		return fmt.Errorf("plan %s already stored", p.ID)
	}
	for _, a := range p.Actions {
		if _, dup := s.owner[a.ID]; dup {
			return fmt.Errorf("action %s already stored", a.ID)
		}
	}
	if err := s.write(record{Add: &p}); err != nil {
		return fmt.Errorf("journal plan %s: %w", p.ID, err)
	}
	s.add(p)
	return nil
}

func orPending(st string) string {
	if st == "" {
		return actuators.StatePending
	}
	return st
}

func (s *Store) add(p applier.Plan) {
	p.Actions = slices.Clone(p.Actions)
	s.plans[p.ID] = p
	s.order = append(s.order, p.ID)
	s.states["plan/"+p.ID] = entry{state: orPending(p.State)}
	for _, a := range p.Actions {
		s.owner[a.ID] = p.ID
		s.states["action/"+a.ID] = entry{state: orPending(a.State)}
	}
}

func (s *Store) apply(t Transition) {
	s.states[t.Kind+"/"+t.ID] = entry{state: t.To, message: t.Message}
	s.history = append(s.history, t)
}

func (s *Store) transition(t Transition) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.states[t.Kind+"/"+t.ID]
	if !ok {
		return fmt.Errorf("%s %s is not stored", t.Kind, t.ID)
	}
	if cur.state != t.From {
		return fmt.Errorf("%s %s is %s, not %s: %w", t.Kind, t.ID, cur.state, t.From, actuators.ErrStateConflict)
	}
	if err := s.write(record{Transition: &t}); err != nil {
		return fmt.Errorf("journal %s %s: %w", t.Kind, t.ID, err)
	}
	s.apply(t)
	return nil
}

// TransitionAction implements actuators.StateStore.
func (s *Store) TransitionAction(_ context.Context, id, from, to, message string) error {
	return s.transition(Transition{Kind: "action", ID: id, From: from, To: to, Message: message})
}

// TransitionPlan implements actuators.StateStore.
func (s *Store) TransitionPlan(_ context.Context, id, from, to, message string) error {
	return s.transition(Transition{Kind: "plan", ID: id, From: from, To: to, Message: message})
}

// UnfinishedPlans implements applier.PlanLoader: the plans PENDING, ONGOING
// or CANCELLING, in the order they were added.
func (s *Store) UnfinishedPlans(context.Context) ([]applier.Plan, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []applier.Plan
	for _, id := range s.order {
		switch s.states["plan/"+id].state {
		case actuators.StatePending, actuators.StateOngoing, actuators.StateCancelling:
			out = append(out, s.planLocked(id))
		}
	}
	return out, nil
}

// Plan returns a stored plan with its current states, and its status
// message.
func (s *Store) Plan(id string) (applier.Plan, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.plans[id]; !ok {
		return applier.Plan{}, "", errors.New("plan " + id + " is not stored")
	}
	return s.planLocked(id), s.states["plan/"+id].message, nil
}

func (s *Store) planLocked(id string) applier.Plan {
	p := s.plans[id]
	p.State = s.states["plan/"+id].state
	p.Actions = slices.Clone(p.Actions)
	for i := range p.Actions {
		p.Actions[i].State = s.states["action/"+p.Actions[i].ID].state
	}
	return p
}

// ActionState returns an action's state and status message.
func (s *Store) ActionState(id string) (state, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.states["action/"+id]
	return e.state, e.message
}

// History returns every transition recorded, in order (replayed ones
// included).
func (s *Store) History() []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history)
}
