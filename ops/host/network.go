package host

import (
	"fmt"

	"github.com/isis-project/isis/ops/spec"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// NetworkResult reports one network.
type NetworkResult struct {
	Name     string `json:"name"`
	Created  bool   `json:"created"`
	Internal bool   `json:"internal"`
	DNS      bool   `json:"dns"`
}

// EnsureNetwork creates the network when missing. An existing network is
// never recreated (containers may use it); a mismatch is an error to fix by hand.
func EnsureNetwork(conn podman.Engine, name string, internal bool) (*NetworkResult, error) {
	rep, err := conn.NetworkInspect(name)
	if err == nil {
		if rep.Internal != internal {
			return nil, fmt.Errorf("network %q exists with internal=%v, want %v; it is not recreated while in use: remove it by hand (podman network rm %s) when nothing uses it",
				name, rep.Internal, internal, name)
		}
		return &NetworkResult{Name: name, Internal: rep.Internal, DNS: rep.DNS}, nil
	}
	if !podman.IsNotFound(err) {
		return nil, fmt.Errorf("inspect network %q: %w", name, err)
	}
	n, err := conn.NetworkCreate(&podman.Network{Name: name, Internal: internal, DNS: true,
		Labels: map[string]string{spec.LabelManaged: "true"}})
	if err != nil {
		return nil, fmt.Errorf("create network %q: %w", name, err)
	}
	return &NetworkResult{Name: name, Created: true, Internal: n.Internal, DNS: n.DNS}, nil
}

// EnsureNetworks creates the private and egress networks.
func EnsureNetworks(conn podman.Engine, c *config.Config) ([]*NetworkResult, error) {
	priv, err := EnsureNetwork(conn, c.Network, true)
	if err != nil {
		return nil, err
	}
	egress, err := EnsureNetwork(conn, c.EgressNetwork, false)
	if err != nil {
		return nil, err
	}
	return []*NetworkResult{priv, egress}, nil
}

// SecretResult reports one Podman secret (never its value).
type SecretResult struct {
	Name    string `json:"name"`
	Created bool   `json:"created"`
	Rotated bool   `json:"rotated"`
}

// EnsureSecrets creates missing Podman secrets; rotate replaces them all.
func EnsureSecrets(conn podman.Engine, c *config.Config, rotate bool) ([]*SecretResult, error) {
	if err := c.PlaceholderError(); err != nil {
		return nil, err
	}
	values, err := c.SecretValues()
	if err != nil {
		return nil, err
	}
	// The database roles' passwords (derived: no key of their own), after
	// the configured secrets.
	type item struct{ name, value string }
	var items []item
	for _, def := range config.SecretTable {
		if v, ok := values[def.Name]; ok {
			items = append(items, item{def.Name, v})
		}
	}
	for _, d := range config.DerivedSecrets {
		items = append(items, item{d.Name, config.DeriveKey(values[config.DatabasePasswordName], d.Label)})
	}
	var out []*SecretResult
	for _, it := range items {
		name, v := it.name, it.value
		exists, err := secretExists(conn, name)
		if err != nil {
			return nil, err
		}
		res := &SecretResult{Name: name}
		if exists && !rotate {
			out = append(out, res)
			continue
		}
		if exists {
			if err := conn.SecretRemove(name); err != nil {
				return nil, fmt.Errorf("rotate secret %q: %w", name, err)
			}
			res.Rotated = true
		} else {
			res.Created = true
		}
		if err := conn.SecretCreate(name, v, map[string]string{spec.LabelManaged: "true"}); err != nil {
			return nil, fmt.Errorf("create secret %q: %w", name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// secretExists reports whether the Podman secret name exists.
func secretExists(conn podman.Engine, name string) (bool, error) {
	ok, err := conn.SecretExists(name)
	if err != nil {
		return false, fmt.Errorf("check secret %q: %w", name, err)
	}
	return ok, nil
}

// networkPlan says what EnsureNetwork would do.
func NetworkPlan(conn podman.Engine, name string) string {
	if _, err := conn.NetworkInspect(name); err == nil {
		return "exists"
	}
	return "would be created"
}
