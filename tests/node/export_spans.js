// The OpenTelemetry JS SDK's OTLP/HTTP exporter (OTLP/JSON) sending spans to `otel-db serve`.
// Usage: node export_spans.js BASE_URL TRACES; prints the spans the SDK recorded, one JSON object a line.
const { context, trace, SpanKind, SpanStatusCode } = require('@opentelemetry/api');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const {
  BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider,
} = require('@opentelemetry/sdk-trace');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

async function main(baseUrl, traces) {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'storefront', 'service.version': '2.0.1' }),
    spanProcessors: [
      new SimpleSpanProcessor({ exporter: memory }),
      new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${baseUrl}/v1/traces` }) }),
    ],
  });
  const tracer = provider.getTracer('storefront.web', '2.0.1');
  for (let i = 0; i < traces; i += 1) {
    const root = tracer.startSpan(`GET /product/${i}`, {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': 'GET', 'product.id': i, 'cache.hit': i % 2 === 0, ratio: 0.25 },
    });
    root.addEvent('rendered', { template: 'product.html' });
    const child = tracer.startSpan('SELECT products', {
      kind: SpanKind.CLIENT,
      attributes: { 'db.system.name': 'postgresql' },
      links: [{ context: root.spanContext(), attributes: { why: 'prefetch' } }],
    }, trace.setSpan(context.active(), root));
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' });
    child.end();
    root.end();
  }
  await provider.forceFlush();
  const finished = memory.getFinishedSpans(); // shutdown() empties the in-memory exporter
  await provider.shutdown();
  for (const span of finished) {
    const { traceId, spanId } = span.spanContext();
    console.log(JSON.stringify({
      traceId,
      spanId,
      parentSpanId: span.parentSpanContext ? span.parentSpanContext.spanId : null,
      name: span.name,
      attributes: span.attributes,
      events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
      links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: l.attributes })),
    }));
  }
}

main(process.argv[2], Number(process.argv[3])).catch((error) => { console.error(error); process.exit(1); });
