// Package config loads the isis settings from the environment, with the
// Django-compatible names of the backend isis replaces. Every setting can also
// be read from a file named by NAME_FILE (a Podman or Docker secret).
//
// Load validates everything at once and reports the first problem as one line
// naming the setting; secret values never appear in errors or in String.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Config is every setting of the isis server.
type Config struct {
	Debug     bool
	SecretKey string
	// SecretKeyGenerated is true when DEBUG=1 and no SECRET_KEY was given.
	SecretKeyGenerated bool

	AllowedHosts       []string
	CORSAllowedOrigins []string
	TrustedProxies     []netip.Prefix
	// ClientIPHeaders are the forwarding headers believed from a trusted
	// proxy (CLIENT_IP_HEADER), in order, the first present winning; empty
	// ("none") for the peer address alone.
	ClientIPHeaders []string

	ListenAddress string // LISTEN_ADDRESS, default all interfaces
	Port          int

	// DatabaseDSN is a lib/pq connection string built from DATABASE_URL or
	// the DATABASE_* parts. It may hold a password: never log it.
	DatabaseDSN      string
	DatabaseMaxConns int
	StatementTimeout time.Duration

	LogDir   string
	LogLevel string
	// PprofAddress serves net/http/pprof on a loopback address when set
	// (PPROF_ADDRESS, host:port); empty means off.
	PprofAddress string
	// MetricsAddress serves Prometheus metrics at /metrics on a listener of
	// its own when set (METRICS_ADDRESS, host:port, any interface: a
	// scraper often runs on another host or container); empty means off.
	MetricsAddress string
	// MemoryTargetMiB is the soft memory target of isis serve
	// (MEMORY_TARGET_MIB, default 30; 0 leaves the runtime alone).
	MemoryTargetMiB int
	StaticRoot      string
	MediaRoot       string
	MediaURL        string

	MaxBodyBytes   int64
	MaxUploadBytes int64
	// MaxImagePixels bounds an uploaded image's width×height (a small file
	// may declare a huge bitmap); UploadMinRate is the slowest an upload may
	// arrive, in bytes a second (its read deadline follows from it).
	MaxImagePixels int64
	UploadMinRate  int64
	// ShutdownDelay is the lame duck of a shutdown: the probes answer 503
	// and the API keeps serving for at most this long (SHUTDOWN_DELAY, 0
	// to 30s, default 0); ShutdownTimeout bounds the drain of in-flight
	// requests after it (SHUTDOWN_TIMEOUT, 1s to 10m, default 25s).
	ShutdownDelay, ShutdownTimeout time.Duration

	// ThrottlePassword limits POST /api/users/me/password/ per user;
	// ThrottleMaxKeys bounds the clients (or users) each throttle remembers.
	ThrottlePassword Rate
	ThrottleMaxKeys  int
	// ThrottleStore is where the throttles count: "postgres" (shared by
	// every replica on the database) or "memory" (per process).
	ThrottleStore string

	// Auth.
	AccessTokenLifetime    time.Duration
	RefreshTokenLifetime   time.Duration
	RotateRefreshTokens    bool
	BlacklistAfterRotation bool
	ThrottleToken          Rate
	ThrottleRegister       Rate
	ThrottleGoogle         Rate
	GoogleClientID         string
	GoogleJWKSURL          string
	GoogleIssuers          []string

	// Media on S3/R2.
	AWSAccessKeyID       string
	AWSSecretAccessKey   string
	AWSBucket            string
	AWSEndpointURL       string
	AWSRegion            string
	AWSAddressingStyle   string // "auto", "path" or "virtual"
	AWSQuerystringAuth   bool
	AWSQuerystringExpire time.Duration
	AWSCustomDomain      string
}

// Error is a problem with one setting.
type Error struct {
	Name string
	Msg  string
}

func (e *Error) Error() string { return "setting " + e.Name + ": " + e.Msg }

// Rate is a throttle rate such as "20/min".
type Rate struct {
	N      int
	Period time.Duration
}

func (r Rate) String() string {
	if r.N == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Period)
}

