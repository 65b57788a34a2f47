// Package pgtest runs real PostgreSQL servers for tests: one shared server
// per test binary (or DATABASE_URL when set), a fresh database per test cloned
// from a migrated template, and private servers that a test may stop and start.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"
)

// BinDir holds the PostgreSQL server binaries (PG_BINDIR overrides).
func BinDir() string {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d
	}
	for _, v := range []string{"18", "17", "16", "15"} {
		d := "/usr/lib/postgresql/" + v + "/bin"
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return "/usr/lib/postgresql/15/bin"
}

// Server is a PostgreSQL server started by the test binary.
type Server struct {
	Dir  string
	Port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	cred *syscall.Credential
	done chan struct{}
}

// DSN returns a connection string for dbname as the superuser.
func (s *Server) DSN(dbname string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", s.Port, dbname)
}

// NewServer initializes a cluster in a temporary directory and starts it on
// a free loopback port. Stop it with Close.
func NewServer() (*Server, error) {
	dir, err := os.MkdirTemp("", "isis-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir}
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(BinDir(), "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	for attempt := 0; ; attempt++ {
		s.Port, err = freePort()
		if err == nil {
			err = s.Start()
		}
		if err == nil || attempt == 3 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs the server (again) and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	cmd := exec.Command(filepath.Join(BinDir(), "postgres"), "-D", filepath.Join(s.Dir, "data"),
		"-p", strconv.Itoa(s.Port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	// Pdeathsig: a test binary that dies (panic, timeout) takes its server along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, _ := sql.Open("postgres", s.DSN("postgres"))
		err := db.Ping()
		db.Close()
		if err == nil {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
			return fmt.Errorf("postgres exited: %s", lastLines(string(log), 5))
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("postgres did not accept connections in 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.cmd, s.done = cmd, done
	return nil
}

// Stop shuts the server down (fast shutdown: connections are closed).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Kill ends the server abruptly (SIGKILL), like a crash.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	os.RemoveAll(s.Dir)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

var (
	sharedOnce   sync.Once
	sharedServer *Server
	sharedAdmin  string
	sharedErr    error
	templates    sync.Map // name -> *templateOnce
)

// adminDSN returns a superuser connection string to the shared server:
// DATABASE_URL when set, else a server this test binary starts once.
func adminDSN() (string, error) {
	sharedOnce.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			sharedAdmin = u
			return
		}
		sharedServer, sharedErr = NewServer()
		if sharedErr == nil {
			sharedAdmin = sharedServer.DSN("postgres")
		}
	})
	return sharedAdmin, sharedErr
}

// Main runs the tests and stops the shared server; call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main without the exit, for a TestMain with cleanup of its own.
func Run(m *testing.M) int {
	code := m.Run()
	if sharedServer != nil {
		sharedServer.Close()
	}
	return code
}

type templateOnce struct {
	once sync.Once
	err  error
}

// withDB returns dsn with its dbname replaced.
func withDB(dsn, dbname string) (string, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return "", err
	}
	// Rebuild as key=value: host, port, user, password, sslmode, dbname.
	parts := []string{
		"host=" + quote(cfg.Host), "port=" + strconv.Itoa(int(cfg.Port)),
		"user=" + quote(cfg.User), "dbname=" + quote(dbname), "sslmode=" + quote(string(cfg.SSLMode)),
	}
	if cfg.Password != "" {
		parts = append(parts, "password="+quote(cfg.Password))
	}
	return strings.Join(parts, " "), nil
}

func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// NewDatabase creates a fresh database for tb and drops it in tb.Cleanup.
// With a template name, the database is cloned from it: setup runs once per
// test binary on the template (e.g. to migrate it).
func NewDatabase(tb testing.TB, template string, setup func(dsn string) error) string {
	tb.Helper()
	admin, err := adminDSN()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	db, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clause := ""
	if template != "" {
		t, _ := templates.LoadOrStore(template, &templateOnce{})
		to := t.(*templateOnce)
		to.once.Do(func() {
			name := template + "_" + randomHex(4)
			if _, to.err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); to.err != nil {
				return
			}
			dsn, err := withDB(admin, name)
			if err != nil {
				to.err = err
				return
			}
			if setup != nil {
				to.err = setup(dsn)
			}
			templates.Store(template+"/name", name)
		})
		if to.err != nil {
			tb.Fatalf("pgtest: template %s: %v", template, to.err)
		}
		name, _ := templates.Load(template + "/name")
		clause = " TEMPLATE " + pq.QuoteIdentifier(name.(string))
	}
	name := "t_" + randomHex(6)
	// Cloning fails while another session is connected to the template.
	for i := 0; ; i++ {
		_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)+clause)
		if err == nil || i == 50 || !strings.Contains(err.Error(), "is being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("postgres", admin)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)")
	})
	dsn, err := withDB(admin, name)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return dsn
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
