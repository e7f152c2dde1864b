/**
 * A bare /metrics endpoint for processes without the API (the standalone worker): serves the process registry,
 * answers 404 to anything else, and nothing more.
 */
import { createServer } from 'node:http';
import { metricsRegistry } from './metrics.js';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port (port 0: any free one). Rejects with the address when it cannot bind. */
export async function startMetricsServer(bindAddress: string): Promise<MetricsServer> {
  const i = bindAddress.lastIndexOf(':');
  const host = bindAddress.slice(0, i);
  const port = Number(bindAddress.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    metricsRegistry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metricsRegistry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`MODELGATE_METRICS_ADDRESS: cannot listen on ${bindAddress}: ${err.message}`)));
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
