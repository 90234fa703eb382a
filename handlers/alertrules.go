package handlers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/components"
	"auditdb/views/pages/settings"
)

// AlertRuleManager reads and changes an organization's detection rules and time zone.
type AlertRuleManager interface {
	List(ctx context.Context, org string) ([]models.AlertRule, error)
	Update(ctx context.Context, org string, in models.AlertRuleInput, by models.Actor) (*models.AlertRule, error)
	TimeZone(ctx context.Context, org string) (string, error)
	SetTimeZone(ctx context.Context, org, name string, by models.Actor) error
	AlertRetention(ctx context.Context, org string) (int, error)
	SetAlertRetention(ctx context.Context, org string, days int, by models.Actor) error
}

// AlertRulesPage shows Settings → Alert rules.
func AlertRulesPage(rules AlertRuleManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		return renderAlertRules(c, rules, fiber.StatusOK, nil, nil, flash(c))
	}
}

// UpdateAlertRule saves one rule's settings; bad input answers 400 with the form as typed
// and the refused field named next to it.
func UpdateAlertRule(rules AlertRuleManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		typed := settings.AlertRuleRow{Rule: c.Params("rule"), Enabled: c.FormValue("enabled") == "on",
			Threshold: c.FormValue("threshold"), WindowMinutes: c.FormValue("window"), Severity: c.FormValue("severity")}
		in, err := alertRuleInput(typed)
		if err == nil {
			_, err = rules.Update(c.UserContext(), v.OrgID, in, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			typed.Error = fe
			return renderAlertRules(c, rules, render.StatusOf(err), &typed, nil, "")
		} else if err != nil {
			return err
		}
		name := in.Rule
		if r, ok := models.DefaultAlertRule(in.Rule); ok {
			name = r.Name
		}
		return redirectDone(c, "/settings/alert-rules", doneAlertRuleSaved, name)
	}
}

// SetAlertRetention saves how many days resolved alerts are kept; a value outside 1–3650
// answers 400 with the error next to the field.
func SetAlertRetention(rules AlertRuleManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		typed := strings.TrimSpace(c.FormValue("retention_days"))
		days, err := strconv.Atoi(typed)
		if err != nil {
			err = models.Invalid("retention_days", fmt.Sprintf("must be a whole number of days from %d to %d",
				models.MinAlertRetentionDays, models.MaxAlertRetentionDays))
		} else {
			err = rules.SetAlertRetention(c.UserContext(), v.OrgID, days, ActorOf(c))
		}
		if fe := refusalOf(err); fe != nil {
			return renderAlertRules(c, rules, render.StatusOf(err), nil, nil, "", &retentionTyped{value: typed, err: fe})
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/settings/alert-rules", doneAlertRetentionSaved, typed)
	}
}

// retentionTyped is a refused alert retention as typed.
type retentionTyped struct {
	value string
	err   *components.FormError
}

// SetOrgTimeZone saves the organization's time zone; a name that is not an IANA time zone
// answers 400 with the error next to the field.
func SetOrgTimeZone(rules AlertRuleManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		tz := c.FormValue("time_zone")
		err := rules.SetTimeZone(c.UserContext(), v.OrgID, tz, ActorOf(c))
		if fe := refusalOf(err); fe != nil {
			return renderAlertRules(c, rules, render.StatusOf(err), nil, &timeZoneTyped{name: tz, err: fe}, "")
		} else if err != nil {
			return err
		}
		return redirectDone(c, "/settings/alert-rules", doneTimeZoneSaved, "")
	}
}

// alertRuleInput converts the typed row; it returns KindInvalid naming a number that is
// not one. The window is typed in minutes.
func alertRuleInput(r settings.AlertRuleRow) (models.AlertRuleInput, error) {
	in := models.AlertRuleInput{Rule: r.Rule, Enabled: r.Enabled, Severity: r.Severity}
	if _, ok := models.DefaultAlertRule(r.Rule); !ok {
		return in, models.Invalid("rule", "unknown rule "+strconv.Quote(r.Rule))
	}
	var err error
	if in.Threshold, err = strconv.Atoi(strings.TrimSpace(r.Threshold)); err != nil {
		return in, models.Invalid("threshold", "must be a whole number")
	}
	minutes, err := strconv.Atoi(strings.TrimSpace(r.WindowMinutes))
	if err != nil {
		return in, models.Invalid("window", "must be a whole number of minutes")
	}
	if minutes > int(models.MaxRuleWindow/time.Minute) || minutes <= 0 {
		return in, models.Invalid("window", "must be from 1 to 1440 minutes (24 hours)")
	}
	in.Window = time.Duration(minutes) * time.Minute
	return in, nil
}

// timeZoneTyped is a refused time zone as typed.
type timeZoneTyped struct {
	name string
	err  *components.FormError
}

// renderAlertRules renders the page; typed replaces its rule's row (with the error of the
// last save attempt), tz the time zone field.
func renderAlertRules(c *fiber.Ctx, rules AlertRuleManager, status int, typed *settings.AlertRuleRow, tz *timeZoneTyped, saved string, ret ...*retentionTyped) error {
	v := render.ViewerOf(c)
	list, err := rules.List(c.UserContext(), v.OrgID)
	if err != nil {
		return err
	}
	zone, err := rules.TimeZone(c.UserContext(), v.OrgID)
	if err != nil {
		return err
	}
	p := settings.AlertRulesProps{CSRF: v.Session.CSRFToken(), Severities: models.Severities, TimeZone: zone, Saved: saved}
	if tz != nil {
		p.TimeZone, p.TimeZoneError = tz.name, tz.err
	}
	days, err := rules.AlertRetention(c.UserContext(), v.OrgID)
	if err != nil {
		return err
	}
	p.AlertRetention = strconv.Itoa(days)
	if len(ret) > 0 && ret[0] != nil {
		p.AlertRetention, p.AlertRetentionError = ret[0].value, ret[0].err
	}
	var typedErr *components.FormError
	if typed != nil {
		typedErr = typed.Error // the refusal of the save that brought the form back
	}
	matched := false
	for _, r := range list {
		row := settings.AlertRuleRow{Rule: r.Rule, Name: r.Name, Description: r.Description, Enabled: r.Enabled,
			Threshold: strconv.Itoa(r.Threshold), WindowMinutes: windowMinutes(r.Window), Severity: r.Severity,
			Customized: r.Customized, Action: "/settings/alert-rules/" + r.Rule}
		if typed != nil && typed.Rule == r.Rule {
			row.Enabled, row.Threshold, row.WindowMinutes, row.Severity, row.Error = typed.Enabled, typed.Threshold, typed.WindowMinutes, typed.Severity, typedErr
			matched = true
		}
		p.Rules = append(p.Rules, row)
	}
	if typed != nil && !matched && len(p.Rules) > 0 {
		p.Rules[0].Error = typedErr // an unknown rule: say so at the top
	}
	return render.HTML(c, status, settings.AlertRules(v.Shell("Alert rules", "settings"), p))
}

// windowMinutes shows a window in minutes (rounded up: windows set here are whole minutes).
func windowMinutes(d time.Duration) string {
	return strconv.Itoa(int((d + time.Minute - 1) / time.Minute))
}
