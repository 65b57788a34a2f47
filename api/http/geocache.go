package apihttp

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/singleflight"
)

// geoCache keeps the public geography answers (body and ETag) by URL. It is
// used only while change notifications flow (see postgres.Listen); every
// write bumps the generation, and an answer read under an older generation
// is never stored, so no write is followed by a stale answer.
type geoCache struct {
	enabled atomic.Bool
	gen     atomic.Uint64
	// hits and misses count lookups (a miss while the cache is off too).
	hits, misses atomic.Uint64

	mu      sync.RWMutex
	entries map[string]*cachedAnswer
	bytes   int

	flight singleflight.Group
}

type cachedAnswer struct {
	body    []byte
	etag    string
	etagHdr []string // the ETag and Content-Length header values, shared by
	lenHdr  []string // every answer from the cache
}

func newAnswer(body []byte) *cachedAnswer {
	etag := etagOf(body)
	return &cachedAnswer{body: body, etag: etag, etagHdr: []string{etag}, lenHdr: []string{strconv.Itoa(len(body))}}
}

const (
	geoCacheMaxEntries = 4096
	geoCacheMaxBytes   = 16 << 20
)

func newGeoCache() *geoCache { return &geoCache{entries: map[string]*cachedAnswer{}} }

func (g *geoCache) get(key []byte) *cachedAnswer {
	if !g.enabled.Load() {
		return nil
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.entries[string(key)] // no allocation: the compiler looks up the bytes
}

// put stores an answer computed under generation gen, unless a write has
// happened since.
func (g *geoCache) put(key string, gen uint64, a *cachedAnswer) {
	if !g.enabled.Load() {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gen.Load() != gen {
		return
	}
	if len(g.entries) >= geoCacheMaxEntries || g.bytes+len(a.body) > geoCacheMaxBytes {
		g.entries, g.bytes = map[string]*cachedAnswer{}, 0
	}
	if old := g.entries[key]; old != nil {
		g.bytes -= len(old.body)
	}
	g.entries[key] = a
	g.bytes += len(a.body)
}

func (g *geoCache) invalidate() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen.Add(1)
	g.entries, g.bytes = map[string]*cachedAnswer{}, 0
}

// invalidatingGeo drops the cache after every write made through it (at
// once, before the handler answers: the notification only follows), failed
// writes included, so no write path can forget to.
type invalidatingGeo struct {
	api.GeoService
	cache *geoCache
}

func (g invalidatingGeo) CreateDepartment(ctx context.Context, d *api.Department) error {
	defer g.cache.invalidate()
	return g.GeoService.CreateDepartment(ctx, d)
}

func (g invalidatingGeo) UpdateDepartment(ctx context.Context, code string, upd api.DepartmentUpdate) (*api.Department, error) {
	defer g.cache.invalidate()
	return g.GeoService.UpdateDepartment(ctx, code, upd)
}

func (g invalidatingGeo) DeleteDepartment(ctx context.Context, code string) error {
	defer g.cache.invalidate()
	return g.GeoService.DeleteDepartment(ctx, code)
}

func (g invalidatingGeo) CreateMunicipality(ctx context.Context, m *api.Municipality) error {
	defer g.cache.invalidate()
	return g.GeoService.CreateMunicipality(ctx, m)
}

func (g invalidatingGeo) UpdateMunicipality(ctx context.Context, code string, upd api.MunicipalityUpdate) (*api.Municipality, error) {
	defer g.cache.invalidate()
	return g.GeoService.UpdateMunicipality(ctx, code, upd)
}

func (g invalidatingGeo) DeleteMunicipality(ctx context.Context, code string) error {
	defer g.cache.invalidate()
	return g.GeoService.DeleteMunicipality(ctx, code)
}

// InvalidateGeo drops every cached geography answer (a write happened, or
// notifications may have been missed).
func (s *Server) InvalidateGeo() { s.geo.invalidate() }

// SetGeoCacheEnabled turns the cache on while change notifications flow.
func (s *Server) SetGeoCacheEnabled(on bool) {
	if !on {
		s.geo.invalidate()
	}
	s.geo.enabled.Store(on)
}

// appendCacheKey appends what the answer depends on: the URL as the client
// used it (next/previous links hold the scheme and host). A hit looks the
// bytes up in place: only a miss makes a string of them.
func appendCacheKey(b []byte, c echo.Context) []byte {
	ci := client(c)
	b = append(b, ci.Scheme...)
	b = append(b, "://"...)
	b = append(b, ci.Host...)
	b = append(b, state(c).path...)
	b = append(b, '?')
	return append(b, c.Request().URL.RawQuery...)
}

// cachedGeo answers from the cache, or loads, writes and caches. Concurrent
// misses on one URL share a single load (a cold cache under load would
// otherwise send every waiting request to PostgreSQL at once); the load
// outlives the client that started it, bounded by the statement timeout.
func (s *Server) cachedGeo(c echo.Context, load func(ctx context.Context) (any, error)) error {
	var buf [256]byte
	kb := appendCacheKey(buf[:0], c)
	if a := s.geo.get(kb); a != nil {
		s.geo.hits.Add(1)
		return writeETagged(c, a)
	}
	s.geo.misses.Add(1)
	key := string(kb)
	v, err, _ := s.geo.flight.Do(key, func() (any, error) {
		gen := s.geo.gen.Load()
		v, err := load(context.WithoutCancel(c.Request().Context()))
		if err != nil {
			return nil, err
		}
		b, err := marshal(v)
		if err != nil {
			return nil, err
		}
		a := newAnswer(b)
		s.geo.put(key, gen, a)
		return a, nil
	})
	if err != nil {
		return err
	}
	return writeETagged(c, v.(*cachedAnswer))
}
