package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// ProxyConfig says where the rendered reverse-proxy configurations listen
// and which certificate they serve (the proxy: section of isisctl.yaml).
type ProxyConfig struct {
	// HTTP is nginx's plain-HTTP listener, which only redirects to HTTPS: a
	// port ("80", every address) or address:port ("127.0.0.1:8080"). Caddy's
	// redirect listener is its own global http_port option.
	HTTP string `yaml:"http"`
	// HTTPS is the TLS listener of both proxies: "443" (every address) or
	// address:port.
	HTTPS string `yaml:"https"`
	// Certificate and CertificateKey are PEM files. Empty: nginx reads
	// certbot's files under /etc/letsencrypt/live/<domain>/, Caddy obtains
	// its own certificate.
	Certificate    string `yaml:"certificate"`
	CertificateKey string `yaml:"certificate_key"`
}

// listen parses a listener setting: a port alone means every IPv4 and IPv6
// address.
func ParseListen(v, def string) (addr netip.Addr, port uint16, err error) {
	if v == "" {
		v = def
	}
	if n, err := strconv.ParseUint(v, 10, 16); err == nil && n > 0 {
		return netip.Addr{}, uint16(n), nil
	}
	ap, err := netip.ParseAddrPort(v)
	if err != nil || ap.Port() == 0 {
		return addr, 0, fmt.Errorf("%q is not a port or address:port like 443 or 127.0.0.1:8443", v)
	}
	return ap.Addr(), ap.Port(), nil
}

// validate names the first bad key of the proxy section.
func (p ProxyConfig) Validate() (key, msg string) {
	if _, _, err := ParseListen(p.HTTP, "80"); err != nil {
		return "proxy.http", err.Error()
	}
	if _, _, err := ParseListen(p.HTTPS, "443"); err != nil {
		return "proxy.https", err.Error()
	}
	if (p.Certificate == "") != (p.CertificateKey == "") {
		return "proxy.certificate", "certificate and certificate_key go together"
	}
	for k, f := range map[string]string{"proxy.certificate": p.Certificate, "proxy.certificate_key": p.CertificateKey} {
		if f != "" && (!filepath.IsAbs(f) || strings.ContainsAny(f, " \t\n\"'{};#$")) {
			return k, fmt.Sprintf("%q is not an absolute path without spaces, quotes or {};#$", f)
		}
	}
	return "", ""
}
