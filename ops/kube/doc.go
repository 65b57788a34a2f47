// Package kube renders the deployment as Kubernetes manifests (the only
// importer of k8s.io) and checks them strictly against the API types.
package kube
