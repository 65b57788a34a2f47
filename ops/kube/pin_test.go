package kube

import (
	"errors"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/render"
)

// TestRenderRefusesUnpinned: neither the units nor the manifests are ever
// rendered with a moving image, and the refusal says what pins it.
func TestRenderRefusesUnpinned(t *testing.T) {
	for _, image := range []string{"localhost/isis-backend", "localhost/isis-backend:latest", "registry.example.com:5000/isis/backend"} {
		_, err := render.Render(opstest.ExampleConfig(), render.Options{Image: image})
		var pe *config.UnpinnedImageError
		if !errors.As(err, &pe) || pe.Kube {
			t.Errorf("Render(%s) = %v, want an UnpinnedImageError", image, err)
		} else if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, image) ||
			!strings.Contains(msg, "--tag") || !strings.Contains(msg, "backend.tag") || !strings.Contains(msg, "build --push") {
			t.Errorf("Render(%s): %q", image, msg)
		}
		_, err = Render(opstest.ExampleConfig(), Options{Image: image})
		if !errors.As(err, &pe) || !pe.Kube {
			t.Errorf("RenderKube(%s) = %v, want an UnpinnedImageError", image, err)
		} else if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, image) ||
			!strings.Contains(msg, "kube.image") || !strings.Contains(msg, "--tag") || !strings.Contains(msg, "build --push") {
			t.Errorf("RenderKube(%s): %q", image, msg)
		}
	}
	for _, image := range []string{opstest.ExampleUnitImage, opstest.ExampleKubeImage} {
		if _, err := render.Render(opstest.ExampleConfig(), render.Options{Image: image}); err != nil {
			t.Errorf("Render(%s): %v", image, err)
		}
		if _, err := Render(opstest.ExampleConfig(), Options{Image: image}); err != nil {
			t.Errorf("RenderKube(%s): %v", image, err)
		}
	}
}
