package apihttp

import (
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The access log is the hot path of every request, so its line is encoded
// here by hand, straight into a pooled buffer, in the shape slog's
// JSONHandler gives the other records: {"time":…,"level":…,"msg":"request",
// …}. slog cost a tenth of the CPU of /api/health/ under load (a stack walk
// for the source, an attribute slice, reflection-free but generic encoding);
// this costs none of that. The writer must copy p (bufio and files do).

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// accessLine is one request's log record.
type accessLine struct {
	time      time.Time
	level     slog.Level
	requestID string
	method    string
	path      string
	route     string
	status    int
	latency   time.Duration
	st        *reqState
	bytes     int64
}

func (l *accessLine) append(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = l.time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, l.level.String()...)
	b = append(b, `","msg":"request","request_id":`...)
	b = appendJSONString(b, l.requestID)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, l.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, l.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, float64(l.latency.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"client_ip":"`...)
	if ip := l.st.client.IP; ip.IsValid() {
		b = ip.AppendTo(b) // digits, dots, colons and hex: nothing to escape
	}
	b = append(b, `","bytes":`...)
	b = strconv.AppendInt(b, l.bytes, 10)
	if u := l.st.user; u != nil {
		b = append(b, `,"user_id":`...)
		b = strconv.AppendInt(b, u.ID, 10)
	}
	if l.st.logErr != nil {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, l.st.logErr.Error())
	}
	if l.st.stack != "" {
		b = append(b, `,"stack":`...)
		b = appendJSONString(b, l.st.stack)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string, as encoding/json writes it
// without HTML escaping: control characters escaped, each invalid UTF-8 byte
// as U+FFFD, U+2028 and U+2029 escaped (they end lines in JavaScript).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