// ParseRate reads DRF's rate syntax: "N/s", "N/sec", "N/m", "N/min",
// "N/h", "N/hour", "N/d", "N/day" (only the first letter counts, as in DRF);
// "" or "off" disables the throttle.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "off" || s == "none" {
		return Rate{}, nil
	}
	num, per, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 || per == "" {
		return Rate{}, fmt.Errorf("%q is not a rate like 20/min", s)
	}
	var d time.Duration
	switch per[0] {
	case 's':
		d = time.Second
	case 'm':
		d = time.Minute
	case 'h':
		d = time.Hour
	case 'd':
		d = 24 * time.Hour
	default:
		return Rate{}, fmt.Errorf("%q is not a rate like 20/min", s)
	}
	return Rate{N: n, Period: d}, nil
}

// Getenv looks up a variable; os.Getenv in production.
type Getenv func(string) string

// env reads settings and remembers the first error.
type env struct {
	get Getenv
	err error
}

func (e *env) fail(name, format string, args ...any) {
	if e.err == nil {
		e.err = &Error{Name: name, Msg: fmt.Sprintf(format, args...)}
	}
}

// str returns NAME, or the content of the file named by NAME_FILE.
func (e *env) str(name, def string) string {
	v, file := e.get(name), e.get(name+"_FILE")
	switch {
	case v != "" && file != "":
		e.fail(name, "both %s and %s_FILE are set; set only one", name, name)
		return def
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			e.fail(name+"_FILE", "cannot read %s: %v", file, err)
			return def
		}
		return strings.TrimRight(string(b), "\r\n")
	case v != "":
		return v
	}
	return def
}

func (e *env) boolean(name string, def bool) bool {
	v := strings.ToLower(strings.TrimSpace(e.str(name, "")))
	switch v {
	case "":
		return def
	case "1", "true", "yes", "on", "t", "y":
		return true
	case "0", "false", "no", "off", "f", "n":
		return false
	}
	e.fail(name, "%q is not a boolean (use 1 or 0)", v)
	return def
}

func (e *env) integer(name string, def, min, max int64) int64 {
	v := strings.TrimSpace(e.str(name, ""))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		e.fail(name, "%q is not a whole number from %d to %d", v, min, max)
		return def
	}
	return n
}

// duration accepts Go durations ("5m", "24h") or a number of seconds.
func (e *env) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.str(name, ""))
	if v == "" {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, "%q is not a duration like 300 (seconds), 5m or 24h", v)
		return def
	}
	return d
}

// between accepts a Go duration ("1s", "500ms", or "0") from min to max.
func (e *env) between(name string, def, min, max time.Duration, example string) time.Duration {
	v := strings.TrimSpace(e.str(name, ""))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		e.fail(name, "%q is not a duration between %s and %s (e.g. %s)", v, min, max, example)
		return def
	}
	return d
}

func (e *env) rate(name, def string) Rate {
	r, err := ParseRate(e.str(name, def))
	if err != nil {
		e.fail(name, "%v", err)
	}
	return r
}

