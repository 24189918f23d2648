package node

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"github.com/argent-kv/argent/internal/apiwire"
)

// rejectHTTP answers a connection over --max-connections: it reads the
// request header (so that closing does not reset the connection before the
// client reads the answer) and sends 503 overloaded.
func rejectHTTP(c net.Conn) {
	br := bufio.NewReaderSize(c, 4<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil || len(line) <= 2 { // the blank line ends the header
			break
		}
	}
	body, _ := json.Marshal(apiwire.ErrorBody{Error: apiwire.ErrorDetail{Code: apiwire.CodeOverloaded,
		Message: "argent: overloaded: the node has as many connections open as it takes; retry later"}})
	body = append(body, '\n')
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		http.StatusServiceUnavailable, http.StatusText(http.StatusServiceUnavailable), len(body), body)
}
