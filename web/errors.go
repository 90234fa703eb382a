package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"auditdb/handlers/render"
	"auditdb/models"
	"auditdb/views/layout"
	errorviews "auditdb/views/pages/errors"
)

// retryAfter is the Retry-After header for err: what the error says, else 5 s for 503 and
// 1 s for 429, else nothing.
func retryAfter(err error, status int) string {
	d := models.RetryAfterOf(err)
	switch {
	case d > 0:
		return strconv.Itoa(int(math.Ceil(d.Seconds())))
	case status == fiber.StatusServiceUnavailable:
		return "5"
	case status == fiber.StatusTooManyRequests:
		return "1"
	}
	return ""
}

// answersJSON reports whether an error answer takes the API's JSON shape: the path is under
// /api in any case (routing ignores case), or the request's head could not be read at all
// (a 408 or 431 before the request line: nothing tells an API client from a browser, and
// JSON is legible to both).
func answersJSON(c *fiber.Ctx, status int) bool {
	if isAPIPath(c.Path()) {
		return true
	}
	headUnread := len(c.Request().Header.Host()) == 0
	return headUnread && (status == fiber.StatusRequestTimeout || status == fiber.StatusRequestHeaderFieldsTooLarge)
}

// errorHandler answers every error in one place: JSON under /api/, an error fragment for
// htmx, else an error page (inside the console layout when signed in). Internal errors are
// logged once; users see a plain message.
func errorHandler(log *slog.Logger, errs ErrorRecorder) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		if models.IsQueryTimeout(err) {
			err = models.QueryTooSlow(err)
		}
		status := render.StatusOf(err)
		if status >= fiber.StatusInternalServerError {
			recordServerError(c, errs, err, status)
		}
		props := errorviews.Props{Status: status, Title: http.StatusText(status)}
		var fe *fiber.Error
		switch {
		case errors.As(err, &fe):
			props.Message = fe.Message
			switch status {
			case fiber.StatusNotFound:
				props.Message = "There is nothing at this address."
			case fiber.StatusRequestEntityTooLarge:
				props.Message = "The request body is over the 10 MB limit."
			}
		case status == fiber.StatusInternalServerError:
			if pe, ok := errors.AsType[*panicError](err); ok {
				log.Error("request panicked", "method", c.Method(), "path", c.Path(), "panic", pe.value, "stack", pe.stack)
			} else {
				log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
			}
			props.Message = models.MessageOf(err)
		default:
			var me *models.Error
			errors.As(err, &me)
			props.Message, props.Field = me.Message, me.Field
			if status == fiber.StatusServiceUnavailable {
				log.Warn("dependency unavailable", "path", c.Path(), "err", err)
			}
		}
		if retry := retryAfter(err, status); retry != "" {
			c.Set(fiber.HeaderRetryAfter, retry)
		}
		if answersJSON(c, status) {
			body := fiber.Map{"status": status, "message": props.Message}
			if props.Field != "" {
				body["field"] = props.Field
			}
			if i, ok := models.IndexOf(err); ok {
				body["index"] = i
			}
			return c.Status(status).JSON(fiber.Map{"error": body})
		}
		if render.IsHTMX(c) {
			c.Set("HX-Retarget", "#flash")
			c.Set("HX-Reswap", "innerHTML")
			return render.HTML(c, status, errorviews.Fragment(props))
		}
		var shell *layout.Shell
		if v := render.ViewerOf(c); v != nil {
			s := v.Shell(props.Title, "")
			shell = &s
		}
		return render.HTML(c, status, errorviews.Page(shell, props))
	}
}

// ErrorRecorder takes the server's own errors for the error log; Record never blocks
// and never fails (see models.ErrorWriter).
type ErrorRecorder interface {
	Record(ctx context.Context, rec models.ErrorRecord)
}

// maxStack bounds the stack trace a panic's record keeps.
const maxStack = 4000

// recordServerError hands a 5xx answer (or a panic) to the error log: the route pattern,
// method, status, request id and the principal's organization and id. Never the body,
// the query string or a header.
func recordServerError(c *fiber.Ctx, errs ErrorRecorder, err error, status int) {
	if errs == nil {
		return
	}
	rec := models.ErrorRecord{Kind: models.ErrorKindHTTP, Component: "web", Message: err.Error(), Status: status,
		Method: c.Method(), RequestID: string(c.Response().Header.Peek(fiber.HeaderXRequestID))}
	route := c.Route().Path
	if route == "" || route == "/" && c.Path() != "/" {
		route = "(unmatched)"
	}
	rec.Operation = c.Method() + " " + route
	if p, ok := render.PrincipalOf(c); ok {
		rec.Org, rec.UserID = p.Org, p.Subject.Name
	}
	if pe, ok := errors.AsType[*panicError](err); ok {
		rec.Kind = models.ErrorKindPanic
		stack := pe.stack
		if len(stack) > maxStack {
			stack = stack[:maxStack]
		}
		rec.Context = map[string]any{"stack": stack}
	}
	errs.Record(c.UserContext(), rec)
}

// panicError is a panic recovered while answering a request.
type panicError struct {
	value any
	stack string
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// recoverPanics turns a panic in a later handler into a panicError, which the error
// handler records and answers with a 500.
func recoverPanics(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: string(debug.Stack())}
		}
	}()
	return c.Next()
}
