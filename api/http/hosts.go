package apihttp

import "strings"

// splitDomainPort is Django's split_domain_port: host must be a lower-cased
// name of letters, digits, dots and hyphens, or a bracketed IPv6 address,
// optionally followed by a numeric port; anything else gives "" (an invalid
// host, a 400). A trailing dot is dropped from a name.
func splitDomainPort(host string) (domain, port string) {
	host = strings.ToLower(host)
	rest := host
	if strings.HasPrefix(host, "[") {
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return "", ""
		}
		inner := host[1:end]
		colon := strings.IndexByte(inner, ':')
		if colon < 0 || colon == len(inner)-1 || !allBytes(inner[:colon], "0123456789abcdef") ||
			!allBytes(inner[colon+1:], "0123456789abcdef.:") {
			return "", ""
		}
		domain, rest = host[:end+1], host[end+1:]
	} else {
		end := strings.IndexByte(host, ':')
		if end < 0 {
			end = len(host)
		}
		domain, rest = host[:end], host[end:]
		if domain == "" || !allBytes(domain, "abcdefghijklmnopqrstuvwxyz0123456789.-") {
			return "", ""
		}
		domain = strings.TrimSuffix(domain, ".")
	}
	if rest != "" {
		port = rest[1:] // rest starts with ':' here, or the host was bad
		if rest[0] != ':' || port == "" || !allBytes(port, "0123456789") {
			return "", ""
		}
	}
	return domain, port
}

func allBytes(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// validHost reports whether h is a host[:port] Django accepts.
func validHost(h string) bool {
	d, _ := splitDomainPort(h)
	return d != ""
}

// hostAllowed applies Django's ALLOWED_HOSTS rule (get_host, validate_host)
// to a Host value: the host must be valid (see splitDomainPort), then "*"
// allows all, ".example.com" matches example.com and its subdomains, anything
// else must match exactly (case-insensitively). The port is not compared.
func hostAllowed(host string, allowed []string) bool {
	domain, _ := splitDomainPort(host)
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
