package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
)

// TestContentTagCache: the content tag is the hash of the context's files,
// kept in the user's cache and read back for the same binary; a binary
// rewritten with other bytes of the same size and its old modification time
// gets its own tag, not the kept one.
func TestContentTagCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	bin := filepath.Join(t.TempDir(), "isis")
	if err := os.WriteFile(bin, []byte("binary one"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := opstest.ExampleConfig()
	c.Build.IsisBinary = bin
	_, want, err := contextFiles(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ContentTag(c); err != nil || got != want {
		t.Fatalf("ContentTag = %q, %v; want %q", got, err, want)
	}
	// The kept tag is what a second deploy reads: change it in the cache,
	// and ContentTag says so (the binary itself is not read again).
	f := cacheFile(bin)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatalf("no tag kept: %v", err)
	}
	key, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	os.WriteFile(f, []byte(key+" c000000000000\n"), 0o600)
	if got, _ := ContentTag(c); got != "c000000000000" {
		t.Fatalf("ContentTag = %q, want the kept c000000000000", got)
	}
	// Same size, same modification time, other bytes: another tag.
	fi, _ := os.Stat(bin)
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(bin, []byte("binary two"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(bin, fi.ModTime(), fi.ModTime())
	_, want2, _ := contextFiles(c)
	if got, _ := ContentTag(c); got != want2 || want2 == want {
		t.Fatalf("after a rewrite ContentTag = %q, want %q (before %q)", got, want2, want)
	}
}
