import { onTestFinished } from 'vitest';

/**
 * A bidirectional stream driven by a test: `push` requests (sent in order), read what came back in `received`,
 * `halfClose` or `cancel` it. Cancelled when the test finishes.
 */
export function openDuplex<Req, Res>(
  call: (requests: AsyncIterable<Req>, options: { signal: AbortSignal }) => AsyncIterable<Res>,
) {
  const outgoing: Req[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let requestsEnded = false;
  async function* requests(): AsyncGenerator<Req> {
    for (;;) {
      while (outgoing.length > 0) yield outgoing.shift()!;
      if (closed) {
        requestsEnded = true;
        return;
      }
      await new Promise<void>((r) => (wake = r));
    }
  }
  const abort = new AbortController();
  onTestFinished(() => abort.abort());
  const received: Res[] = [];
  let error: unknown;
  let ended = false;
  const done = (async () => {
    try {
      for await (const r of call(requests(), { signal: abort.signal })) received.push(r);
    } catch (e) {
      error = e;
    } finally {
      ended = true;
    }
  })();
  return {
    received,
    push(request: Req): void {
      outgoing.push(request);
      wake?.();
    },
    halfClose(): void {
      closed = true;
      wake?.();
    },
    cancel: () => abort.abort(),
    get error() {
      return error;
    },
    get ended() {
      return ended;
    },
    /** The call has read every request and the half-close: it half-closes the stream towards the server. */
    get requestsEnded() {
      return requestsEnded;
    },
    done,
  };
}
