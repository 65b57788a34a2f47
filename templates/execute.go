package templates

import (
	"bytes"
	"fmt"
	"sync"
	"text/template"
)

var parsedTemplates = sync.OnceValues(func() (*template.Template, error) {
	return template.New("").Option("missingkey=error").ParseFS(FS, "*.tmpl")
})

// Execute renders the named template with data (a missing key is an error).
func Execute(name string, data any) (string, error) {
	t, err := parsedTemplates()
	if err != nil {
		return "", fmt.Errorf("parse templates: %w", err)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return b.String(), nil
}
