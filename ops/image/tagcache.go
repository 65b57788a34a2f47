package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// The content tag hashes the whole isis binary (17 MB, 20-50 ms here). A
// deploy of the same binary again, the usual no-op, skips that: the tag is
// kept in the user's cache (isisctl/content-tags/, one small file per
// binary path) under a key made of the context's small files and the
// binary's identity: its device, inode, size, modification and change
// times. Anything that writes the binary changes its change time, which no
// tool can set back, so a kept tag is the one its bytes would give. A cache
// that cannot be read or written only costs the hash.

// cacheKey is the cache key of the context's small files and binary bin
// ("" when bin cannot be stat'ed).
func cacheKey(small map[string][]byte, bin string) string {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00%d.%d\x00%d.%d\x00", abs, st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	names := make([]string, 0, len(small))
	for n := range small {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(small[n]))
		h.Write(small[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// cacheFile is where the tag of binary bin is kept ("" without a cache).
func cacheFile(bin string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, "isisctl", "content-tags", hex.EncodeToString(sum[:12]))
}

// cachedTag is the tag kept for bin under key, or "".
func cachedTag(bin, key string) string {
	f := cacheFile(bin)
	if key == "" || f == "" {
		return ""
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return ""
	}
	k, tag, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	if !ok || k != key || !validTag(tag) {
		return ""
	}
	return tag
}

// storeTag keeps tag for bin under key (errors only cost the next hash).
func storeTag(bin, key, tag string) {
	f := cacheFile(bin)
	if key == "" || f == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(f), ".tag-")
	if err != nil {
		return
	}
	_, werr := tmp.WriteString(key + " " + tag + "\n")
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), f) != nil {
		os.Remove(tmp.Name())
	}
}

// validTag: a content tag, "c" and 12 hex digits.
func validTag(tag string) bool {
	if len(tag) != 13 || tag[0] != 'c' {
		return false
	}
	_, err := hex.DecodeString(tag[1:])
	return err == nil
}
