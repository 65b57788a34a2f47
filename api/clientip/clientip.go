// Package clientip finds the client behind a reverse proxy: its address,
// the scheme and the host it used, from the forwarding headers a trusted
// proxy wrote (the settings are config's TRUSTED_PROXIES and
// CLIENT_IP_HEADER).
package clientip

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/isis-project/isis/api/config"
)

// Client is what the proxy headers say about the original request.
type Client struct {
	IP     netip.Addr
	Scheme string // "http" or "https"
	Host   string // as the client sent it, port included
}

// trustedProxies decides which peers may speak for the client.
type trustedProxies []netip.Prefix

func (t trustedProxies) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolver finds the client behind the reverse proxy, after Echo's
// IPExtractor design: only the forwarding headers named by CLIENT_IP_HEADER
// are believed, in their order (the first one present wins), and only from a
// peer in TRUSTED_PROXIES; every other forwarding header is ignored. Unset,
// that is the API contract's Forwarded, X-Forwarded-For, X-Real-IP; a
// deployment whose proxy writes one header names that one alone (isisctl's
// units: X-Forwarded-For), so a header the proxy passes through untouched
// cannot speak for the client.
//
//   - X-Forwarded-For: ExtractIPFromXFFHeader. The peer is appended to the
//     list, which is walked from the right; the first address that is not a
//     trusted proxy is the client. An entry that is not an address ends the
//     walk with the peer (the chain cannot be trusted past it); a list of
//     trusted proxies only gives its left-most address.
//   - X-Real-IP: ExtractIPFromRealIPHeader, the header's one address.
//   - Forwarded (RFC 7239): the for= values walked as X-Forwarded-For.
//   - none (an empty list): ExtractIPDirect, the peer address; no forwarded
//     scheme or host.
//
// Scheme and host: X-Forwarded-Proto and X-Forwarded-Host, unless Forwarded
// alone is believed: then proto= and host= of its last element that has
// them. A forwarded host stands for the Host header, and the server checks
// it against ALLOWED_HOSTS in its place (a 400 when not allowed, as Django
// does with USE_X_FORWARDED_HOST), so it is honoured only when allowed.
type Resolver struct {
	Trusted []netip.Prefix // TRUSTED_PROXIES
	Headers []string       // CLIENT_IP_HEADER: config.Header*, in order
}

// Resolve returns the client of r.
func (cr *Resolver) Resolve(r *http.Request) Client {
	trusted := trustedProxies(cr.Trusted)
	info := Client{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		info.Scheme = "https"
	}
	peer, ok := parseHostPortAddr(r.RemoteAddr)
	if !ok {
		return info
	}
	info.IP = peer
	if len(cr.Headers) == 0 || !trusted.contains(peer) {
		return info
	}
	// Scheme and host: Forwarded's proto= and host= when Forwarded alone is
	// believed; else X-Forwarded-Proto and X-Forwarded-Host (the contract's
	// rule, and Django's USE_X_FORWARDED_HOST / SECURE_PROXY_SSL_HEADER), so
	// that they never come from a header other than the ones the operator's
	// proxy writes.
	fwdOnly := len(cr.Headers) == 1 && cr.Headers[0] == config.HeaderForwarded
	var proto, host string
	if !fwdOnly {
		proto, host = header(r.Header, "X-Forwarded-Proto"), header(r.Header, "X-Forwarded-Host")
	}
	ipFound := false
	for _, h := range cr.Headers {
		switch h {
		case config.HeaderForwarded:
			fwd := r.Header["Forwarded"]
			if len(fwd) == 0 {
				continue
			}
			fors, p, ho := parseForwarded(fwd)
			if fwdOnly {
				proto, host = p, ho
			}
			if !ipFound && len(fors) > 0 {
				info.IP, ipFound = walkHops(peer, fors, trusted), true
			}
		case config.HeaderXRealIP:
			// Its last line: a proxy that adds one instead of replacing
			// the client's puts its own last.
			var v string
			if lines := r.Header["X-Real-Ip"]; len(lines) > 0 {
				v = strings.TrimSpace(lines[len(lines)-1])
			}
			if !ipFound && v != "" {
				info.IP, ipFound = walkHops(peer, []string{v}, trusted), true
			}
		default: // X-Forwarded-For
			if xff := r.Header["X-Forwarded-For"]; !ipFound && len(xff) > 0 {
				if hops := splitList(strings.Join(xff, ",")); len(hops) > 0 {
					info.IP, ipFound = walkHops(peer, hops, trusted), true
				}
			}
		}
	}
	switch strings.ToLower(firstListValue(proto)) {
	case "https":
		info.Scheme = "https"
	case "http":
		info.Scheme = "http"
	}
	if host = firstListValue(host); host != "" {
		info.Host = host
	}
	return info
}

// header is h.Get(key) for a key already in canonical form.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// walkHops walks hops right to left, the peer being the hop after the last,
// and returns the first address not in trusted. An entry that is not an
// address ("unknown", an obfuscated name, garbage) gives the peer: nothing
// past it can be checked. When every hop is trusted, the left-most wins.
func walkHops(peer netip.Addr, hops []string, trusted trustedProxies) netip.Addr {
	if len(hops) == 0 {
		return peer
	}
	var left netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseNodeAddr(hops[i])
		if !ok {
			return peer
		}
		if !trusted.contains(a) {
			return a
		}
		left = a
	}
	return left
}

// parseForwarded returns the for= values of every element of the Forwarded
// header lines, in order, and the proto= and host= of the last element that
// has them (the one the nearest trusted proxy wrote). Each line is read on
// its own, so a quote a client left open cannot swallow what a proxy added.
func parseForwarded(lines []string) (fors []string, proto, host string) {
	for _, line := range lines {
		for _, elem := range splitQuoted(line, ',') {
			for _, pair := range splitQuoted(elem, ';') {
				k, val, ok := strings.Cut(pair, "=")
				if !ok {
					continue
				}
				k = strings.ToLower(strings.TrimSpace(k))
				val = unquote(strings.TrimSpace(val))
				switch k {
				case "for":
					fors = append(fors, val)
				case "proto":
					proto = val
				case "host":
					host = val
				}
			}
		}
	}
	return fors, proto, host
}

// splitQuoted splits s on sep outside double-quoted strings. A quote left
// open makes the quoting meaningless: s is then split on every sep, so the
// parts after it (what a proxy appended) stay parts of their own.
func splitQuoted(s string, sep byte) []string {
	var out []string
	inQuote, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\' && inQuote:
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			if part := strings.TrimSpace(s[start:i]); part != "" {
				out = append(out, part)
			}
			start = i + 1
		}
	}
	if inQuote {
		out = out[:0]
		for _, part := range strings.Split(s, string(sep)) {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
		return out
	}
	if part := strings.TrimSpace(s[start:]); part != "" {
		out = append(out, part)
	}
	return out
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		if strings.Contains(s, `\`) {
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			s = b.String()
		}
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstListValue(s string) string {
	first, _, _ := strings.Cut(s, ",")
	return strings.TrimSpace(first)
}

// parseNodeAddr reads an address as proxies write it: "1.2.3.4",
// "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:443".
func parseNodeAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

func parseHostPortAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return parseNodeAddr(s)
}
