package render

import (
	"net/netip"
	"strconv"

	"github.com/isis-project/isis/ops/config"
)

// proxyData is what templates/nginx.conf.tmpl and Caddyfile.tmpl render.
type proxyData struct {
	Domain string
	// The two backend slots (A serves, B is the standby) and the name of
	// nginx's upstream block.
	Upstream, Standby, Name string
	// nginx: the arguments of its listen directives, the port suffix of
	// its redirect, and the certificate files.
	HTTPListen, HTTPSListen     []string
	RedirectPort                string // ":8443", or "" for 443
	Certificate, CertificateKey string
	// Caddy: the site address, its bind address ("" for all) and its tls
	// directive's files ("" for automatic HTTPS).
	CaddySite, CaddyBind, CaddyTLS string
}

func newProxyData(c *config.Config, upstream string) (proxyData, error) {
	d := proxyData{Domain: c.Domain, Upstream: upstream, CaddySite: c.Domain,
		Certificate:    "/etc/letsencrypt/live/" + c.Domain + "/fullchain.pem",
		CertificateKey: "/etc/letsencrypt/live/" + c.Domain + "/privkey.pem"}
	if key, msg := c.Proxy.Validate(); key != "" {
		return d, &config.Error{File: c.File, Key: key, Msg: msg}
	}
	listen := func(v, def string) []string {
		addr, port, _ := config.ParseListen(v, def)
		p := strconv.Itoa(int(port))
		if !addr.IsValid() {
			return []string{p, "[::]:" + p}
		}
		return []string{netip.AddrPortFrom(addr, port).String()}
	}
	d.HTTPListen, d.HTTPSListen = listen(c.Proxy.HTTP, "80"), listen(c.Proxy.HTTPS, "443")
	if addr, port, _ := config.ParseListen(c.Proxy.HTTPS, "443"); port != 443 || addr.IsValid() {
		if port != 443 {
			d.RedirectPort = ":" + strconv.Itoa(int(port))
			d.CaddySite += d.RedirectPort
		}
		if addr.IsValid() {
			d.CaddyBind = addr.String()
		}
	}
	if c.Proxy.Certificate != "" {
		d.Certificate, d.CertificateKey = c.Proxy.Certificate, c.Proxy.CertificateKey
		d.CaddyTLS = c.Proxy.Certificate + " " + c.Proxy.CertificateKey
	}
	return d, nil
}
