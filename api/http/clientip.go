package apihttp

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientInfo is what the proxy headers say about the original request.
type clientInfo struct {
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

// resolveClient applies the client-IP rules of the API contract: the
// Forwarded header (RFC 7239), then X-Forwarded-For, then X-Real-IP are read
// only when the direct peer is a trusted proxy; walking the hops from the
// right, the first untrusted address is the client.
func resolveClient(r *http.Request, trusted trustedProxies) clientInfo {
	info := clientInfo{Scheme: "http", Host: r.Host}
	if r.TLS != nil {
		info.Scheme = "https"
	}
	peer, ok := parseHostPortAddr(r.RemoteAddr)
	if !ok {
		return info
	}
	info.IP = peer
	if !trusted.contains(peer) {
		return info
	}
	var hops []string
	var proto, host string
	if fwd := r.Header["Forwarded"]; len(fwd) > 0 {
		hops, proto, host = parseForwarded(strings.Join(fwd, ","))
	}
	if len(hops) == 0 {
		if xff := r.Header["X-Forwarded-For"]; len(xff) > 0 {
			hops = splitList(strings.Join(xff, ","))
		}
	}
	if len(hops) == 0 {
		if xr := strings.TrimSpace(header(r.Header, "X-Real-Ip")); xr != "" {
			hops = []string{xr}
		}
	}
	info.IP = rightmostUntrusted(peer, hops, trusted)
	if proto == "" {
		proto = firstListValue(header(r.Header, "X-Forwarded-Proto"))
	}
	if host == "" {
		host = firstListValue(header(r.Header, "X-Forwarded-Host"))
	}
	switch strings.ToLower(proto) {
	case "https":
		info.Scheme = "https"
	case "http":
		info.Scheme = "http"
	}
	if host != "" && validHost(host) {
		info.Host = host
	}
	return info
}

// rightmostUntrusted walks hops right to left (the peer being the hop after
// the last) and returns the first address not in trusted. An entry that is not
// an address ("unknown", an obfuscated name, garbage) ends the walk: the last
// address that could be checked is returned, never a claim past it.
func rightmostUntrusted(peer netip.Addr, hops []string, trusted trustedProxies) netip.Addr {
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseNodeAddr(hops[i])
		if !ok {
			return last
		}
		last = a
		if !trusted.contains(a) {
			return a
		}
	}
	return last
}

// parseForwarded returns the for= values of every element of a Forwarded
// header, in order, and the proto= and host= of the last element that has them
// (the one the nearest trusted proxy wrote).
func parseForwarded(v string) (fors []string, proto, host string) {
	for _, elem := range splitQuoted(v, ',') {
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
	return fors, proto, host
}

// splitQuoted splits s on sep outside double-quoted strings.
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

// validHost reports whether h looks like a host[:port] (no spaces, slashes,
// user info or other URL parts).
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

// hostAllowed applies Django's ALLOWED_HOSTS rule to a Host value: the port
// is ignored, "*" allows all, ".example.com" matches example.com and its
// subdomains, everything else must match exactly (case-insensitively).
func hostAllowed(host string, allowed []string) bool {
	if !validHost(host) {
		return false
	}
	domain := strings.ToLower(stripPort(host))
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" {
		return false
	}
	for _, pat := range allowed {
		pat = strings.ToLower(pat)
		switch {
		case pat == "*":
			return true
		case strings.HasPrefix(pat, "."):
			if domain == pat[1:] || strings.HasSuffix(domain, pat) {
				return true
			}
		case domain == pat:
			return true
		}
	}
	return false
}

// stripPort removes a trailing :port, keeping IPv6 brackets as Django does.
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.LastIndex(host, "]"); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		return host[:i]
	}
	return host
}
