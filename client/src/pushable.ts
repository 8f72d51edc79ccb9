/**
 * The request side of a streaming call: `push` items, `end()` to half-close; the call `for await`s them. Items
 * pushed after `end()` are dropped (the stream they were meant for is gone). Bounded by its producer: the
 * KeepAlive stream keeps at most one unanswered renewal per lease per renewal interval.
 */
export class Pushable<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) yield item;
      else if (this.ended) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
