// Pins the Jaeger release deploy/local/stack builds (build_jaeger): its module source is copied and built
// with its own go.mod and go.sum; this go.sum verifies that source.
module shop.invalid/jaeger

go 1.24.6

require github.com/jaegertracing/jaeger v1.75.0
