/**
 * A single-consumer queue turned into an async iterable: producers `push` items and finally `end()` or
 * `fail(error)`; the consumer `for await`s them. Used to merge a KeepAlive stream's answers and its unasked LOST
 * notices into one response stream. Unbounded by itself: producers bound it (one answer per accepted request,
 * at most one LOST per attached lease).
 */
export class AsyncChannel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;

  /** Items pushed and not yet taken by the consumer. */
  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.done) return;
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.done = true;
    this.wake?.();
  }

  fail(error: Error): void {
    if (this.done) return;
    this.error = error;
    this.done = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift() as T;
        continue;
      }
      if (this.error) throw this.error;
      if (this.done) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
