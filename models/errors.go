package models

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for the layers above: the web error handler maps each kind to
// one HTTP status and one page.
type Kind int

// The error vocabulary. KindInternal is everything unexpected; it is logged once and users
// see a plain message.
const (
	KindInternal Kind = iota
	KindInvalid
	KindNotFound
	KindForbidden
	KindConflict
	KindUnavailable
	KindUnauthorized
	KindTooMany
	KindTooLarge
)

// Error is an error with a kind, an optional field it concerns and a message fit to show
// to the user. Err, when set, is the underlying cause and is never shown.
type Error struct {
	Kind    Kind
	Field   string
	Message string
	Err     error
	// RetryAfter, when set on an unavailable or too-many error, says when a retry may
	// succeed.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	switch {
	case e.Field != "" && e.Err != nil:
		return fmt.Sprintf("%s: %s: %v", e.Field, e.Message, e.Err)
	case e.Field != "":
		return e.Field + ": " + e.Message
	case e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports bad input in the named field.
func Invalid(field, message string) error {
	return &Error{Kind: KindInvalid, Field: field, Message: message}
}

// NotFound reports that the named thing does not exist for the caller (or belongs to
// another organization: the two are indistinguishable on purpose).
func NotFound(what string) error {
	return &Error{Kind: KindNotFound, Message: what + " not found"}
}

// Forbidden reports an action the caller may not take.
func Forbidden(message string) error {
	return &Error{Kind: KindForbidden, Message: message}
}

// Conflict reports a write that clashes with existing state.
func Conflict(field, message string) error {
	return &Error{Kind: KindConflict, Field: field, Message: message}
}

// Unavailable reports a dependency that is down; the request may be retried.
func Unavailable(message string, cause error) error {
	return &Error{Kind: KindUnavailable, Message: message, Err: cause}
}

// Unauthorized reports missing or wrong credentials.
func Unauthorized(message string) error {
	return &Error{Kind: KindUnauthorized, Message: message}
}

// TooMany reports a rate limit that was hit.
func TooMany(message string) error {
	return &Error{Kind: KindTooMany, Message: message}
}

// TooLarge reports a request over a size or count limit.
func TooLarge(field, message string) error {
	return &Error{Kind: KindTooLarge, Field: field, Message: message}
}

// RetryAfterOf returns how long the caller should wait before retrying err, or 0 when err
// does not say.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ItemError places an error at one item of a batch (an event of a posted batch).
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }

func (e *ItemError) Unwrap() error { return e.Err }

// AtIndex wraps err as concerning item i of a batch; nil stays nil.
func AtIndex(i int, err error) error {
	if err == nil {
		return nil
	}
	return &ItemError{Index: i, Err: err}
}

// IndexOf returns the batch item err concerns, if it names one.
func IndexOf(err error) (int, bool) {
	var e *ItemError
	if errors.As(err, &e) {
		return e.Index, true
	}
	return 0, false
}

// KindOf returns the kind of err, KindInternal when it carries none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// FieldOf returns the field an error concerns, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// MessageOf returns the user-facing message of err; internal errors get a plain sentence
// and never leak their cause.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		if e.Field != "" {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	return "something went wrong on our side; it has been logged"
}

// MessageOfCLI returns a one-line message for the command line: the user-facing message of
// a classified error, the full error text otherwise.
func MessageOfCLI(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		return MessageOf(err)
	}
	return err.Error()
}
