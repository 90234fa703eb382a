package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/pages/settings"
)

// PresetManager lists, reads, creates and edits presets.
type PresetManager interface {
	List(ctx context.Context, org string) ([]models.Preset, error)
	Get(ctx context.Context, org string, id int64) (*models.Preset, error)
	Create(ctx context.Context, org string, in models.PresetInput, by models.Actor) (*models.Preset, error)
	Update(ctx context.Context, org string, id int64, in models.PresetInput, by models.Actor) (*models.Preset, error)
}

// ListPresets shows the organization's presets and the global ones.
func ListPresets(presets PresetManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		list, err := presets.List(c.UserContext(), v.OrgID)
		if err != nil {
			return err
		}
		p := settings.PresetsProps{Flash: flash(c)}
		for i := range list {
			pr := &list[i]
			rules := pr.Rules()
			row := settings.PresetRow{ID: pr.ID, Name: pr.Name, Description: deref(pr.Description), Action: deref(pr.Action),
				Classification: deref(pr.DataClassification), Required: strings.Join(pr.RequiredFields, ", "), Global: pr.Global(),
				Rules: fmt.Sprintf("strings ≤ %d · depth ≤ %d · versions %s", rules.MaxStringLength, rules.MaxCustomFieldDepth,
					strings.Join(rules.AllowedEventVersions, ", "))}
			if mayEditPreset(v, pr) {
				row.EditHref = "/settings/presets/" + strconv.FormatInt(pr.ID, 10)
			}
			p.Rows = append(p.Rows, row)
		}
		return render.HTML(c, fiber.StatusOK, settings.Presets(v.Shell("Presets", "settings"), p))
	}
}

// NewPreset shows the empty preset form with the default rules.
func NewPreset() fiber.Handler {
	return func(c *fiber.Ctx) error {
		r := models.DefaultRules
		return renderPresetForm(c, fiber.StatusOK, settings.PresetForm{Title: "New preset", Action: "/settings/presets",
			MaxStringLength: strconv.Itoa(r.MaxStringLength), MaxCustomFieldDepth: strconv.Itoa(r.MaxCustomFieldDepth),
			AllowedEventVersions: strings.Join(r.AllowedEventVersions, ", ")})
	}
}

// CreatePreset saves a new preset of the organization.
func CreatePreset(presets PresetManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		form := presetForm(c)
		form.Title, form.Action = "New preset", "/settings/presets"
		in, err := presetInput(form)
		if err == nil {
			_, err = presets.Create(c.UserContext(), v.OrgID, in, ActorOf(c))
		}
		return afterPresetSave(c, form, in.Name, err)
	}
}

// EditPreset shows the form for one preset: the organization's own, or a global one to a
// superadmin.
func EditPreset(presets PresetManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		pr, err := editablePreset(c, presets, v)
		if err != nil {
			return err
		}
		rules := pr.Rules()
		form := settings.PresetForm{Title: "Edit preset " + pr.Name, Action: "/settings/presets/" + strconv.FormatInt(pr.ID, 10),
			Global: pr.Global(), Name: pr.Name, Description: deref(pr.Description), EventAction: deref(pr.Action),
			DataClassification: deref(pr.DataClassification), Required: map[string]bool{},
			MaxStringLength: strconv.Itoa(rules.MaxStringLength), MaxCustomFieldDepth: strconv.Itoa(rules.MaxCustomFieldDepth),
			AllowedEventVersions: strings.Join(rules.AllowedEventVersions, ", ")}
		for _, f := range append(append([]string{}, pr.RequiredFields...), pr.Validation.RequiredFields...) {
			form.Required[f] = true
		}
		if len(pr.DefaultValues) > 0 {
			form.DefaultValues = prettyJSON(mustJSON(pr.DefaultValues))
		}
		return renderPresetForm(c, fiber.StatusOK, form)
	}
}

