/**
 * Work that runs after the HTTP answer (Slack interactions must be acknowledged within 3 s, before Temporal has
 * answered). Tracked so the server can wait for it on close and failures are logged instead of lost.
 */
import type { Logger } from '../observability/log.js';

export class BackgroundTasks {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly logger: Logger) {}

  run(what: string, fn: () => Promise<void>): void {
    const p = Promise.resolve()
      .then(fn)
      .catch((err: unknown) => this.logger.error({ err, what }, 'background task failed'))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Wait for running tasks, at most timeoutMs. */
  async drain(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    await Promise.race([Promise.allSettled([...this.pending]).then(() => undefined), timeout]);
    clearTimeout(timer);
  }
}
