package apihttp

import (
	"github.com/isis-project/isis/api"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The access log is the hot path of every request, so its line is encoded
// here by hand, straight into a pooled buffer, in the shape slog's
// JSONHandler gives the other records: {"time":…,"level":…,"msg":"request",
// …}. slog cost a tenth of the CPU of /api/health/ under load (a stack walk
// for the source, an attribute slice, reflection-free but generic encoding);
// this costs none of that. The writer must copy p (bufio and files do).

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// accessLine is one request's log record: what the request state (id,
// path as sent, client, user, error) does not hold already.
type accessLine struct {
	time    time.Time
	level   slog.Level
	method  string
	route   string
	status  int
	latency time.Duration
	st      *reqState
	bytes   int64
}

func (l *accessLine) append(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = appendStamp(b, l.time)
	b = append(b, `","level":"`...)
	b = append(b, l.level.String()...)
	b = append(b, `","msg":"request","request_id":`...)
	b = api.AppendJSONString(b, l.st.id)
	b = append(b, `,"method":`...)
	b = api.AppendJSONString(b, l.method)
	b = append(b, `,"path":`...)
	b = api.AppendJSONString(b, l.st.path)
	b = append(b, `,"route":`...)
	b = api.AppendJSONString(b, l.route)
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
		b = api.AppendJSONString(b, l.st.logErr.Error())
	}
	if l.st.stack != "" {
		b = append(b, `,"stack":`...)
		b = api.AppendJSONString(b, l.st.stack)
	}
	return append(b, "}\n"...)
}

// stamp is one second's RFC 3339 text, split around where the fraction goes:
// "2006-01-02T15:04:05" and "Z" (or "+01:00").
type stamp struct {
	sec          int64
	loc          *time.Location
	prefix, zone string
}

var lastStamp atomic.Pointer[stamp]

// appendStamp appends t.Format(time.RFC3339Nano), the date and time formatted
// once a second rather than once a request (formatting them was a tenth of
// the access line's cost). The fraction is written here: nine digits, zeros
// trimmed from the right, none at all for a whole second.
func appendStamp(b []byte, t time.Time) []byte {
	sec := t.Unix()
	st := lastStamp.Load()
	if st == nil || st.sec != sec || st.loc != t.Location() {
		full := string(t.AppendFormat(make([]byte, 0, 32), time.RFC3339))
		// A year outside 0000-9999 changes the layout's width: not cached.
		if len(full) < 20 || full[19] != 'Z' && full[19] != '+' && full[19] != '-' {
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		st = &stamp{sec: sec, loc: t.Location(), prefix: full[:19], zone: full[19:]}
		lastStamp.Store(st)
	}
	b = append(b, st.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, st.zone...)
}
