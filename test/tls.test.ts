import { readFileSync } from 'node:fs';
import { ChannelCredentials, ClientError, createChannel, createClient, Status } from 'nice-grpc';
import { describe, expect, it, onTestFinished } from 'vitest';
import { LockServiceDefinition } from '../gen/redlease/v1/lock.js';
import { rejection, startTestServer, uniqueResource } from './support/server.js';

const fixture = (name: string) => new URL(`./fixtures/tls/${name}`, import.meta.url);
const pem = (name: string) => readFileSync(fixture(name));
const TLS = [
  '--tls-cert-file',
  fixture('server.pem').pathname,
  '--tls-key-file',
  fixture('server-key.pem').pathname,
];

function client(address: string, credentials: ChannelCredentials) {
  const channel = createChannel(address, credentials);
  onTestFinished(() => channel.close());
  return createClient(LockServiceDefinition, channel);
}

/** A call over a connection that cannot be established fails fast with UNAVAILABLE. */
async function refused(call: Promise<unknown>): Promise<string> {
  const error = await rejection(call, ClientError);
  expect(error.code).toBe(Status.UNAVAILABLE);
  return error.details;
}

describe('gRPC over TLS (test certificates in test/fixtures/tls)', () => {
  it('serves TLS clients that trust its CA; refuses plaintext clients and clients that do not trust it', async () => {
    const { address } = await startTestServer(TLS);
    const trusted = client(address, ChannelCredentials.createSsl(pem('ca.pem')));
    const resource = uniqueResource();
    expect((await trusted.acquire({ resource })).lease?.resource).toBe(resource);

    const deadline = () => ({ signal: AbortSignal.timeout(5_000) });
    await refused(client(address, ChannelCredentials.createInsecure()).acquire({ resource }, deadline()));
    const untrusting = client(address, ChannelCredentials.createSsl()); // system roots only
    expect(await refused(untrusting.acquire({ resource }, deadline()))).toMatch(
      /certificate|self.signed|issuer/i,
    );
  });

  it('with --tls-require-client-cert, only clients holding a certificate from the client CA get in', async () => {
    const { address } = await startTestServer([
      ...TLS,
      '--tls-ca-file',
      fixture('ca.pem').pathname,
      '--tls-require-client-cert',
    ]);
    const resource = uniqueResource();
    const withCert = client(
      address,
      ChannelCredentials.createSsl(pem('ca.pem'), pem('client-key.pem'), pem('client.pem')),
    );
    expect((await withCert.acquire({ resource })).lease?.resource).toBe(resource);
    const withoutCert = client(address, ChannelCredentials.createSsl(pem('ca.pem')));
    await refused(
      withoutCert.acquire({ resource: uniqueResource() }, { signal: AbortSignal.timeout(5_000) }),
    );
  });
});
