package handlers

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/models/ingest"
	"auditdb/views/pages/settings"
)

// DeadLetterLister lists an organization's dead letters.
type DeadLetterLister interface {
	List(ctx context.Context, org string, limit int) ([]ingest.DeadLetter, error)
}

// DeadLetterReplayer writes a dead letter's events again.
type DeadLetterReplayer interface {
	Replay(ctx context.Context, org string, id int64, by models.Actor) ([]ingest.Receipt, error)
}

// deadLetterPage is how many dead letters the page lists.
const deadLetterPage = 200

// maxPayloadShown bounds the kept events shown per letter.
const maxPayloadShown = 4000

// ListDeadLetters shows the organization's dead letters, newest first.
func ListDeadLetters(letters DeadLetterLister) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		list, err := letters.List(c.UserContext(), v.OrgID, deadLetterPage)
		if err != nil {
			return err
		}
		p := settings.DeadLettersProps{CSRF: v.Session.CSRFToken(), Flash: flash(c)}
		for i := range list {
			d := &list[i]
			payload := prettyJSON(d.OriginalEvent)
			if len(payload) > maxPayloadShown {
				payload = payload[:maxPayloadShown] + "\n…"
			}
			row := settings.DeadLetterRow{ID: d.ID, Received: d.Timestamp, Action: d.Action, Events: d.EventCount(),
				Reason: d.FailureReason, Failures: d.FailureCount, Payload: payload,
				ReplayAction: "/settings/dead-letters/" + strconv.FormatInt(d.ID, 10) + "/replay"}
			if d.ReplayedAt != nil {
				row.Replayed = d.ReplayedAt
			}
			p.Rows = append(p.Rows, row)
		}
		return render.HTML(c, fiber.StatusOK, settings.DeadLetters(v.Shell("Dead letters", "settings"), p))
	}
}

// ReplayDeadLetter writes a dead letter's events through the ingest path again.
func ReplayDeadLetter(replayer DeadLetterReplayer) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id, err := pathID(c, "dead letter")
		if err != nil {
			return err
		}
		if _, err := replayer.Replay(c.UserContext(), v.OrgID, id, ActorOf(c)); err != nil {
			return err
		}
		return redirectDone(c, "/settings/dead-letters", doneDeadLetterReplay, strconv.FormatInt(id, 10))
	}
}
