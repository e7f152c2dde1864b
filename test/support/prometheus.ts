/**
 * A real Prometheus server for canary tests (Debian's `prometheus` package; scripts/test.sh installs it when
 * apt and root are available): started on a free loopback port with a generated config — a 1 s scrape of the
 * targets in a file_sd JSON file, so a test can add its model-server stand-in after the start — and its own
 * storage folder. Tests that need it skip with `prometheusMissing()`'s reason when the binary is not there.
 *
 *   const prom = await startPrometheus({ targets: [server.target] });
 *   await prom.waitForScrape(server.target);       // data from now on is queryable
 *   ... createPrometheusClient / new PrometheusClient({ url: prom.url }) ...
 *   await prom.stop();                              // a test of "Prometheus unreachable"
 *   await prom.start();                             // same port and storage again
 */
import { accessSync, constants, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { request } from 'undici';
import { freePort, startProcess, waitUntil, type ManagedProcess } from '../../src/stack/processes.js';
import { eventually } from './wait.js';

/** MODELGATE_TEST_PROMETHEUS_BIN, then `prometheus` on PATH, then /usr/bin/prometheus; undefined when absent. */
export function resolvePrometheusBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.MODELGATE_TEST_PROMETHEUS_BIN, ...(env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'prometheus')), '/usr/bin/prometheus'];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Why Prometheus tests cannot run here (printed as the skip reason), or undefined when they can. */
export function prometheusMissing(): string | undefined {
  if (resolvePrometheusBinary()) return undefined;
  return 'prometheus binary not found (apt-get install prometheus, or set MODELGATE_TEST_PROMETHEUS_BIN); scripts/test.sh installs it when apt and root are available';
}

export interface PrometheusServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Replace the scrape targets (host:port); Prometheus picks them up within about a second. */
  setTargets(targets: string[]): void;
  /** Until `target` has been scraped successfully after this call: everything it exposed before is queryable. */
  waitForScrape(target: string, timeoutMs?: number): Promise<void>;
  /** One instant query's raw `data` (for test assertions; the code under test uses src/prometheus/client.ts). */
  query(promql: string): Promise<{ resultType: string; result: unknown }>;
  /** Stop the server (data is kept). */
  stop(): Promise<void>;
  /** Start it again on the same port and storage. */
  start(): Promise<void>;
  readonly process: ManagedProcess | undefined;
}

export interface PrometheusOptions {
  targets?: string[];
  /** Default: a folder under MODELGATE_TEST_DATA_DIR (run-tests.ts) or the system temp folder. */
  dataDir?: string;
  scrapeIntervalMs?: number;
}

export async function startPrometheus(opts: PrometheusOptions = {}): Promise<PrometheusServer> {
  const bin = resolvePrometheusBinary();
  if (!bin) throw new Error(prometheusMissing());
  const base = process.env.MODELGATE_TEST_DATA_DIR ?? tmpdir();
  mkdirSync(base, { recursive: true });
  const dir = opts.dataDir ?? mkdtempSync(join(base, 'prometheus-'));
  mkdirSync(join(dir, 'data'), { recursive: true });
  const scrape = `${Math.max(1, Math.round((opts.scrapeIntervalMs ?? 1000) / 1000))}s`;
  const targetsFile = join(dir, 'targets.json');
  const setTargets = (targets: string[]) => writeFileSync(targetsFile, JSON.stringify([{ targets, labels: {} }]));
  setTargets(opts.targets ?? []);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      `  scrape_interval: ${scrape}`,
      `  evaluation_interval: ${scrape}`,
      'scrape_configs:',
      '  - job_name: model-servers',
      `    scrape_interval: ${scrape}`,
      '    scrape_timeout: 900ms',
      '    file_sd_configs:',
      `      - files: [${JSON.stringify(targetsFile)}]`,
      '        refresh_interval: 1s',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let proc: ManagedProcess | undefined;

  async function start(): Promise<void> {
    proc = startProcess(
      'prometheus',
      bin!,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=2h',
        '--log.level=warn',
      ],
      { logFile: join(dir, 'prometheus.log') },
    );
    await waitUntil(
      `Prometheus at ${url}`,
      async () => {
        const res = await request(`${url}/-/ready`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await res.body.dump();
        return res.statusCode === 200;
      },
      { timeoutMs: 60_000, intervalMs: 200, process: proc },
    );
  }

  async function query(promql: string): Promise<{ resultType: string; result: unknown }> {
    const res = await request(`${url}/api/v1/query?${new URLSearchParams({ query: promql }).toString()}`, { headersTimeout: 5000, bodyTimeout: 5000 });
    const body = (await res.body.json()) as { status: string; data: { resultType: string; result: unknown }; error?: string };
    if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error ?? res.statusCode}`);
    return body.data;
  }

  await start();
  return {
    url,
    port,
    setTargets,
    async waitForScrape(target, timeoutMs = 30_000) {
      const since = Date.now() / 1000;
      const sel = `up{instance=${JSON.stringify(target)}}`;
      await eventually(
        `a successful scrape of ${target} by Prometheus`,
        async () => {
          const d = await query(`timestamp(${sel}) and ${sel} == 1`);
          const r = d.result as Array<{ value: [number, string] }>;
          return r.length && Number(r[0].value[1]) > since ? true : undefined;
        },
        timeoutMs,
      );
    },
    query,
    async stop() {
      await proc?.stop();
    },
    start,
    get process() {
      return proc;
    },
  };
}
