/**
 * Reconnection delays: the interval, doubled after each failed attempt up to the cap; back to the interval
 * once logged on again.
 */
export class Backoff {
  private failures = 0

  constructor(
    readonly intervalMs: number,
    readonly capMs: number,
  ) {}

  get nextMs(): number {
    return Math.min(this.capMs, this.intervalMs * 2 ** Math.min(this.failures, 30))
  }

  failed(): void {
    this.failures++
  }

  reset(): void {
    this.failures = 0
  }
}
