// Command isis is the isis API server and its management commands
// (serve, migrate, healthcheck, …), one static binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/config"
	apihttp "github.com/isis-project/isis/api/http"
	"github.com/isis-project/isis/api/media"
	"github.com/isis-project/isis/api/postgres"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run executes the command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := newRootCmd(stdin, stdout, stderr)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(stderr, "isis: "+err.Error())
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// Main is the running server: settings, pool, HTTP server.
type Main struct {
	Config *config.Config
	Logger *slog.Logger
	DB     *postgres.DB
	Server *apihttp.Server

	httpServer *http.Server
	listener   net.Listener
	logFile    *os.File
	logBuf     *bufferedLog
	lame       lameDuckState
}

// NewMain loads the settings and opens the pool and the logger.
func NewMain(getenv config.Getenv, stdout io.Writer) (*Main, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, exitError{2, err}
	}
	m := &Main{Config: cfg}
	out := stdout
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
			return nil, exitError{2, fmt.Errorf("setting LOG_DIR: %w", err)}
		}
		f, err := os.OpenFile(filepath.Join(cfg.LogDir, "isis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, exitError{2, fmt.Errorf("setting LOG_DIR: %w", err)}
		}
		m.logFile = f
		out = io.MultiWriter(stdout, f)
	}
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	m.logBuf = newBufferedLog(out)
	m.Logger = slog.New(slog.NewJSONHandler(m.logBuf, &slog.HandlerOptions{Level: level}))
	db, err := postgres.Open(cfg.DatabaseDSN, postgres.Options{
		MaxOpenConns:     cfg.DatabaseMaxConns,
		StatementTimeout: fmt.Sprintf("%dms", cfg.StatementTimeout.Milliseconds()),
	})
	if err != nil {
		m.Close()
		return nil, exitError{2, err}
	}
	m.DB = db
	return m, nil
}

// Listen opens the listening socket; addr overrides the configured one.
func (m *Main) Listen(addr string) error {
	if addr == "" {
		addr = m.Config.Addr()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (setting PORT/LISTEN_ADDRESS): %w", addr, errors.Unwrap(err))
	}
	store, err := media.New(m.Config)
	if err != nil {
		ln.Close()
		return exitError{2, err}
	}
	m.listener = ln
	svc := apihttp.Services{
		DB: m.DB, Geo: postgres.NewGeoService(m.DB), Users: postgres.NewUserService(m.DB), RefreshTokens: postgres.NewRefreshTokenService(m.DB),
		Media: store, AccessLog: m.logBuf,
	}
	if m.Config.ThrottleStore == "postgres" {
		svc.Throttles = postgres.NewThrottles(m.DB) // every replica counts the same requests
	}
	m.Server = apihttp.NewServer(m.Config, m.Logger, svc)
	m.httpServer = &http.Server{
		Handler:           lameDuck(m.Server, m.Server.Draining, &m.lame),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	return nil
}

// Addr is the address the server listens on.
func (m *Main) Addr() string { return m.listener.Addr().String() }

// Serve serves until ctx is done, then shuts down gracefully: in-flight
// requests finish (up to SHUTDOWN_TIMEOUT, 25 s), then the pool closes.
func (m *Main) Serve(ctx context.Context) error {
	if m.Config.SecretKeyGenerated {
		m.Logger.Warn("SECRET_KEY is not set: using a random key for this run (DEBUG=1 only); tokens die with the process")
	}
	if risk := m.Config.ClientIPHeaderRisk(); risk != "" {
		m.Logger.Warn(risk)
	}
	m.Logger.Info(api.ServingMessage, "addr", m.Addr(), "version", api.Version, "settings", m.Config.Redacted())
	if m.Config.MemoryTargetMiB > 0 {
		defer startMemLimiter(int64(m.Config.MemoryTargetMiB) << 20)()
	}
	lctx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	m.DB.Listen(lctx, m.Server) // the geography and user caches follow every write, wherever it comes from
	go m.Server.PurgeThrottles(lctx)
	if m.Config.PprofAddress != "" {
		stopPprof, err := servePprof(m.Config.PprofAddress)
		if err != nil {
			return err
		}
		defer stopPprof()
		m.Logger.Info("profiling on", "addr", m.Config.PprofAddress)
	}
	if m.Config.MetricsAddress != "" {
		stopMetrics, err := m.serveMetrics(m.Config.MetricsAddress)
		if err != nil {
			return err
		}
		defer stopMetrics()
		m.Logger.Info("metrics on", "addr", m.Config.MetricsAddress, "path", "/metrics")
	}
	if _, err := releaseStartPages(); err != nil {
		m.Logger.Warn("could not release the start-up pages of the binary", "error", err.Error())
	}
	errc := make(chan error, 1)
	go func() { errc <- m.httpServer.Serve(m.listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	m.Logger.Info("shutting down: finishing in-flight requests")
	m.Server.Drain() // /api/health/ and /api/ready/ answer 503 from now on
	if m.Config.ShutdownDelay > 0 {
		m.Logger.Info("lame duck: serving while the proxies move away", "at_most", m.Config.ShutdownDelay.String())
		m.lame.wait(m.Config.ShutdownDelay)
	}
	if err := drainAccepts(m.listener, 2*time.Second); err != nil {
		m.Logger.Warn("could not drain the accept queue before closing: queued connections may be reset", "error", err.Error())
	}
	sctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	err := m.httpServer.Shutdown(sctx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	m.Logger.Info("stopped")
	return err
}

// Close releases the pool, flushes the log and closes the log file.
func (m *Main) Close() {
	if m.DB != nil {
		m.DB.Close()
	}
	if m.logBuf != nil {
		m.logBuf.Close()
	}
	if m.logFile != nil {
		m.logFile.Close()
	}
}

// openMain is what the management commands start with: the settings and
// the pool (logs discarded), and a context that ends on SIGINT/SIGTERM or
// after timeout. done releases both.
func openMain(timeout time.Duration) (m *Main, ctx context.Context, done func(), err error) {
	m, err = NewMain(os.Getenv, io.Discard)
	if err != nil {
		return nil, nil, nil, err
	}
	sctx, stop := signalContext()
	ctx, cancel := context.WithTimeout(sctx, timeout)
	return m, ctx, func() { cancel(); stop(); m.Close() }, nil
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
