package fastlane

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
)

// responseWriter buffers one answer; conn writes it after the handler
// returns, with an exact Content-Length.
type responseWriter struct {
	header http.Header // reused: handlers must not keep it
	status int
	body   []byte
}

func (w *responseWriter) reset() {
	clear(w.header)
	w.status = 0
	if cap(w.body) > 64<<10 { // keep small buffers only
		w.body = nil
	}
	w.body = w.body[:0]
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational codes are not
// sent; the first final code counts.
func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// bodyless reports whether an answer with this status has no body.
func bodyless(status int) bool {
	return status == http.StatusNoContent || status == http.StatusNotModified
}

// writeTo writes the buffered answer to bw: status line, the handler's
// header fields, Date, Content-Length, Content-Type if the handler set none
// (sniffed as net/http does), and the body.
func (w *responseWriter) writeTo(bw *bufio.Writer, date []byte) error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var line [64]byte
	b := append(line[:0], "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	_, _ = bw.Write(b)
	delete(w.header, "Content-Length")
	delete(w.header, "Transfer-Encoding")
	delete(w.header, "Date")
	if bodyless(w.status) {
		w.body = w.body[:0]
	} else if _, ok := w.header["Content-Type"]; !ok && len(w.body) > 0 {
		w.header["Content-Type"] = []string{http.DetectContentType(w.body)}
	}
	for k, vs := range w.header {
		for _, v := range vs {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") { // as net/http: no injected lines
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	_, _ = bw.Write(date)
	if !bodyless(w.status) {
		b = append(line[:0], "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(w.body)), 10)
		b = append(b, "\r\n"...)
		_, _ = bw.Write(b)
	}
	_, _ = bw.WriteString("\r\n")
	_, err := bw.Write(w.body)
	return err
}
