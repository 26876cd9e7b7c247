package models

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse: a head readResponse parses itself, net/http's
// ReadResponse reads as the same status, connection close, body (or a
// failure of it) and the same bytes left for the next answer; the rest
// ReadResponse reads itself.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nDate: Fri, 04 Dec 2026 19:00:00 GMT\r\nContent-Length: 2\r\n\r\n{}next",
		"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}\n{}\r\n0\r\n\r\nnext",
		"HTTP/1.1 404 Not Found\r\nContent-Length: 31\r\nConnection: close\r\n\r\n{\"error\":\"model 'x' not found\"}",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
		"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length:  3 \r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTrailer: X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\nx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := bufio.NewReaderSize(bytes.NewReader(data), 16<<10)
		if _, err := fast.Peek(1); err != nil {
			return
		}
		got, ok := parseHead(fast)
		if !ok {
			return // ReadResponse's
		}
		std := bufio.NewReaderSize(bytes.NewReader(data), 16<<10)
		want, err := http.ReadResponse(std, nil)
		if err != nil {
			t.Fatalf("%q: parsed, ReadResponse refuses it: %v", data, err)
		}
		if got.StatusCode != want.StatusCode || got.Status != want.Status || got.Close != want.Close || got.ContentLength != want.ContentLength {
			t.Fatalf("%q: parsed %d %q close %v length %d; ReadResponse %d %q close %v length %d", data,
				got.StatusCode, got.Status, got.Close, got.ContentLength, want.StatusCode, want.Status, want.Close, want.ContentLength)
		}
		gb, gerr := io.ReadAll(got.Body)
		wb, werr := io.ReadAll(want.Body)
		if (gerr == nil) != (werr == nil) || !bytes.Equal(gb, wb) {
			t.Fatalf("%q: body %q (%v), ReadResponse's %q (%v)", data, gb, gerr, wb, werr)
		}
		if gerr != nil {
			return // the connection is not reused
		}
		if gr, wr := rest(fast), rest(std); gr != wr {
			t.Fatalf("%q: next bytes %q, after ReadResponse %q", data, gr, wr)
		}
	})
}

func rest(br *bufio.Reader) string {
	b, _ := io.ReadAll(br)
	return string(b)
}
