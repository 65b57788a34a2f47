// Package image builds the backend image, pushes it to and pulls it from a
// registry, and says which image a deploy runs.
package image
