package bundle

// SetMaxEvents lowers the events limit for a test and returns the restore function.
func SetMaxEvents(n int64) func() {
	old := maxEvents
	maxEvents = n
	return func() { maxEvents = old }
}
