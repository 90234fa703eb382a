package gdpr_test

import (
	"testing"

	"auditdb/models/gdpr"
)

// The summary names each event left naming the subject with why, and how many more.
func TestMentionsLeftText(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  gdpr.Result
		want string
	}{
		{"none", gdpr.Result{}, ""},
		{"reasons", gdpr.Result{MentionsLeft: 5, MentionsLeftIDs: []int64{12, 40, 41},
			MentionsLeftWhy: []string{"older hashing scheme sha256-jcs-v1", "under legal hold Case 7",
				"the field name itself names the subject: details.user-3"}},
			"event 12 (older hashing scheme sha256-jcs-v1), event 40 (under legal hold Case 7), " +
				"event 41 (the field name itself names the subject: details.user-3) and 2 more"},
		{"a result recorded before the reasons", gdpr.Result{MentionsLeft: 1, MentionsLeftIDs: []int64{7}}, "event 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gdpr.MentionsLeftText(tc.res); got != tc.want {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}
