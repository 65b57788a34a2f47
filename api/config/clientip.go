package config

import (
	"net/netip"
	"slices"
	"strings"
)

// LoopbackOnly reports whether the settings say that every request comes
// from this host for this host: DEBUG=1 (a development run) and every
// ALLOWED_HOSTS entry a loopback name (localhost, .localhost or a name under
// it, an address in 127.0.0.0/8, ::1; DEBUG's default list is all three).
//
// DEBUG=0 is never loopback-only, whatever ALLOWED_HOSTS says: a proxy on
// the host serving the world can name the backend by a loopback address
// (nginx's default Host is the upstream's, "127.0.0.1:3003" for
// proxy_pass http://127.0.0.1:3003), and neither LISTEN_ADDRESS nor
// TRUSTED_PROXIES tells a local proxy for the world from a developer's own
// requests.
func (c *Config) LoopbackOnly() bool {
	if !c.Debug {
		return false
	}
	for _, h := range c.AllowedHosts {
		if !loopbackHostPattern(h) {
			return false
		}
	}
	return true
}

func loopbackHostPattern(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if h == "localhost" || h == ".localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// ClientIPHeaderRisk is one line naming the risk of believing more than one
// forwarding header (CLIENT_IP_HEADER unset, the contract's Forwarded,
// X-Forwarded-For, X-Real-IP, or a list) outside a loopback-only run (see
// LoopbackOnly), and the fix; "" when there is none. A proxy writes one of
// the headers and passes the others on as the client sent them, so the
// client's own copy of an earlier one in the list speaks for it: behind a
// stock nginx (proxy_add_x_forwarded_for) a forged Forwarded: for= is the
// client's address in the throttles and the log.
func (c *Config) ClientIPHeaderRisk() string {
	if len(c.ClientIPHeaders) < 2 || len(c.TrustedProxies) == 0 || c.LoopbackOnly() {
		return ""
	}
	setting := c.ClientIPHeaderSetting()
	if slices.Equal(c.ClientIPHeaders, DefaultClientIPHeaders) {
		setting += " (the default when unset)"
	}
	return "CLIENT_IP_HEADER: " + setting +
		": isis believes the first of these present from TRUSTED_PROXIES, but a proxy writes one and passes the others through" +
		" (nginx's proxy_add_x_forwarded_for and Caddy's reverse_proxy pass a client's Forwarded on)," +
		" so any client can forge its address and escape throttling: set CLIENT_IP_HEADER=X-Forwarded-For" +
		" behind nginx, Caddy, Traefik or HAProxy's option forwardfor, X-Real-IP behind an nginx that sets only that," +
		" Forwarded behind a proxy that writes RFC 7239"
}
