/**
 * Remembers delivery ids (X-GitHub-Delivery, X-MLflow-Delivery-Id) so a redelivered or replayed webhook has one
 * effect. Bounded in size (oldest dropped first) and in time (an id is forgotten after ttlMs). In memory: after
 * a restart a redelivery may get through, which is harmless because every effect behind it is idempotent by
 * business key (start with USE_EXISTING, signals the workflow ignores when repeated).
 */
export class DeliveryDedupe {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 24 * 3600_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `id` is new (and now claimed); false when it was seen within the TTL. */
  claim(id: string): boolean {
    const t = this.now();
    this.expire(t);
    const at = this.seen.get(id);
    if (at !== undefined && t - at < this.ttlMs) return false;
    this.seen.delete(id);
    this.seen.set(id, t);
    while (this.seen.size > this.maxEntries) {
      const oldest = this.seen.keys().next().value as string;
      this.seen.delete(oldest);
    }
    return true;
  }

  /** Forget a claimed id after its processing failed, so the sender's retry is processed. */
  release(id: string): void {
    this.seen.delete(id);
  }

  get size(): number {
    return this.seen.size;
  }

  private expire(t: number): void {
    // Insertion order is claim order, so expired entries are at the front.
    for (const [id, at] of this.seen) {
      if (t - at < this.ttlMs) break;
      this.seen.delete(id);
    }
  }
}
