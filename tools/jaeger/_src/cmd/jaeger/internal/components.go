// The shop's Jaeger components: what deploy/local/jaeger.yaml uses and nothing else. deploy/local/stack
// copies Jaeger's module source, puts this file over its cmd/jaeger/internal/components.go and builds
// cmd/jaeger, so the receivers, exporters, processors and extensions the shop never configures (Kafka,
// Zipkin, Prometheus, tail sampling, remote sampling, AWS authentication, ...) are not compiled: a fifth
// less CPU in a cold build. The leading underscore of _src keeps it out of the tools/jaeger module.
package internal

import (
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"

	"github.com/jaegertracing/jaeger/cmd/jaeger/internal/exporters/storageexporter"
	"github.com/jaegertracing/jaeger/cmd/jaeger/internal/extension/jaegerquery"
	"github.com/jaegertracing/jaeger/cmd/jaeger/internal/extension/jaegerstorage"
)

// Components is what the collector may instantiate: an OTLP receiver, the batch processor, the storage
// exporter, and the storage and query extensions.
func Components() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](batchprocessor.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](storageexporter.NewFactory()); err != nil {
		return f, err
	}
	if f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](jaegerstorage.NewFactory(), jaegerquery.NewFactory()); err != nil {
		return f, err
	}
	f.Connectors, err = otelcol.MakeFactoryMap[connector.Factory]()
	return f, err
}
