/**
 * An inference gateway that labels every trace span and every metric with the model version modelgate says is
 * serving — without a call on the request path. ActiveVersionClient polls GET /v1/models/<model>/active with
 * If-None-Match (mostly 304s), keeps the last value through outages, and emits `change` when it moves.
 *
 * Run: compile it with the project (add `examples` to tsconfig's include), start modelgate (`npm start`), then
 *   MODELGATE_URL=http://127.0.0.1:8080 MODEL=demo-classifier node dist/examples/gateway-otel.js
 * then `curl -XPOST localhost:9000/predict` and `curl localhost:9000/metrics`.
 *
 * OpenTelemetry: the few members of @opentelemetry/api used here are declared below as interfaces, so this file
 * needs no extra dependency. In a real gateway pass `trace.getTracer('gateway')` from @opentelemetry/api; its
 * Tracer and Span satisfy these interfaces. In your own code import the client from the modelgate package
 * instead of the relative path.
 */
import { createServer } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ActiveVersionClient, type ActiveVersion } from '../src/active/gateway-client.js';

/** The slice of @opentelemetry/api's Span / Tracer this example uses. */
export interface SpanLike {
  setAttribute(key: string, value: string | number | boolean): unknown;
  end(): void;
}
export interface TracerLike {
  startActiveSpan<T>(name: string, fn: (span: SpanLike) => T): T;
}

/**
 * Span attributes for the serving model. `unknown` until modelgate answered once; `stale` says modelgate could
 * not confirm the value with MLflow (the gateway keeps serving; the label says how sure it is).
 */
export function modelAttributes(model: string, v: ActiveVersion | null | undefined): Record<string, string | number | boolean> {
  if (v === undefined) return { 'ml.model.name': model, 'ml.model.version': 'unknown' };
  if (v === null) return { 'ml.model.name': model, 'ml.model.version': 'none' };
  return {
    'ml.model.name': v.model,
    'ml.model.version': String(v.version),
    'ml.model.run_id': v.runId ?? '',
    'ml.model.storage_uri': v.storageUri ?? '',
    'ml.model.approved_by': v.approvedBy.join(','),
    'ml.model.stale': v.stale === true,
  };
}

export function createGateway(opts: { modelgateUrl: string; model: string; tracer: TracerLike; predict: (input: unknown) => Promise<unknown> }) {
  const active = new ActiveVersionClient({ baseUrl: opts.modelgateUrl, model: opts.model, intervalMs: 5_000 });
  const registry = new Registry();
  const labelNames = ['model', 'model_version'] as const;
  const predictions = new Counter({ name: 'gateway_predictions_total', help: 'Predictions served, by model version', labelNames, registers: [registry] });
  const latency = new Histogram({ name: 'gateway_prediction_seconds', help: 'Prediction latency, by model version', labelNames, registers: [registry] });
  // The "info" pattern: one series with value 1 whose labels describe what serves; join it in PromQL.
  const info = new Gauge({ name: 'gateway_model_info', help: 'The model version serving (value 1)', labelNames: ['model', 'model_version', 'run_id'], registers: [registry] });

  const version = () => {
    const v = active.current();
    return v === undefined ? 'unknown' : v === null ? 'none' : String(v.version);
  };
  active.on('change', (v, previous) => {
    info.reset();
    info.set({ model: opts.model, model_version: version(), run_id: v?.runId ?? '' }, 1);
    process.stdout.write(`model ${opts.model}: version ${previous?.version ?? '-'} → ${v?.version ?? 'none'}\n`);
  });
  active.on('error', (err) => process.stderr.write(`modelgate not reachable (keeping version ${version()}): ${err.message}\n`));

  async function handlePredict(input: unknown): Promise<unknown> {
    return opts.tracer.startActiveSpan('predict', async (span) => {
      for (const [k, v] of Object.entries(modelAttributes(opts.model, active.current()))) span.setAttribute(k, v);
      const labels = { model: opts.model, model_version: version() };
      const end = latency.startTimer(labels);
      try {
        return await opts.predict(input);
      } finally {
        end();
        predictions.inc(labels);
        span.end();
      }
    });
  }

  return { active, registry, handlePredict };
}

/** Stand-in tracer that prints spans: replace with `trace.getTracer('gateway')` from @opentelemetry/api. */
const consoleTracer: TracerLike = {
  startActiveSpan(name, fn) {
    const attrs: Record<string, unknown> = {};
    return fn({
      setAttribute: (k, v) => (attrs[k] = v),
      end: () => process.stdout.write(`span ${name} ${JSON.stringify(attrs)}\n`),
    });
  },
};

async function main(): Promise<void> {
  const gw = createGateway({
    modelgateUrl: process.env.MODELGATE_URL ?? 'http://127.0.0.1:8080',
    model: process.env.MODEL ?? 'demo-classifier',
    tracer: consoleTracer,
    predict: async () => ({ score: Math.random() }),
  });
  // Wait for the first answer, but serve anyway if modelgate is down: spans then say version "unknown".
  await gw.active.start().catch((err: Error) => process.stderr.write(`starting without a model version: ${err.message}\n`));
  createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': gw.registry.contentType }).end(await gw.registry.metrics());
      return;
    }
    const out = await gw.handlePredict(null);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
  }).listen(Number(process.env.PORT ?? 9000), '127.0.0.1');
}

if (process.argv[1]?.endsWith('gateway-otel.js')) void main();
