package components

// Variant is the colour scheme shared by Badge and Alert.
type Variant string

// The variants a Badge or Alert can take. The zero value renders as Neutral.
const (
	Neutral Variant = "neutral"
	Success Variant = "success"
	Warning Variant = "warning"
	Danger  Variant = "danger"
	Info    Variant = "info"
)
