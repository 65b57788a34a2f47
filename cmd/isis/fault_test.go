package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
)

// server is a running `isis serve` for fault tests.
type server struct {
	cmd  *exec.Cmd
	base string
	log  *syncBuf
	done chan error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	e := map[string]string{"PORT": fmt.Sprint(freePort(t)), "LISTEN_ADDRESS": "127.0.0.1", "THROTTLE_TOKEN": "off"}
	for k, v := range env {
		e[k] = v // PORT too: a slot's replacement takes over its port
	}
	s := &server{cmd: exec.Command(isisBin, "serve"), base: "http://127.0.0.1:" + e["PORT"], log: &syncBuf{}, done: make(chan error, 1)}
	s.cmd.Env = baseEnv(e)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	waitUp(t, s.base+"/api/health/")
	return s
}

func (s *server) alive() bool {
	select {
	case err := <-s.done:
		s.done <- err
		return false
	default:
		return true
	}
}

// token logs a fresh user in and returns an access token.
func token(t *testing.T, dsn, base string) string {
	t.Helper()
	env := map[string]string{"DATABASE_URL": dsn, "ISIS_SUPERUSER_PASSWORD": "fault-test-password-1"}
	if _, e, code := isis(t, env, "createsuperuser", "--email", "fault@example.com", "--no-input"); code != 0 && !strings.Contains(e, "taken") {
		t.Fatal(e)
	}
	res, err := http.Post(base+"/api/token/", "application/json", strings.NewReader(`{"email":"fault@example.com","password":"fault-test-password-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	i := strings.Index(string(b), `"access":"`)
	if res.StatusCode != 200 || i < 0 {
		t.Fatalf("login: %d %s", res.StatusCode, b)
	}
	tok := string(b[i+10:])
	return tok[:strings.IndexByte(tok, '"')]
}

func getStatus(client *http.Client, url, tok string) (int, time.Duration, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = "localhost"
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, time.Since(start), nil
}

// TestDatabaseKilledUnderLoad: PostgreSQL is SIGKILLed while clients hammer
// the server; the server never crashes, answers 503 quickly while the
// database is gone, and recovers by itself when it is back.
func TestDatabaseKilledUnderLoad(t *testing.T) {
	pg, err := pgtest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	dsn := pg.DSN("postgres")
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	srv := startServer(t, map[string]string{"DATABASE_URL": dsn})
	tok := token(t, dsn, srv.base)

	var phase atomic.Int32 // 0 up, 1 down, 2 back
	var slow, crashed atomic.Int32
	counts := [3]map[int]*atomic.Int32{{}, {}, {}}
	for i := range counts {
		for _, c := range []int{200, 503, 0} {
			counts[i][c] = &atomic.Int32{}
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				p := phase.Load()
				status, took, err := getStatus(client, srv.base+"/api/users/me/", tok)
				if err != nil {
					crashed.Add(1)
					continue
				}
				if took > 5*time.Second {
					slow.Add(1)
				}
				if c, ok := counts[p][status]; ok {
					c.Add(1)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	phase.Store(1)
	pg.Kill()
	time.Sleep(1500 * time.Millisecond)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	phase.Store(2)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && counts[2][200].Load() < 50 {
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	t.Logf("up: %d ok; down: %d ok, %d 503; back: %d ok, %d 503", counts[0][200].Load(), counts[1][200].Load(),
		counts[1][503].Load(), counts[2][200].Load(), counts[2][503].Load())
	if !srv.alive() {
		t.Fatalf("the server died:\n%s", srv.log.String())
	}
	if crashed.Load() > 0 || slow.Load() > 0 {
		t.Errorf("%d requests failed without an answer, %d took over 5s", crashed.Load(), slow.Load())
	}
	if counts[0][200].Load() == 0 || counts[1][503].Load() == 0 || counts[2][200].Load() < 50 {
		t.Error("the server did not go 200 → 503 → 200 with the database")
	}
	if strings.Contains(srv.log.String(), "panic") {
		t.Error("a panic was logged")
	}
}

// TestStatementTimeout: a query stuck behind a lock is cancelled by the
// statement timeout and answered 503 quickly, not left hanging.
func TestStatementTimeout(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	srv := startServer(t, map[string]string{"DATABASE_URL": dsn, "DATABASE_STATEMENT_TIMEOUT": "300ms"})
	tok := token(t, dsn, srv.base)
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`LOCK TABLE users IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	status, took, err := getStatus(&http.Client{Timeout: 10 * time.Second}, srv.base+"/api/users/me/", tok)
	if err != nil || status != 503 || took > 3*time.Second {
		t.Errorf("a query behind a lock: %d after %s (%v), want a quick 503", status, took, err)
	}
	tx.Rollback()
	if status, _, _ := getStatus(http.DefaultClient, srv.base+"/api/users/me/", tok); status != 200 {
		t.Errorf("after the lock: %d", status)
	}
}

// TestSlowloris: hundreds of clients that trickle their headers cannot stop
// the server from answering others, and are cut off by the header timeout.
func TestSlowloris(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	srv := startServer(t, map[string]string{"DATABASE_URL": dsn})
	addr := strings.TrimPrefix(srv.base, "http://")
	var conns []net.Conn
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		io.WriteString(c, "GET /api/health/ HTTP/1.1\r\nHost: localhost\r\n")
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	stopTrickle := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopTrickle:
				return
			case <-time.After(500 * time.Millisecond):
			}
			for _, c := range conns {
				fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i)
			}
		}
	}()
	defer close(stopTrickle)
	for i := 0; i < 20; i++ {
		status, took, err := getStatus(&http.Client{Timeout: 5 * time.Second}, srv.base+"/api/health/", "")
		if err != nil || status != 200 || took > time.Second {
			t.Fatalf("a normal client during the attack: %d after %s (%v)", status, took, err)
		}
	}
	// The header timeout (5 s) closes every trickling connection.
	time.Sleep(6500 * time.Millisecond)
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 512)
		_, err := c.Read(buf)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			closed++
		} else if err == nil {
			closed++ // the server answered (408/400) and will close
		}
	}
	if closed < len(conns)*9/10 {
		t.Errorf("only %d of %d slow connections were cut off", closed, len(conns))
	}
}

// TestShutdownUnderLoad: SIGTERM while clients keep opening connections and
// sending: every request the server took is answered in full, the accept
// queue is drained before the listener closes (TestDrainAccepts), and the
// rest are refused at connect.
func TestShutdownUnderLoad(t *testing.T) {
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	srv := startServer(t, map[string]string{"DATABASE_URL": dsn})
	var ok, refused, unread, lost atomic.Int32
	var lostErr, unreadErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				status, err := getFull(client, srv.base+"/api/departments/?page_size=5")
				switch {
				case err == nil && status == 200:
					ok.Add(1)
				case err != nil && errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				case err != nil && status == 0 && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)):
					unread.Add(1)
					unreadErr.Store(err.Error())
				default: // an answer begun and not finished, or not a 200
					lost.Add(1)
					lostErr.Store(fmt.Sprintf("%d %v", status, err))
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-srv.done:
		srv.done <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()
	t.Logf("answered %d, refused at connect %d, reset before being read %d, lost %d", ok.Load(), refused.Load(), unread.Load(), lost.Load())
	if lost.Load() > 0 {
		t.Errorf("%d accepted requests got no answer (e.g. %v)", lost.Load(), lostErr.Load())
	}
	if strings.Contains(srv.log.String(), "could not drain") {
		t.Error("the accept queue was not drained before the listener closed")
	}
	if unread.Load() > 0 {
		// Only where the kernel has no socket filters (this CI's does not),
		// and rarely: a handshake admitted in the instant before the close.
		t.Logf("%d connections reset with their request unread (e.g. %v)", unread.Load(), unreadErr.Load())
	}
	if ok.Load() == 0 || refused.Load() == 0 {
		t.Error("the test did not straddle the shutdown")
	}
}

// getFull reads the whole answer; status is 0 when no answer began.
func getFull(client *http.Client, url string) (int, error) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = "localhost"
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && !bytes.HasSuffix(b, []byte("}")) {
		err = fmt.Errorf("truncated body: %q", b)
	}
	return res.StatusCode, err
}

// TestServeWithDatabaseDown: started while PostgreSQL is unreachable, the
// server serves at once: health 200, ready 503 naming the database.
func TestServeWithDatabaseDown(t *testing.T) {
	dead := fmt.Sprintf("postgres://isis@127.0.0.1:%d/isis?sslmode=disable", freePort(t))
	srv := startServer(t, map[string]string{"DATABASE_URL": dead}) // waits for /api/health/ = 200
	req, _ := http.NewRequest("GET", srv.base+"/api/ready/", nil)
	req.Host = "localhost"
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != 503 || body["database"] != "unavailable" {
		t.Errorf("ready with the database down = %d %v", res.StatusCode, body)
	}
}