// UpdatePreset saves an edited preset.
func UpdatePreset(presets PresetManager) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v := render.ViewerOf(c)
		pr, err := editablePreset(c, presets, v)
		if err != nil {
			return err
		}
		form := presetForm(c)
		form.Title, form.Action, form.Global = "Edit preset "+pr.Name, "/settings/presets/"+strconv.FormatInt(pr.ID, 10), pr.Global()
		in, err := presetInput(form)
		if err == nil {
			_, err = presets.Update(c.UserContext(), pr.OrganizationID, pr.ID, in, ActorOf(c))
		}
		return afterPresetSave(c, form, in.Name, err)
	}
}

func afterPresetSave(c *fiber.Ctx, form settings.PresetForm, name string, err error) error {
	if fe := refusalOf(err); fe != nil {
		form.Error = fe
		return renderPresetForm(c, render.StatusOf(err), form)
	}
	if err != nil {
		return err
	}
	return redirectDone(c, "/settings/presets", donePresetSaved, name)
}

func editablePreset(c *fiber.Ctx, presets PresetManager, v *render.Viewer) (*models.Preset, error) {
	id, err := pathID(c, "preset")
	if err != nil {
		return nil, err
	}
	pr, err := presets.Get(c.UserContext(), v.OrgID, id)
	if err != nil {
		return nil, err
	}
	if !mayEditPreset(v, pr) {
		return nil, models.Forbidden("global presets are edited by superadmins; create one of the same name for this organization instead")
	}
	return pr, nil
}

func mayEditPreset(v *render.Viewer, p *models.Preset) bool {
	return !p.Global() || v.User.Superadmin
}

// presetForm reads the posted form as typed.
func presetForm(c *fiber.Ctx) settings.PresetForm {
	f := settings.PresetForm{Name: c.FormValue("name"), Description: c.FormValue("description"),
		EventAction: c.FormValue("action"), DataClassification: c.FormValue("data_classification"),
		DefaultValues: c.FormValue("default_values"), MaxStringLength: c.FormValue("max_string_length"),
		MaxCustomFieldDepth: c.FormValue("max_custom_field_depth"), AllowedEventVersions: c.FormValue("allowed_event_versions"),
		Required: map[string]bool{}}
	for _, r := range c.Request().PostArgs().PeekMulti("required_fields") {
		f.Required[string(r)] = true
	}
	return f
}

// presetInput converts the form; it returns KindInvalid for a number that is not one.
func presetInput(f settings.PresetForm) (models.PresetInput, error) {
	in := models.PresetInput{Name: f.Name, Description: f.Description, Action: f.EventAction,
		DataClassification: f.DataClassification, DefaultValues: f.DefaultValues}
	for _, name := range models.PresetFields {
		if f.Required[name] {
			in.RequiredFields = append(in.RequiredFields, name)
		}
	}
	for name := range f.Required {
		if !slices.Contains(models.PresetFields, name) {
			in.RequiredFields = append(in.RequiredFields, name) // refused by validation, by name
		}
	}
	var err error
	if in.MaxStringLength, err = strconv.Atoi(strings.TrimSpace(f.MaxStringLength)); err != nil {
		return in, models.Invalid("max_string_length", "must be a whole number")
	}
	if in.MaxCustomFieldDepth, err = strconv.Atoi(strings.TrimSpace(f.MaxCustomFieldDepth)); err != nil {
		return in, models.Invalid("max_custom_field_depth", "must be a whole number")
	}
	for _, v := range strings.Split(f.AllowedEventVersions, ",") {
		if v = strings.TrimSpace(v); v != "" {
			in.AllowedEventVersions = append(in.AllowedEventVersions, v)
		}
	}
	return in, nil
}

func renderPresetForm(c *fiber.Ctx, status int, f settings.PresetForm) error {
	v := render.ViewerOf(c)
	f.CSRF, f.Fields, f.Classifications = v.Session.CSRFToken(), models.PresetFields, models.DataClassifications
	if f.Required == nil {
		f.Required = map[string]bool{}
	}
	return render.HTML(c, status, settings.PresetEdit(v.Shell(f.Title, "settings"), f))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
