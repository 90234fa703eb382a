package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// poster sends the benchmark's POST requests over keep-alive HTTP/1.1 connections, one
// request per connection at a time, and reads from each answer only what the benchmark
// needs: the status, the body and the Server-Timing header. It is the load generator's
// client because it shares two CPUs with the server it measures: a general client spends
// most of its time outside the socket calls (pooling, building and parsing every header,
// a deadline per request), and that time was taken from the server.
type poster struct {
	addr  string // host:port
	conns chan *posterConn
	// heads holds, per path, the request line and headers of a POST up to the
	// Content-Length value; each request appends its length, a blank line and its body.
	heads map[string][]byte
}

type posterConn struct {
	c        net.Conn
	r        *bufio.Reader
	buf      []byte
	deadline time.Time
}

// newPoster returns a poster to base (http://host:port) for POSTs to paths, sending key as
// the bearer token and keeping up to maxConns idle connections.
func newPoster(base, key string, maxConns int, paths ...string) (*poster, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bench: %q is not an http://host:port address", base)
	}
	p := &poster{addr: u.Host, heads: map[string][]byte{}, conns: make(chan *posterConn, maxConns)}
	for _, path := range paths {
		p.heads[path] = []byte("POST " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + key +
			"\r\nContent-Type: application/json\r\nContent-Length: ")
	}
	return p, nil
}

// post sends body to path and returns the status, the answer's body and the time the
// server reports in Server-Timing.
func (p *poster) post(path string, body []byte) (status int, answer []byte, serverTime time.Duration, err error) {
	head, ok := p.heads[path]
	if !ok {
		return 0, nil, 0, fmt.Errorf("bench: the poster was not made for %s", path)
	}
	var c *posterConn
	select {
	case c = <-p.conns:
	default:
		nc, err := net.Dial("tcp", p.addr)
		if err != nil {
			return 0, nil, 0, err
		}
		c = &posterConn{c: nc, r: bufio.NewReaderSize(nc, 16<<10)}
	}
	keep := false
	defer func() {
		if !keep {
			c.c.Close()
			return
		}
		select {
		case p.conns <- c:
		default:
			c.c.Close()
		}
	}()
	// One deadline a minute instead of one per request: a stuck server still fails the run.
	if now := time.Now(); c.deadline.Sub(now) < time.Minute {
		c.deadline = now.Add(2 * time.Minute)
		if err := c.c.SetDeadline(c.deadline); err != nil {
			return 0, nil, 0, err
		}
	}
	c.buf = append(append(c.buf[:0], head...), strconv.Itoa(len(body))...)
	c.buf = append(append(c.buf, "\r\n\r\n"...), body...)
	if _, err := c.c.Write(c.buf); err != nil {
		return 0, nil, 0, err
	}
	status, length, serverTime, closing, err := readHead(c.r)
	if err != nil {
		return 0, nil, 0, err
	}
	answer = make([]byte, length) // the caller's: the connection goes back to the pool
	if _, err := io.ReadFull(c.r, answer); err != nil {
		return 0, nil, 0, err
	}
	keep = !closing
	return status, answer, serverTime, nil
}

// readHead reads a response's status line and headers. The server always answers with a
// Content-Length; a response without one is an error here.
func readHead(r *bufio.Reader) (status, length int, serverTime time.Duration, closing bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, 0, 0, false, err
	}
	// "HTTP/1.1 201 Created"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, 0, 0, false, fmt.Errorf("bench: not an HTTP response: %.60q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, 0, 0, false, fmt.Errorf("bench: bad status line %.60q", line)
	}
	length = -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return 0, 0, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, 0, false, fmt.Errorf("bench: bad header line %.60q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, 0, 0, false, fmt.Errorf("bench: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Server-Timing")):
			if ms, ok := strings.CutPrefix(string(value), "app;dur="); ok {
				f, _ := strconv.ParseFloat(ms, 64)
				serverTime = time.Duration(f * float64(time.Millisecond))
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, 0, 0, false, fmt.Errorf("bench: chunked answers are not expected")
		}
	}
	if length < 0 {
		return 0, 0, 0, false, fmt.Errorf("bench: an answer without Content-Length")
	}
	return status, length, serverTime, closing, nil
}

// close closes the idle connections.
func (p *poster) close() {
	for {
		select {
		case c := <-p.conns:
			c.c.Close()
		default:
			return
		}
	}
}
