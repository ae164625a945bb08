// Command coredns is the test cluster's DNS server (tools/k8s/cluster): upstream CoreDNS's own
// coremain with only the plugins the cluster's Corefile names, so the build compiles none of the
// cloud providers' SDKs, tracers and backends the full command links in. tools/k8s/build copies
// this file into the Kubernetes module's source as cmd/shop-coredns and builds it there, beside
// Kubernetes and Helm, against the same libraries.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The plugins in the order upstream's list (core/dnsserver/zdirectives.go) runs them.
func init() {
	dnsserver.Directives = []string{"ready", "health", "errors", "cache", "kubernetes", "forward"}
}

func main() {
	coremain.Run()
}
