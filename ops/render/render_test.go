package render

import (
	"sort"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"
)

// TestRenderExampleUnits keeps quadlets/ in sync with the templates.
func TestRenderExampleUnits(t *testing.T) {
	files, err := Render(opstest.ExampleConfig(), Options{Image: opstest.ExampleUnitImage})
	if err != nil {
		t.Fatal(err)
	}
	opstest.CheckGolden(t, "../../quadlets", Contents(files))
	if err := CheckUnits(files, true); err != nil {
		t.Fatal(err)
	}
}

func TestRenderGolden(t *testing.T) {
	files, err := Render(opstest.CustomConfig(), Options{Image: "localhost/isis-backend:abc123", System: true})
	if err != nil {
		t.Fatal(err)
	}
	opstest.CheckGolden(t, "testdata/render", Contents(files))
	if err := CheckUnits(files, false); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, f := range files {
		names = append(names, f.Name)
		if strings.Contains(f.Content, "s3cr3t") {
			t.Errorf("%s holds a secret value", f.Name)
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "api-b.container api.container backup/isis-backup.service backup/isis-backup.timer out1.network private1-postgres.container private1.network proxy/Caddyfile proxy/nginx-isis.conf" {
		t.Errorf("files = %s", got)
	}
}

func TestCheckUnitsRejects(t *testing.T) {
	files, _ := Render(opstest.ExampleConfig(), Options{Image: "x:1"})
	for name, mutate := range map[string]func(string) string{
		"unknown key": func(s string) string { return strings.Replace(s, "[Container]", "[Container]\nFrobnicate=yes", 1) },
		"no image":    func(s string) string { return strings.Replace(s, "Image=x:1\n", "", 1) },
		"bad group":   func(s string) string { return strings.Replace(s, "[Container]", "[Contianer]", 1) },
	} {
		broken := append([]File(nil), files...)
		for i := range broken {
			if broken[i].Name == "isis-backend.container" {
				broken[i].Content = mutate(broken[i].Content)
			}
		}
		if err := CheckUnits(broken, true); err == nil {
			t.Errorf("%s: CheckUnits accepted it", name)
		}
	}
}

func runQuadlet(t *testing.T, files []File, user bool) (string, error) {
	t.Helper()
	dir := t.TempDir()
	if _, err := WriteFiles(dir, files); err != nil {
		t.Fatal(err)
	}
	return opstest.RunQuadlet(t, dir, user)
}

// TestRealQuadletGenerator runs Podman's own generator binary on the example
// units: no error, no warning, and the services it makes.
func TestRealQuadletGenerator(t *testing.T) {
	files, _ := Render(opstest.ExampleConfig(), Options{Image: opstest.ExampleUnitImage})
	out, err := runQuadlet(t, files, true)
	if err != nil {
		t.Fatalf("quadlet -dryrun: %v\n%s", err, out)
	}
	for _, want := range []string{"---isis-backend.service---", "---isis-backend-b.service---", "---swe2-postgres.service---", "---swe2-network.service---",
		"---isis-egress-network.service---", "---isis-pgdata-volume.service---"} {
		if !strings.Contains(out, want) {
			t.Errorf("quadlet output lacks %s", want)
		}
	}
	for _, bad := range []string{"nsupported", "rror", "arning"} {
		if strings.Contains(out, bad) {
			t.Errorf("quadlet output mentions %q:\n%s", bad, out)
		}
	}
	// An unknown key fails the real generator too.
	for i := range files {
		if files[i].Name == "isis-backend.container" {
			files[i].Content = strings.Replace(files[i].Content, "[Container]", "[Container]\nFrobnicate=yes", 1)
		}
	}
	if out, err := runQuadlet(t, files, true); err == nil && !strings.Contains(out, "Frobnicate") {
		t.Errorf("quadlet accepted an unknown key:\n%s", out)
	}
}
