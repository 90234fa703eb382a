package handlers

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/pages/settings"
)

// ChannelManager creates, lists and switches an organization's notification channels.
type ChannelManager interface {
	Create(ctx context.Context, org string, in models.ChannelInput, by models.Actor) (*models.NotificationChannel, string, error)
	List(ctx context.Context, org string) ([]models.NotificationChannel, error)
	SetEnabled(ctx context.Context, org, id string, enabled bool, by models.Actor) error
	EmailEnabled() bool
}

// DeliveryLog queues test deliveries and reads each channel's recent deliveries.
type DeliveryLog interface {
	EnqueueTest(ctx context.Context, org, channelID string, by models.Actor) error
	RecentByChannel(ctx context.Context, org string, perChannel int) (map[string][]models.ChannelDelivery, error)
}

// deliveriesShown is how many deliveries each channel's log shows.
const deliveriesShown = 50

// NotificationDeps are what the notification settings use.
type NotificationDeps struct {
	Channels   ChannelManager
	Deliveries DeliveryLog
}

// ListChannels shows Settings → Notifications: the channels, their delivery logs and the
// form to add one.
func ListChannels(d NotificationDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderNotifications(c, d, fiber.StatusOK, settings.NotificationsProps{})
	}
}

// CreateChannel adds a channel; a webhook's signing secret is shown once. A refused
// channel (bad URL, private address, not an email, email without SMTP) shows the form
// again with the values typed and the reason.
func CreateChannel(d NotificationDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		in := models.ChannelInput{Name: c.FormValue("name"), Kind: c.FormValue("kind"), Target: c.FormValue("target"),
			MinSeverity: c.FormValue("min_severity")}
		ch, secret, err := d.Channels.Create(c.UserContext(), v.OrgID, in, ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderNotifications(c, d, render.StatusOf(err), settings.NotificationsProps{Error: fe,
				Form: settings.ChannelForm{Name: in.Name, Kind: in.Kind, Target: in.Target, MinSeverity: in.MinSeverity}})
		}
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return renderNotifications(c, d, fiber.StatusCreated, settings.NotificationsProps{NewSecret: secret, NewSecretChannel: ch.Name})
	}
}

// TestChannel queues a test delivery to a channel of the current organization.
func TestChannel(d NotificationDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		id := c.Params("id")
		if err := d.Deliveries.EnqueueTest(c.UserContext(), v.OrgID, id, ActorOf(c)); err != nil {
			return err
		}
		name := id
		if list, err := d.Channels.List(c.UserContext(), v.OrgID); err == nil {
			for _, ch := range list {
				if ch.ID == id {
					name = ch.Name
				}
			}
		}
		return renderNotifications(c, d, fiber.StatusAccepted, settings.NotificationsProps{TestQueued: name})
	}
}

// SetChannelEnabled turns a channel of the current organization on or off.
func SetChannelEnabled(d NotificationDeps) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		enabled, err := strconv.ParseBool(c.FormValue("enabled"))
		if err != nil {
			return models.Invalid("enabled", "must be true or false")
		}
		if err := d.Channels.SetEnabled(c.UserContext(), v.OrgID, c.Params("id"), enabled, ActorOf(c)); err != nil {
			return err
		}
		return render.Redirect(c, "/settings/notifications")
	}
}

func renderNotifications(c *fiber.Ctx, d NotificationDeps, status int, p settings.NotificationsProps) error {
	v := render.ViewerOf(c)
	ctx := c.UserContext()
	list, err := d.Channels.List(ctx, v.OrgID)
	if err != nil {
		return err
	}
	log, err := d.Deliveries.RecentByChannel(ctx, v.OrgID, deliveriesShown)
	if err != nil {
		return err
	}
	p.CSRF, p.EmailEnabled = v.Session.CSRFToken(), d.Channels.EmailEnabled()
	p.Form.Kinds, p.Form.Severities = []string{models.ChannelWebhook, models.ChannelEmail}, models.Severities
	if p.Form.Kind == "" {
		p.Form.Kind = models.ChannelWebhook
	}
	if p.Form.MinSeverity == "" {
		p.Form.MinSeverity = "HIGH"
	}
	for _, ch := range list {
		row := settings.ChannelRow{ID: ch.ID, Name: ch.Name, Kind: ch.Kind, Target: ch.Target, MinSeverity: ch.MinSeverity,
			Enabled: ch.Enabled, Created: ch.CreatedAt, CreatedBy: ch.CreatedBy,
			TestAction: "/settings/notifications/" + ch.ID + "/test", ToggleAction: "/settings/notifications/" + ch.ID + "/enabled"}
		for _, dl := range log[ch.ID] {
			r := settings.DeliveryRow{Created: dl.CreatedAt, Alert: dl.Title, Status: dl.Status,
				Attempts: dl.Attempts, Error: dl.LastError}
			if dl.AlertID != "" {
				r.AlertHref = "/alerts/" + dl.AlertID
			} else {
				r.Alert = "Test notification"
			}
			if dl.LastAttemptAt != nil {
				r.LastAttempt = dl.LastAttemptAt
			}
			if dl.Status == models.DeliveryPending && dl.Attempts > 0 {
				next := dl.NextAttemptAt
				r.NextAttempt = &next
			}
			if dl.ResponseStatus != 0 {
				r.Response = strconv.Itoa(dl.ResponseStatus)
			}
			row.Deliveries = append(row.Deliveries, r)
		}
		p.Channels = append(p.Channels, row)
	}
	return render.HTML(c, status, settings.Notifications(v.Shell("Notifications", "settings"), p))
}
