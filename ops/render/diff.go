package render

import (
	"fmt"
	"os"
	"strings"
)

// DiffUnits compares the units on the host (dir) with files, line by line.
func DiffUnits(dir string, files []File) string {
	var b strings.Builder
	for _, f := range files {
		old, err := os.ReadFile(dir + "/" + f.Name)
		if err != nil {
			fmt.Fprintf(&b, "+++ %s (new)\n", f.Name)
			continue
		}
		if string(old) == f.Content {
			continue
		}
		fmt.Fprintf(&b, "--- %s (on the host)\n+++ %s (rendered)\n", f.Name, f.Name)
		oldLines := strings.Split(string(old), "\n")
		newLines := strings.Split(f.Content, "\n")
		inOld := map[string]bool{}
		for _, l := range oldLines {
			inOld[l] = true
		}
		inNew := map[string]bool{}
		for _, l := range newLines {
			inNew[l] = true
		}
		for _, l := range oldLines {
			if !inNew[l] {
				fmt.Fprintf(&b, "-%s\n", l)
			}
		}
		for _, l := range newLines {
			if !inOld[l] {
				fmt.Fprintf(&b, "+%s\n", l)
			}
		}
	}
	if b.Len() == 0 {
		return "units on the host are up to date\n"
	}
	return b.String()
}

// Contents maps each file's name to its content.
func Contents(files []File) map[string]string {
	m := make(map[string]string, len(files))
	for _, f := range files {
		m[f.Name] = f.Content
	}
	return m
}