// list splits a comma-separated value, dropping blanks.
func (e *env) list(name string, def []string) []string {
	v := e.str(name, "")
	if strings.TrimSpace(v) == "" {
		return def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// DefaultMemoryTargetMiB is MEMORY_TARGET_MIB unset: with it, isis serve
// stays under 40 MiB resident at a thousand keep-alive connections (about 22
// MiB live there, the binary's pages aside); at tens of connections the
// live heap is a few MiB and the target never bites (docs/performance.md).
const DefaultMemoryTargetMiB = 30

// DefaultTrustedProxies are loopback and the private ranges a local reverse
// proxy or a container bridge uses.
var DefaultTrustedProxies = []string{
	"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
}

// Values of CLIENT_IP_HEADER.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderXRealIP       = "X-Real-IP"
	HeaderForwarded     = "Forwarded"
	HeaderNone          = "none"
)

// DefaultClientIPHeaders is what CLIENT_IP_HEADER means when unset, the API
// contract's order: Forwarded (RFC 7239), then X-Forwarded-For, then
// X-Real-IP, the first one present. A deployment whose proxy sets one header
// names it (isisctl's units set X-Forwarded-For, the header its rendered
// nginx and Caddy configurations write), and then no other speaks for the
// client.
var DefaultClientIPHeaders = []string{HeaderForwarded, HeaderXForwardedFor, HeaderXRealIP}

// clientIPHeaders reads CLIENT_IP_HEADER: the forwarding headers believed
// from a trusted proxy, in order (the first present wins), or none.
func clientIPHeaders(e *env) []string {
	raw := e.str("CLIENT_IP_HEADER", "")
	if strings.TrimSpace(raw) == "" {
		return DefaultClientIPHeaders
	}
	if strings.EqualFold(strings.TrimSpace(raw), HeaderNone) {
		return nil
	}
	var out []string
	for _, v := range strings.Split(raw, ",") {
		v = strings.TrimSpace(v)
		known := ""
		for _, h := range []string{HeaderXForwardedFor, HeaderXRealIP, HeaderForwarded} {
			if strings.EqualFold(v, h) {
				known = h
			}
		}
		if known == "" {
			e.fail("CLIENT_IP_HEADER", "%q is not one of X-Forwarded-For, X-Real-IP, Forwarded (or a list of them in order), or none", v)
			return DefaultClientIPHeaders
		}
		if slices.Contains(out, known) {
			e.fail("CLIENT_IP_HEADER", "%s is listed twice", known)
			return DefaultClientIPHeaders
		}
		out = append(out, known)
	}
	return out
}

// ClientIPHeaderSetting is CLIENT_IP_HEADER as it would be written.
func (c *Config) ClientIPHeaderSetting() string {
	if len(c.ClientIPHeaders) == 0 {
		return HeaderNone
	}
	return strings.Join(c.ClientIPHeaders, ", ")
}

// Load reads and validates every setting.
func Load(get Getenv) (*Config, error) {
	e := &env{get: get}
	c := &Config{}
	c.Debug = e.boolean("DEBUG", false)
	c.SecretKey = e.str("SECRET_KEY", "")
	c.AllowedHosts = e.list("ALLOWED_HOSTS", nil)
	c.CORSAllowedOrigins = e.list("CORS_ALLOWED_ORIGINS", nil)
	proxies := e.list("TRUSTED_PROXIES", DefaultTrustedProxies)
	c.ClientIPHeaders = clientIPHeaders(e)
	c.ListenAddress = strings.TrimSpace(e.str("LISTEN_ADDRESS", ""))
	c.Port = int(e.integer("PORT", 3003, 1, 65535))
	c.DatabaseMaxConns = int(e.integer("DATABASE_MAX_CONNS", 32, 1, 1000))
	c.StatementTimeout = e.duration("DATABASE_STATEMENT_TIMEOUT", 10*time.Second)
	c.LogDir = e.str("LOG_DIR", "")
	c.LogLevel = strings.ToLower(e.str("LOG_LEVEL", "info"))
	c.PprofAddress = strings.TrimSpace(e.str("PPROF_ADDRESS", ""))
	c.MetricsAddress = strings.TrimSpace(e.str("METRICS_ADDRESS", ""))
	c.MemoryTargetMiB = int(e.integer("MEMORY_TARGET_MIB", DefaultMemoryTargetMiB, 0, 1<<20))
	c.StaticRoot = e.str("STATIC_ROOT", "")
	c.MediaRoot = e.str("MEDIA_ROOT", "")
	c.MediaURL = e.str("MEDIA_URL", "/media/")
	c.MaxBodyBytes = e.integer("MAX_BODY_BYTES", 1<<20, 1, 1<<30)
	c.MaxUploadBytes = e.integer("MAX_UPLOAD_BYTES", 5<<20, 1, 1<<30)
	c.MaxImagePixels = e.integer("MAX_IMAGE_PIXELS", 4096*4096, 1, 1<<32)
	c.UploadMinRate = e.integer("UPLOAD_MIN_RATE", 50<<10, 1, 1<<30)
	c.ShutdownDelay = e.between("SHUTDOWN_DELAY", 0, 0, 30*time.Second, "1s")
	c.ShutdownTimeout = e.between("SHUTDOWN_TIMEOUT", 25*time.Second, time.Second, 10*time.Minute, "25s")
	c.ThrottlePassword = e.rate("THROTTLE_PASSWORD", "5/min")
	c.ThrottleMaxKeys = int(e.integer("THROTTLE_MAX_KEYS", 50000, 16, 10_000_000))
	c.ThrottleStore = strings.ToLower(strings.TrimSpace(e.str("THROTTLE_STORE", "postgres")))

	c.AccessTokenLifetime = e.duration("ACCESS_TOKEN_LIFETIME", 5*time.Minute)
	c.RefreshTokenLifetime = e.duration("REFRESH_TOKEN_LIFETIME", 24*time.Hour)
	c.RotateRefreshTokens = e.boolean("ROTATE_REFRESH_TOKENS", false)
	c.BlacklistAfterRotation = e.boolean("BLACKLIST_AFTER_ROTATION", true)
	c.ThrottleToken = e.rate("THROTTLE_TOKEN", "20/min")
	c.ThrottleRegister = e.rate("THROTTLE_REGISTER", "10/hour")
	c.ThrottleGoogle = e.rate("THROTTLE_GOOGLE", "20/min")
	c.GoogleClientID = strings.TrimSpace(e.str("GOOGLE_CLIENT_ID", ""))
	c.GoogleJWKSURL = e.str("GOOGLE_JWKS_URL", "https://www.googleapis.com/oauth2/v3/certs")
	c.GoogleIssuers = e.list("GOOGLE_ISSUERS", []string{"https://accounts.google.com", "accounts.google.com"})

	c.AWSAccessKeyID = e.str("AWS_ACCESS_KEY_ID", "")
	c.AWSSecretAccessKey = e.str("AWS_SECRET_ACCESS_KEY", "")
	c.AWSBucket = e.str("AWS_STORAGE_BUCKET_NAME", "")
	c.AWSEndpointURL = e.str("AWS_S3_ENDPOINT_URL", "")
	c.AWSRegion = e.str("AWS_S3_REGION_NAME", "")
	c.AWSAddressingStyle = strings.ToLower(e.str("AWS_S3_ADDRESSING_STYLE", "auto"))
	c.AWSQuerystringAuth = e.boolean("AWS_QUERYSTRING_AUTH", true)
	c.AWSQuerystringExpire = e.duration("AWS_QUERYSTRING_EXPIRE", time.Hour)
	c.AWSCustomDomain = e.str("AWS_S3_CUSTOM_DOMAIN", "")

	c.DatabaseDSN = databaseDSN(e)
	if e.err != nil {
		return nil, e.err
	}
	if err := c.validate(proxies); err != nil {
		return nil, err
	}
	return c, nil
}

// databaseDSN builds a key=value connection string from DATABASE_URL or the
// DATABASE_* parts.
func databaseDSN(e *env) string {
	if u := e.str("DATABASE_URL", ""); u != "" {
		for _, part := range []string{"DATABASE_HOST", "DATABASE_NAME", "DATABASE_USER"} {
			if e.get(part) != "" || e.get(part+"_FILE") != "" {
				e.fail("DATABASE_URL", "set either DATABASE_URL or %s, not both", part)
				return ""
			}
		}
		if _, err := pq.NewConfig(u); err != nil {
			e.fail("DATABASE_URL", "not a valid PostgreSQL URL or connection string")
			return ""
		}
		// The URL may leave the password to DATABASE_PASSWORD[_FILE] (a
		// mounted secret), so that the URL itself can sit in a ConfigMap.
		password := e.str("DATABASE_PASSWORD", "")
		if password == "" {
			return u
		}
		both := func() string {
			e.fail("DATABASE_URL", "holds a password and DATABASE_PASSWORD is set too; set only one")
			return ""
		}
		if pu, err := url.Parse(u); err == nil && (pu.Scheme == "postgres" || pu.Scheme == "postgresql") {
			if _, ok := pu.User.Password(); ok {
				return both()
			}
			pu.User = url.UserPassword(pu.User.Username(), password)
			return pu.String()
		}
		if strings.HasPrefix(u, "password=") || strings.Contains(u, " password=") {
			return both()
		}
		return u + " password=" + quoteDSN(password)
	}
	host := e.str("DATABASE_HOST", "localhost")
	port := e.integer("DATABASE_PORT", 5432, 1, 65535)
	name := e.str("DATABASE_NAME", "isis")
	user := e.str("DATABASE_USER", "isis")
	password := e.str("DATABASE_PASSWORD", "")
	sslmode := e.str("DATABASE_SSLMODE", "prefer")
	parts := []string{
		"host=" + quoteDSN(host), "port=" + strconv.FormatInt(port, 10),
		"dbname=" + quoteDSN(name), "user=" + quoteDSN(user), "sslmode=" + quoteDSN(sslmode),
	}
	if password != "" {
		parts = append(parts, "password="+quoteDSN(password))
	}
	dsn := strings.Join(parts, " ")
	if e.err == nil {
		if _, err := pq.NewConfig(dsn); err != nil {
			e.fail("DATABASE_SSLMODE", "%q is not a valid sslmode (disable, prefer, require, verify-full, …)", sslmode)
		}
	}
	return dsn
}

// quoteDSN quotes a key=value connection string value.
func quoteDSN(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func (c *Config) validate(proxies []string) error {
	if c.SecretKey == "" {
		if !c.Debug {
			return &Error{"SECRET_KEY", "required when DEBUG=0 (generate one with: openssl rand -base64 48)"}
		}
		var b [32]byte
		_, _ = rand.Read(b[:])
		c.SecretKey, c.SecretKeyGenerated = base64.RawURLEncoding.EncodeToString(b[:]), true
	} else if !c.Debug {
		if err := checkSecretKey(c.SecretKey); err != "" {
			return &Error{"SECRET_KEY", err}
		}
	}
	if len(c.AllowedHosts) == 0 {
		if !c.Debug {
			return &Error{"ALLOWED_HOSTS", "required when DEBUG=0 (comma-separated host names, e.g. api.example.com)"}
		}
		c.AllowedHosts = []string{".localhost", "127.0.0.1", "[::1]"}
	}
	for _, h := range c.AllowedHosts {
		if strings.ContainsAny(h, " /@?#") {
			return &Error{"ALLOWED_HOSTS", fmt.Sprintf("%q is not a host name", h)}
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return &Error{"CORS_ALLOWED_ORIGINS", fmt.Sprintf("%q is not an origin like https://app.example.com", o)}
		}
	}
	for i, o := range c.CORSAllowedOrigins {
		c.CORSAllowedOrigins[i] = strings.TrimSuffix(o, "/")
	}
	for _, p := range proxies {
		pfx, err := parsePrefix(p)
		if err != nil {
			return &Error{"TRUSTED_PROXIES", fmt.Sprintf("%q is not an IP address or CIDR", p)}
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	if c.ListenAddress != "" && net.ParseIP(strings.Trim(c.ListenAddress, "[]")) == nil && c.ListenAddress != "localhost" {
		return &Error{"LISTEN_ADDRESS", fmt.Sprintf("%q is not an IP address", c.ListenAddress)}
	}
	if c.PprofAddress != "" {
		host, port, err := net.SplitHostPort(c.PprofAddress)
		ip, ipErr := netip.ParseAddr(host)
		if err != nil || port == "" || (host != "localhost" && (ipErr != nil || !ip.IsLoopback())) {
			return &Error{"PPROF_ADDRESS", fmt.Sprintf("%q is not a loopback host:port (profiles are for operators on the host only)", c.PprofAddress)}
		}
	}
	if c.MetricsAddress != "" {
		host, port, err := net.SplitHostPort(c.MetricsAddress)
		n, perr := strconv.Atoi(port)
		_, ipErr := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil || perr != nil || n < 1 || n > 65535 || (host != "" && host != "localhost" && ipErr != nil) {
			return &Error{"METRICS_ADDRESS", fmt.Sprintf("%q is not a host:port such as 127.0.0.1:9100 or 0.0.0.0:9100 (an IP address or localhost, and a port from 1 to 65535)", c.MetricsAddress)}
		}
		if c.MetricsAddress == c.PprofAddress {
			return &Error{"METRICS_ADDRESS", fmt.Sprintf("%q is PPROF_ADDRESS too; give each its own port", c.MetricsAddress)}
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &Error{"LOG_LEVEL", fmt.Sprintf("%q is not one of debug, info, warn, error", c.LogLevel)}
	}
	switch c.ThrottleStore {
	case "postgres", "memory":
	default:
		return &Error{"THROTTLE_STORE", fmt.Sprintf("%q is not one of postgres, memory", c.ThrottleStore)}
	}
	switch c.AWSAddressingStyle {
	case "auto", "path", "virtual":
	default:
		return &Error{"AWS_S3_ADDRESSING_STYLE", fmt.Sprintf("%q is not one of auto, path, virtual", c.AWSAddressingStyle)}
	}
	if c.AWSEndpointURL != "" {
		u, err := url.Parse(c.AWSEndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{"AWS_S3_ENDPOINT_URL", "not an http(s) URL"}
		}
	}
	if c.AWSBucket != "" && (c.AWSAccessKeyID == "") != (c.AWSSecretAccessKey == "") {
		return &Error{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together"}
	}
	if c.GoogleClientID != "" {
		u, err := url.Parse(c.GoogleJWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{"GOOGLE_JWKS_URL", "not an http(s) URL"}
		}
	}
	if c.MediaURL == "" || !strings.HasPrefix(c.MediaURL, "/") || !strings.HasSuffix(c.MediaURL, "/") {
		if !strings.HasPrefix(c.MediaURL, "http") {
			return &Error{"MEDIA_URL", "must start and end with / (e.g. /media/) or be an absolute URL"}
		}
	}
	return nil
}

// checkSecretKey applies Django's deploy check to a production key.
func checkSecretKey(k string) string {
	lower := strings.ToLower(k)
	if strings.HasPrefix(lower, "changeme") || strings.HasPrefix(lower, "django-insecure") {
		return "is a placeholder (changeme/django-insecure); set a random value of at least 32 characters"
	}
	unique := map[rune]bool{}
	for _, r := range k {
		unique[r] = true
	}
	if len(k) < 32 || len(unique) < 5 {
		return "too short or too simple; use a random value of at least 32 characters"
	}
	return ""
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// S3Enabled reports whether media go to a bucket.
func (c *Config) S3Enabled() bool { return c.AWSBucket != "" }

// Addr is the listen address for net.Listen.
func (c *Config) Addr() string {
	return net.JoinHostPort(strings.Trim(c.ListenAddress, "[]"), strconv.Itoa(c.Port))
}

// Redacted lists the settings as "NAME=value" lines with secrets masked, for
// the start-up log and `isis check`.
func (c *Config) Redacted() map[string]any {
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "********"
	}
	return map[string]any{
		"DEBUG":                   c.Debug,
		"SECRET_KEY":              mask(c.SecretKey),
		"ALLOWED_HOSTS":           c.AllowedHosts,
		"CORS_ALLOWED_ORIGINS":    c.CORSAllowedOrigins,
		"TRUSTED_PROXIES":         fmt.Sprint(c.TrustedProxies),
		"CLIENT_IP_HEADER":        c.ClientIPHeaderSetting(),
		"PORT":                    c.Port,
		"DATABASE":                redactDSN(c.DatabaseDSN),
		"LOG_DIR":                 c.LogDir,
		"PPROF_ADDRESS":           c.PprofAddress,
		"METRICS_ADDRESS":         c.MetricsAddress,
		"MEMORY_TARGET_MIB":       c.MemoryTargetMiB,
		"STATIC_ROOT":             c.StaticRoot,
		"MEDIA_ROOT":              c.MediaRoot,
		"MAX_BODY_BYTES":          c.MaxBodyBytes,
		"MAX_UPLOAD_BYTES":        c.MaxUploadBytes,
		"AWS_STORAGE_BUCKET_NAME": c.AWSBucket,
		"AWS_S3_ENDPOINT_URL":     c.AWSEndpointURL,
		"AWS_SECRET_ACCESS_KEY":   mask(c.AWSSecretAccessKey),
		"GOOGLE_CLIENT_ID":        c.GoogleClientID,
		"THROTTLE_STORE":          c.ThrottleStore,
		"SHUTDOWN_DELAY":          c.ShutdownDelay.String(),
		"SHUTDOWN_TIMEOUT":        c.ShutdownTimeout.String(),
	}
}

// redactDSN returns host:port/dbname of a DSN, without user or password.
func redactDSN(dsn string) string {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return "(invalid)"
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}
