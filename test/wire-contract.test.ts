// Wire-contract checks on the generated code (client/src/gen); no network, no Redis.
import { describe, expect, it } from 'vitest';
import {
  AdminServiceDefinition,
  ListNodesResponse,
  Mode,
  ModeResponse,
  SetModeRequest,
} from '../gen/redlease/v1/admin.js';
import {
  AcquireRequest,
  AcquireResponse,
  DescribeResponse,
  KeepAliveResponse,
  LeaseState,
  LockServiceDefinition,
} from '../gen/redlease/v1/lock.js';

const MAX_TOKEN = 2 ** 53 - 1;

describe('64-bit fields round-trip as exact JS numbers', () => {
  it('AcquireResponse with fencing_token = 2^53 - 1 and valid_until_ms = Date.now()', () => {
    const now = Date.now();
    const original = AcquireResponse.fromPartial({
      lease: {
        resource: 'orders/42',
        lockId: '0123456789abcdef0123456789abcdef',
        fencingToken: MAX_TOKEN,
        validityMs: 29_700,
        validUntilMs: now,
        nodes: ['redis-1', 'redis-2'],
        quorum: 2,
        attempts: 1,
      },
    });
    const bytes = AcquireResponse.encode(original).finish();
    const decoded = AcquireResponse.decode(bytes);

    expect(decoded).toEqual(original);
    expect(typeof decoded.lease?.fencingToken).toBe('number');
    expect(decoded.lease?.fencingToken).toBe(MAX_TOKEN);
    expect(Number.isSafeInteger(decoded.lease?.fencingToken)).toBe(true);
    expect(typeof decoded.lease?.validUntilMs).toBe('number');
    expect(decoded.lease?.validUntilMs).toBe(now);
  });

  it('KeepAliveResponse and DescribeResponse carry the same token exactly', () => {
    const ka = KeepAliveResponse.decode(
      KeepAliveResponse.encode(
        KeepAliveResponse.fromPartial({ state: LeaseState.LEASE_STATE_HELD, fencingToken: MAX_TOKEN }),
      ).finish(),
    );
    expect(ka.fencingToken).toBe(MAX_TOKEN);
    expect(ka.state).toBe(LeaseState.LEASE_STATE_HELD);

    const d = DescribeResponse.decode(
      DescribeResponse.encode(
        DescribeResponse.fromPartial({ locked: true, fencingToken: MAX_TOKEN }),
      ).finish(),
    );
    expect(d.fencingToken).toBe(MAX_TOKEN);
  });

  it('AcquireRequest fields keep their proto3 defaults', () => {
    const req = AcquireRequest.decode(
      AcquireRequest.encode(AcquireRequest.fromPartial({ resource: 'r' })).finish(),
    );
    expect(req).toEqual({
      resource: 'r',
      ttlMs: 0,
      clientId: '',
      waitTimeoutMs: 0,
      lockId: '',
      maxHoldMs: 0,
    });
  });
});

describe('service definitions', () => {
  it('LockService has the six methods, KeepAlive and Session bidi streaming', () => {
    expect(LockServiceDefinition.fullName).toBe('redlease.v1.LockService');
    const methods = LockServiceDefinition.methods;
    expect(Object.keys(methods).sort()).toEqual([
      'acquire',
      'describe',
      'extend',
      'keepAlive',
      'release',
      'session',
    ]);

    const shape = Object.fromEntries(
      Object.values(methods).map((m) => [m.name, [m.requestStream, m.responseStream]]),
    );
    // nice-grpc builds the gRPC path as `/${fullName}/${name}`, e.g. /redlease.v1.LockService/KeepAlive.
    expect(shape).toEqual({
      Acquire: [false, false],
      Release: [false, false],
      Extend: [false, false],
      KeepAlive: [true, true],
      Session: [true, true],
      Describe: [false, false],
    });
    expect(methods.keepAlive.requestStream).toBe(true);
    expect(methods.keepAlive.responseStream).toBe(true);
  });

  it('AdminService has its three unary methods; GetMode and SetMode share ModeResponse', () => {
    expect(AdminServiceDefinition.fullName).toBe('redlease.v1.AdminService');
    const methods = AdminServiceDefinition.methods;
    expect(Object.keys(methods).sort()).toEqual(['getMode', 'listNodes', 'setMode']);
    expect(Object.values(methods).map((m) => m.name)).toEqual(['GetMode', 'SetMode', 'ListNodes']);
    for (const m of Object.values(methods)) {
      expect(m.requestStream).toBe(false);
      expect(m.responseStream).toBe(false);
    }
    expect(methods.getMode.responseType).toBe(ModeResponse);
    expect(methods.setMode.responseType).toBe(ModeResponse);
    expect(methods.setMode.requestType).toBe(SetModeRequest);
    expect(methods.listNodes.responseType).toBe(ListNodesResponse);
  });
});

describe('enums', () => {
  it('LeaseState', () => {
    expect(LeaseState.LEASE_STATE_UNSPECIFIED).toBe(0);
    expect(LeaseState.LEASE_STATE_HELD).toBe(1);
    expect(LeaseState.LEASE_STATE_LOST).toBe(2);
    expect(LeaseState.LEASE_STATE_RELEASED).toBe(3);
  });

  it('Mode', () => {
    expect(Mode.MODE_UNSPECIFIED).toBe(0);
    expect(Mode.MODE_REDLOCK).toBe(1);
    expect(Mode.MODE_SINGLE).toBe(2);
  });
});
