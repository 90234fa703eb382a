package handlers

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	"auditdb/views/pages/errorlog"
)

// ErrorLogReader reads the error log within a scope.
type ErrorLogReader interface {
	List(ctx context.Context, scope models.ErrorScope, now time.Time) ([]models.ErrorGroup, error)
	Get(ctx context.Context, scope models.ErrorScope, key string, now time.Time) (models.ErrorGroup, []models.ErrorOccurrence, error)
}

// errorScope is what the viewer may read of the error log: everything for a superadmin,
// else the current organization's rows.
func errorScope(v *render.Viewer) models.ErrorScope {
	if v.User != nil && v.User.Superadmin {
		return models.ErrorScope{All: true}
	}
	return models.ErrorScope{Org: v.OrgID}
}

// errorRow shapes a fingerprint for the screen.
func errorRow(g models.ErrorGroup) errorlog.Row {
	r := errorlog.Row{Href: "/errors/" + g.Key, Kind: g.Kind, Component: g.Component, Operation: g.Operation,
		Title: g.Title, Org: g.Org, Count: g.Count, LastSeen: g.LastSeen, FirstSeen: g.FirstSeen}
	if len(g.Samples) > 0 {
		r.Sample = g.Samples[0]
	}
	for i, n := range g.Trend {
		r.Trend.Days = append(r.Trend.Days, errorlog.Day{Label: components.Date(g.TrendDays[i]), Count: n})
	}
	return r
}

// ListErrors shows the error log grouped by fingerprint, most recently seen first.
func ListErrors(log ErrorLogReader, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		scope := errorScope(v)
		groups, err := log.List(c.UserContext(), scope, now())
		if err != nil {
			return err
		}
		p := errorlog.ListProps{AllOrgs: scope.All}
		for _, g := range groups {
			p.Rows = append(p.Rows, errorRow(g))
		}
		return render.HTML(c, fiber.StatusOK, errorlog.List(v.Shell("Error log", "errors"), p))
	}
}

// ShowError shows one fingerprint: its trend, samples and newest occurrences. A key
// outside the viewer's scope is not found.
func ShowError(log ErrorLogReader, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		key := c.Params("key")
		if len(key) != 32 {
			return models.NotFound("error")
		}
		scope := errorScope(v)
		g, occ, err := log.Get(c.UserContext(), scope, key, now())
		if err != nil {
			return err
		}
		p := errorlog.DetailProps{AllOrgs: scope.All, Row: errorRow(g), Samples: g.Samples}
		for _, o := range occ {
			p.Occurrences = append(p.Occurrences, errorlog.Occurrence{When: o.At, Org: o.Org, Code: o.Code,
				Message: o.Message, RequestID: o.RequestID, UserID: o.UserID})
		}
		return render.HTML(c, fiber.StatusOK, errorlog.Detail(v.Shell("Error", "errors"), p))
	}
}
