package models

import (
	"encoding/json"
	"fmt"

	"gorm.io/gorm"
)

// recordConfigChange writes a config_change_event row inside tx: which setting of org
// changed, from what to what, and who changed it. prev and next are marshalled to JSON
// (nil stays NULL).
func recordConfigChange(tx *gorm.DB, org, field string, prev, next any, by string) error {
	enc := func(v any) any {
		if v == nil {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		return string(b)
	}
	err := tx.Exec(`INSERT INTO config_change_event (organization_id, field, previous_value, new_value, changed_by)
		VALUES (?, ?, ?, ?, ?)`, org, field, enc(prev), enc(next), by).Error
	if err != nil {
		return fmt.Errorf("models: record config change: %w", err)
	}
	return nil
}
