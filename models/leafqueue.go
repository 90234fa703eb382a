package models

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// leafQueueInsert starts every INSERT into audit_leaf_queue, the queue the Merkle sequencer
// reads: one row per write and organization, the events' ids, timestamps and hashes in
// parallel arrays.
const leafQueueInsert = "INSERT INTO audit_leaf_queue (organization_id, audit_log_ids, event_timestamps, hashes) VALUES "

// LeafQueueSQL returns the INSERT that queues events (ids assigned) for the Merkle log, one
// row per organization in the order the organizations first appear, values written in: a
// simple query cannot carry parameters. Every value is checked to be of a shape that needs no
// quoting (an organization id, a hex hash; ids and times are formatted here), so no text
// from a request reaches the SQL unchecked. It returns a KindInvalid error for an
// organization id or hash of another shape.
func LeafQueueSQL(events []*Event) (string, error) {
	rows := queueRows(events)
	b := make([]byte, 0, 128+len(rows)*128)
	b = append(b, leafQueueInsert...)
	for i, r := range rows {
		if !orgIDPattern.MatchString(r.org) {
			return "", Invalid("organizationId", fmt.Sprintf("%q is not an organization id", r.org))
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, "('"...)
		b = append(b, r.org...)
		b = append(b, "', '{"...)
		for j, id := range r.ids {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, id, 10)
		}
		b = append(b, "}', '{"...)
		for j, t := range r.timestamps {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = t.UTC().AppendFormat(b, "2006-01-02 15:04:05.999999+00")
			b = append(b, '"')
		}
		b = append(b, "}', '{"...)
		for j, h := range r.hashes {
			if !isHexDigest(h) {
				return "", Invalid("hash", fmt.Sprintf("event %d has no hex SHA-256 hash", r.ids[j]))
			}
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, h...)
		}
		b = append(b, "}')"...)
	}
	return string(b), nil
}

// isHexDigest reports whether h is a lower-case hex SHA-256 digest.
func isHexDigest(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if !(h[i] >= '0' && h[i] <= '9' || h[i] >= 'a' && h[i] <= 'f') {
			return false
		}
	}
	return true
}

// queueRow is one audit_leaf_queue row: the events of one write of one organization, in
// parallel arrays.
type queueRow struct {
	org        string
	ids        []int64
	timestamps []time.Time
	hashes     []string
}

// queueRows groups events (ids assigned) into queue rows, one per organization, in the
// order the organizations first appear.
func queueRows(events []*Event) []queueRow {
	groups := byOrganization(events)
	rows := make([]queueRow, len(groups))
	for i, g := range groups {
		r := &rows[i]
		r.org = g[0].OrganizationID
		for _, ev := range g {
			r.ids, r.timestamps, r.hashes = append(r.ids, ev.ID), append(r.timestamps, ev.Timestamp.UTC()), append(r.hashes, ev.Hash)
		}
	}
	return rows
}

// byOrganization groups events by organization, keeping their order, the organizations in
// the order they first appear: the rows one write adds to the leaf queue and to
// detection's feed.
func byOrganization(events []*Event) [][]*Event {
	if len(events) > 0 && !slices.ContainsFunc(events, func(ev *Event) bool { return ev.OrganizationID != events[0].OrganizationID }) {
		return [][]*Event{events} // most writes: one organization's events, grouped as they are
	}
	var groups [][]*Event
	for _, ev := range events {
		i := len(groups) - 1
		if i < 0 || groups[i][0].OrganizationID != ev.OrganizationID {
			i = slices.IndexFunc(groups, func(g []*Event) bool { return g[0].OrganizationID == ev.OrganizationID })
			if i < 0 {
				groups = append(groups, nil)
				i = len(groups) - 1
			}
		}
		groups[i] = append(groups[i], ev)
	}
	return groups
}
