package config

import "testing"

const pinDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestIsPinnedRef is the rule for the image a rendered file names.
func TestIsPinnedRef(t *testing.T) {
	for _, tc := range []struct {
		ref    string
		pinned bool
	}{
		{"localhost/isis-backend", false}, // a bare name is :latest to every puller
		{"isis-backend", false},
		{"localhost/isis-backend:latest", false},
		{"registry.example.com:5000/isis/backend", false}, // the port is no tag
		{"registry.example.com:5000/isis/backend:latest", false},
		{"localhost/isis-backend:c0123456789ab", true},
		{"localhost/isis-backend:v1.2", true},
		{"registry.example.com:5000/isis/backend:v9", true},
		{"localhost/isis-backend@" + pinDigest, true},
		{"registry.example.com:5000/isis/backend@" + pinDigest, true},
		{"registry.example.com:5000/isis/backend:latest@" + pinDigest, true}, // the digest wins
		{"", false},
		{"Not A Reference", false},
		{"localhost/isis-backend@sha256:short", false},
	} {
		if got := IsPinnedRef(tc.ref); got != tc.pinned {
			t.Errorf("IsPinnedRef(%q) = %v, want %v", tc.ref, got, tc.pinned)
		}
	}
}
