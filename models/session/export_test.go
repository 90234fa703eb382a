package session

// Internals the external tests (package session_test) check directly.

// SessionReads returns how many sessions s has read from the database.
func (s *Store) SessionReads() int64 { return s.reads.Load() }

// SessionFlushes returns how many times s's session cache was emptied.
func (s *Store) SessionFlushes() uint64 { return s.gen.Load() }

// SetSessionAfterRead makes f run in Lookup between the database read and its caching.
func (s *Store) SetSessionAfterRead(f func()) { s.afterRead = f }

// SessionHeard returns the payload of the last notification s handled.
func (s *Store) SessionHeard() string { v, _ := s.heard.Load().(string); return v }
