package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// SpecVersion is the CloudEvents specification version of the envelope.
const SpecVersion = "1.0"

// Event types carried on the events stream. The suffix is the version of the
// data schema; a consumer that meets a version it does not know must skip the
// event (and count it), never guess. Schemas are documented in docs/wire.md.
const (
	TypeInventory         = "io.ballast.inventory.v1"          // an agent's full view of its host and domains
	TypeInstanceLifecycle = "io.ballast.instance.lifecycle.v1" // created, deleted, migrated, state change
	TypeHostState         = "io.ballast.host.state.v1"         // enabled, disabled, maintenance
	TypeAlert             = "io.ballast.alert.v1"              // alert fired or resolved
	TypeAudit             = "io.ballast.audit.v1"              // audit state change
	TypeActionPlan        = "io.ballast.actionplan.v1"         // action plan state change
	TypeAction            = "io.ballast.action.v1"             // action state change
	TypeAuditLog          = "io.ballast.auditlog.v1"           // who did what through the API
)

// Event is a CloudEvents-style envelope (JSON structured mode). Subject names
// the resource the event is about (a host, an instance UUID); the Kafka bus
// keys messages by it so one resource's events stay in order.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// NewEvent builds an event with a fresh ID and the current time, encoding data
// as JSON.
func NewEvent(source, typ, subject string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event data: %w", typ, err)
	}
	e := Event{
		SpecVersion:     SpecVersion,
		ID:              uuid.NewString(),
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            time.Now().UTC(),
		DataContentType: "application/json",
		Data:            raw,
	}
	return e, e.Validate()
}

// Validate checks the required envelope attributes.
func (e *Event) Validate() error {
	var errs []error
	if e.SpecVersion != SpecVersion {
		errs = append(errs, fmt.Errorf("specversion %q: want %q", e.SpecVersion, SpecVersion))
	}
	if e.ID == "" {
		errs = append(errs, errors.New("id: must not be empty"))
	}
	if e.Source == "" {
		errs = append(errs, errors.New("source: must not be empty"))
	}
	if e.Type == "" {
		errs = append(errs, errors.New("type: must not be empty"))
	}
	if e.Time.IsZero() {
		errs = append(errs, errors.New("time: must be set"))
	}
	return errors.Join(errs...)
}

// Decode unmarshals the event data into v.
func (e *Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode %s event %s: %w", e.Type, e.ID, err)
	}
	return nil
}
