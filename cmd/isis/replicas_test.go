package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/wait"
)

// replicas migrates a fresh database and starts n `isis serve` processes
// on it with env.
func replicas(t *testing.T, n int, env map[string]string) (dsn string, srvs []*server) {
	t.Helper()
	dsn = pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	e := map[string]string{"DATABASE_URL": dsn}
	for k, v := range env {
		e[k] = v
	}
	for range n {
		srvs = append(srvs, startServer(t, e))
	}
	return dsn, srvs
}

// call sends one request with an optional bearer token and JSON body.
func call(t *testing.T, method, url, tok, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// TestReplicasShareThrottle: three servers on one database, logins from one
// client spread across them at once: the login throttle allows its limit
// once in all, not once per server, and the rest get 429 with Retry-After.
// (With THROTTLE_STORE=memory each server allows the limit: 12 of 15.)
func TestReplicasShareThrottle(t *testing.T) {
	_, srvs := replicas(t, 3, map[string]string{"THROTTLE_TOKEN": "4/min"})
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range 15 {
		wg.Go(func() {
			code, h, body := call(t, "POST", srvs[i%3].base+"/api/token/", "", `{"email":"nobody@example.com","password":"wrong-password"}`)
			if code == 429 && (h.Get("Retry-After") == "" || !strings.Contains(body, `"throttled"`)) {
				t.Errorf("429 without Retry-After or code: %v %s", h, body)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes[401] != 4 || codes[429] != 11 {
		t.Errorf("answers by status %v; want 4 × 401 (the limit, across the three servers) and 11 × 429", codes)
	}
}

// TestReplicasCaches: a staff write and a user deactivation through one
// server reach the other server's caches (geography, users, verified
// tokens) within a bounded time (wait.For: 5 s), through LISTEN/NOTIFY.
// This proves behaviour that was already there.
func TestReplicasCaches(t *testing.T) {
	dsn, srvs := replicas(t, 2, nil)
	one, two := srvs[0].base, srvs[1].base
	staff := token(t, dsn, one)

	// The geography: read on two (cached), renamed on one.
	for range 2 {
		if code, _, body := call(t, "GET", two+"/api/municipalities/05001/", "", ""); code != 200 || !strings.Contains(body, `"department_name":"Antioquia"`) {
			t.Fatalf("municipality on two: %d %s", code, body)
		}
	}
	if code, _, body := call(t, "PATCH", one+"/api/departments/05/", staff, `{"name":"Antioquia (renamed on one)"}`); code != 200 {
		t.Fatalf("rename on one: %d %s", code, body)
	}
	start := time.Now()
	wait.For(t, "the rename on two", func() bool {
		_, _, dep := call(t, "GET", two+"/api/departments/05/", "", "")
		_, _, mun := call(t, "GET", two+"/api/municipalities/05001/", "", "")
		return strings.Contains(dep, "(renamed on one)") && strings.Contains(mun, "(renamed on one)")
	})
	t.Logf("rename seen on two after %s", time.Since(start).Round(time.Millisecond))

	// A user signed in on two, deactivated on one.
	if code, _, body := call(t, "POST", two+"/api/auth/register/", "", `{"email":"ana@example.com","password":"replica-test-pass-9"}`); code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	code, _, body := call(t, "POST", two+"/api/token/", "", `{"email":"ana@example.com","password":"replica-test-pass-9"}`)
	var pair struct{ Access string }
	if code != 200 || json.Unmarshal([]byte(body), &pair) != nil {
		t.Fatalf("login on two: %d %s", code, body)
	}
	var me struct{ ID int64 }
	for range 2 {
		code, _, body := call(t, "GET", two+"/api/users/me/", pair.Access, "")
		if code != 200 || json.Unmarshal([]byte(body), &me) != nil {
			t.Fatalf("me on two: %d %s", code, body)
		}
	}
	if code, _, body := call(t, "DELETE", fmt.Sprintf("%s/api/users/%d/", one, me.ID), staff, ""); code != 204 {
		t.Fatalf("deactivate on one: %d %s", code, body)
	}
	start = time.Now()
	wait.For(t, "the deactivation on two", func() bool {
		code, _, _ := call(t, "GET", two+"/api/users/me/", pair.Access, "")
		return code == 401
	})
	t.Logf("deactivation seen on two after %s", time.Since(start).Round(time.Millisecond))
}
