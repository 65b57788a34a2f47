package deploy

import (
	"io"
	"os"
	"strings"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func removeAll(dir string) { _ = os.RemoveAll(dir) }
