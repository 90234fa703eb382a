package handlers

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	"auditdb/views/pages/dashboard"
	"auditdb/views/pages/notbuilt"
)

// EventStatter counts an organization's recent events.
type EventStatter interface {
	Stats(ctx context.Context, org string, now time.Time) (models.EventStats, error)
	EventReader
}

// InvitationLister lists an account's pending invitations.
type InvitationLister interface {
	Invitations(ctx context.Context, userID int64) ([]models.Invitation, error)
}

// Dashboard shows the account's pending invitations, and the current organization's real
// activity counts and latest events to viewers who may read events; others get the page
// without them.
func Dashboard(events EventStatter, invitations InvitationLister, now func() time.Time) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		props := dashboard.Props{OrgName: v.OrgName, ShowEvents: v.OrgID != "" && v.Allowed("audit.events", "read"),
			CSRF: v.Session.CSRFToken()}
		pending, err := invitations.Invitations(c.UserContext(), v.User.ID)
		if err != nil {
			return err
		}
		for _, inv := range pending {
			base := "/invitations/" + strconv.FormatInt(inv.ID, 10)
			props.Invitations = append(props.Invitations, dashboard.Invitation{OrgID: inv.OrgID, OrgName: inv.OrgName,
				Role: inv.Role, InvitedBy: inv.InvitedBy, Expires: components.DateTime(inv.ExpiresAt),
				AcceptAction: base + "/accept", DeclineAction: base + "/decline"})
		}
		if props.ShowEvents {
			t := now()
			st, err := events.Stats(c.UserContext(), v.OrgID, t)
			if err != nil {
				return err
			}
			props.Stats = []dashboard.Stat{
				{Label: "Events, last 24 hours", Value: strconv.FormatInt(st.Last24h, 10), TestID: "stat-24h"},
				{Label: "Failures, last 24 hours", Value: strconv.FormatInt(st.Failures24h, 10), TestID: "stat-failures-24h"},
				{Label: "Events, last 30 days", Value: strconv.FormatInt(st.Last30d, 10), TestID: "stat-30d"},
			}
			page, err := events.List(c.UserContext(), v.OrgID,
				models.EventFilter{From: t.Add(-DefaultEventRange), To: t.Add(futureSlack)}, nil, 10)
			if err != nil {
				return err
			}
			for i := range page.Events {
				props.Recent = append(props.Recent, EventRow(&page.Events[i]))
			}
		}
		return render.HTML(c, fiber.StatusOK, dashboard.Page(v.Shell("Dashboard", "dashboard"), props))
	}
}

// NotBuilt shows an area of the console that does not exist yet, saying so plainly.
func NotBuilt(area, title, description string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		return render.HTML(c, fiber.StatusOK, notbuilt.Page(v.Shell(title, area),
			notbuilt.Props{Area: title, Description: description}))
	}
}
