package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/isis-project/isis/api/config"
	"github.com/lib/pq"
	"github.com/spf13/cobra"
)

// deployProblems lists insecure or missing production settings, one line
// each, like Django's `check --deploy`.
func deployProblems(c *config.Config) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if c.Debug {
		add("DEBUG: is on; never run production with DEBUG=1 (it relaxes SECRET_KEY and ALLOWED_HOSTS)")
	}
	if c.SecretKeyGenerated {
		add("SECRET_KEY: not set; a random key is used, so every restart logs everybody out")
	} else if len(c.SecretKey) < 50 {
		add("SECRET_KEY: %d characters; use at least 50 random characters (openssl rand -base64 48)", len(c.SecretKey))
	}
	for _, h := range c.AllowedHosts {
		if h == "*" {
			add("ALLOWED_HOSTS: contains *; list the host names the API is served under")
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if u, err := url.Parse(o); err == nil && u.Scheme == "http" && !isLocalHost(u.Hostname()) {
			add("CORS_ALLOWED_ORIGINS: %s is not HTTPS", o)
		}
	}
	for _, p := range c.TrustedProxies {
		if p.Bits() == 0 && len(c.ClientIPHeaders) > 0 {
			add("TRUSTED_PROXIES: %s trusts every peer, so any client can forge its IP in %s (and escape throttling); list your proxy's address, or set CLIENT_IP_HEADER=none", p, c.ClientIPHeaderSetting())
		}
	}
	if risk := c.ClientIPHeaderRisk(); risk != "" {
		add("%s", risk)
	}
	if cfg, err := pq.NewConfig(c.DatabaseDSN); err == nil {
		if (cfg.SSLMode == "disable" || cfg.SSLMode == "allow" || cfg.SSLMode == "prefer") && !isPrivateHost(cfg.Host) {
			add("DATABASE_SSLMODE: %s to %s, which is not on a private network; use require or verify-full", cfg.SSLMode, cfg.Host)
		}
	}
	if c.S3Enabled() {
		if u, err := url.Parse(c.AWSEndpointURL); err == nil && u.Scheme == "http" && !isLocalHost(u.Hostname()) {
			add("AWS_S3_ENDPOINT_URL: %s is not HTTPS", c.AWSEndpointURL)
		}
		if c.AWSAccessKeyID == "" {
			add("AWS_ACCESS_KEY_ID: not set; credentials come from the instance role, if any")
		}
	} else {
		if c.MediaRoot == "" {
			add("MEDIA_ROOT: neither S3 (AWS_STORAGE_BUCKET_NAME) nor MEDIA_ROOT is set; avatar uploads are off")
		}
		if c.StaticRoot == "" {
			add("STATIC_ROOT: not set; collectstatic has nowhere to write")
		}
	}
	if c.PprofAddress != "" {
		add("PPROF_ADDRESS: profiling is on at %s; anyone on the host can read the process's memory profile, unset it when done", c.PprofAddress)
	}
	if c.MetricsAddress != "" {
		if host, _, err := net.SplitHostPort(c.MetricsAddress); err == nil && !isLocalHost(host) {
			add("METRICS_ADDRESS: %s is not loopback; anyone who reaches that port reads the routes, error counts and pool and cache numbers (no password): keep it on a private network only the scraper shares, or firewall it", c.MetricsAddress)
		}
	}
	if c.AccessTokenLifetime > time.Hour {
		add("ACCESS_TOKEN_LIFETIME: %s; access tokens cannot be revoked, keep them short (5m)", c.AccessTokenLifetime)
	}
	for name, r := range map[string]config.Rate{"THROTTLE_TOKEN": c.ThrottleToken, "THROTTLE_REGISTER": c.ThrottleRegister} {
		if r.N == 0 {
			add("%s: off; login and registration are open to brute force", name)
		}
	}
	if c.ThrottlePassword.N == 0 {
		add("THROTTLE_PASSWORD: off; one user's password changes can keep the password hasher busy")
	}
	return out
}

func isLocalHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

// isPrivateHost: loopback, private addresses, or a single-label name (a
// container on the same private network, such as postgres18).
func isPrivateHost(h string) bool {
	if strings.HasPrefix(h, "/") || !strings.Contains(h, ".") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsPrivate())
}

func newCheckCmd(stdout io.Writer) *cobra.Command {
	var deploy bool
	cmd := &cobra.Command{
		Use:     "check",
		Short:   "Check the settings; with --deploy, also list insecure or missing production settings",
		Example: "  isis check --deploy",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(os.Getenv)
			if err != nil {
				var ce *config.Error
				if errors.As(err, &ce) {
					fmt.Fprintf(stdout, "%s: %s\n", ce.Name, ce.Msg)
					return exitError{1, errors.New("1 problem found")}
				}
				return err
			}
			var problems []string
			if deploy {
				problems = deployProblems(cfg)
			}
			for _, p := range problems {
				fmt.Fprintln(stdout, p)
			}
			if len(problems) > 0 {
				return exitError{1, fmt.Errorf("%d problem(s) found", len(problems))}
			}
			fmt.Fprintln(stdout, "System check identified no issues.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&deploy, "deploy", false, "check production settings too")
	return cmd
}
