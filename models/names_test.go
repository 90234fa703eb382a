package models_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"auditdb/models"
	"auditdb/models/pgtest"
)

// Names people give to shared things refuse invisible format characters (Unicode Cf:
// zero-width, BOM, bidi controls), as saved views and report names do: an organization, an
// API key, a notification channel and a legal hold.
func TestNamesRefuseFormatCharacters(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	org := pgtest.NewOrg(t, "cfnames")
	trail := testTrail(t)
	by := models.Actor{UserID: 1, Email: "owner@example.test"}
	for _, name := range []string{"\ufeff", "\u202eevil", "ops\u200bkey", "a\u2066b"} {
		checks := map[string]error{}
		_, checks["organization"] = models.NewOrgStore(db).Create(ctx, pgtest.OrgID(t, "cf"), name)
		_, _, checks["api key"] = models.NewAPIKeyStore(db, trail).Create(ctx, org, name, models.ScopeIngest, by)
		_, _, checks["channel"] = models.NewChannelStore(db, trail, nil, nil).Create(ctx, org,
			models.ChannelInput{Name: name, Kind: "webhook", Target: "https://hooks.example.test/x", MinSeverity: "LOW"}, by)
		in := models.LegalHoldInput{Name: name, Reason: "case 1", Scope: "principal", PrincipalID: "p"}
		checks["legal hold"] = in.Validate()
		for what, err := range checks {
			var me *models.Error
			if !errors.As(err, &me) || me.Kind != models.KindInvalid || me.Field != "name" || !strings.Contains(me.Message, "U+") {
				t.Errorf("%s named %q: %v, want an invalid name naming the character", what, name, err)
			}
		}
	}
}
