package models

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
)

// readResponse reads an engine's answer head from br. The common head (an
// HTTP/1.1 status line with a final status, a Content-Length or a chunked
// body, header lines of plain bytes) is parsed where it lies in br's
// buffer, with none of net/http's header map; any other (a head not yet
// whole in the buffer, 1xx, 204 or 304, a body to the connection's close,
// trailers announced, a folded or odd line) is read by net/http's
// ReadResponse from the same untouched bytes. FuzzReadResponse holds the
// two to the same status, body, connection close and next bytes.
//
// The Response has StatusCode, Status, Proto, ContentLength, Close and
// Body; no Header (the upstream client reads none).
func readResponse(br *bufio.Reader) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil { // the engine's answer, or why none came
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // as ReadResponse says it
		}
		return nil, err
	}
	if resp, ok := parseHead(br); ok {
		return resp, nil
	}
	return http.ReadResponse(br, nil)
}

var crlf2 = []byte("\r\n\r\n")

// parseHead parses the head buffered in br and consumes it, or reports
// false, having consumed nothing.
func parseHead(br *bufio.Reader) (*http.Response, bool) {
	buf, _ := br.Peek(br.Buffered())
	end := bytes.Index(buf, crlf2)
	if end < 0 {
		return nil, false
	}
	head := buf[:end+2] // each line with its CRLF
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	// "HTTP/1.1 200" and an optional " reason"
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return nil, false
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified || !plainValue(line[12:]) {
		return nil, false
	}
	resp := &http.Response{Status: string(line[9:]), StatusCode: code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: -1}
	chunked, sized := false, false
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !token(name) || !plainValue(value) {
			return nil, false
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			n, err := strconv.ParseUint(string(value), 10, 63) // as net/http reads it
			if sized || err != nil {
				return nil, false
			}
			resp.ContentLength, sized = int64(n), true
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			if chunked || string(value) != "chunked" {
				return nil, false
			}
			chunked = true
		case bytes.EqualFold(name, []byte("connection")):
			closing := bytes.EqualFold(value, []byte("close"))
			if !closing && !bytes.EqualFold(value, []byte("keep-alive")) {
				return nil, false // a list of tokens: net/http reads it
			}
			resp.Close = resp.Close || closing
		case bytes.EqualFold(name, []byte("trailer")):
			return nil, false
		}
	}
	if chunked == sized { // both, or neither (a body to the close)
		return nil, false
	}
	_, _ = br.Discard(end + 4)
	if chunked {
		resp.TransferEncoding = []string{"chunked"}
		resp.Body = &chunkedBody{br: br, r: httputil.NewChunkedReader(br)}
	} else {
		resp.Body = &sizedBody{br: br, n: resp.ContentLength}
	}
	return resp, true
}

// token: a header name's bytes (RFC 9110's tchar), at least one.
func token(b []byte) bool {
	for _, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return len(b) > 0
}

// plainValue: printable ASCII and tabs only (a header value, a reason).
func plainValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// sizedBody is a body of n bytes; the connection's end before them is
// io.ErrUnexpectedEOF.
type sizedBody struct {
	br *bufio.Reader
	n  int64
}

func (b *sizedBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	if errors.Is(err, io.EOF) && b.n > 0 {
		err = io.ErrUnexpectedEOF
	} else if err == nil && b.n == 0 {
		err = io.EOF
	}
	return n, err
}

func (b *sizedBody) Close() error { return nil }

// chunkedBody is a chunked body; its end is the last chunk and the
// trailer section after it (empty from Ollama), so that the connection is
// left at the next answer.
type chunkedBody struct {
	br   *bufio.Reader
	r    io.Reader
	done bool
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		if terr := b.trailer(); terr != nil {
			return n, terr
		}
		b.done = true
	}
	return n, err
}

// trailer reads the trailer section after the last chunk, as net/http
// does: an empty line (Ollama's), or header lines whose end is already in
// sight in the buffer, read and dropped.
func (b *chunkedBody) trailer() error {
	buf, err := b.br.Peek(2)
	switch {
	case string(buf) == "\r\n":
		_, _ = b.br.Discard(2)
		return nil
	case len(buf) < 2:
		return io.ErrUnexpectedEOF
	case err != nil:
		return err
	}
	for n := 4; ; n++ { // Peek fails once the buffer is full
		buf, err := b.br.Peek(n)
		if bytes.HasSuffix(buf, crlf2) {
			break
		}
		if err != nil {
			return errors.New("trailer too long after a chunked body")
		}
	}
	_, err = textproto.NewReader(b.br).ReadMIMEHeader()
	return err
}

func (b *chunkedBody) Close() error { return nil }
