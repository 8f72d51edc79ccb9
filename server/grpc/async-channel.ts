import { pushable } from 'it-pushable';

/**
 * The answers of one streaming call: producers `push` them and finally `end()` or `fail(error)`; the call
 * `for await`s them. Used to merge a stream's answers and its unasked notices into one response stream.
 * Unbounded by itself: producers bound it, reading `size`.
 *
 * The queue is it-pushable's. This wrapper adds one rule it does not have: `fail(error)` ends the stream with
 * the error *after* the answers already pushed (it-pushable's `end(error)` drops the unread ones), so at shutdown
 * every operation in flight is answered before UNAVAILABLE. Whichever of `end` and `fail` comes first decides how
 * the stream ends; pushes after it are dropped.
 */
export class AsyncChannel<T> implements AsyncIterable<T> {
  readonly #queue = pushable<T>({ objectMode: true });
  #closed = false;
  #error: Error | undefined;

  /** Items pushed and not yet taken by the consumer (one per item: ours have no byteLength). */
  get size(): number {
    return this.#queue.readableLength;
  }

  push(item: T): void {
    this.#queue.push(item);
  }

  end(): void {
    this.#closed = true;
    this.#queue.end();
  }

  fail(error: Error): void {
    if (this.#closed) return;
    this.#error = error;
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* this.#queue;
    if (this.#error) throw this.#error;
  }
}
