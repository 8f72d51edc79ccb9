import { Mode as ProtoMode, type NodeStatus as ProtoNodeStatus } from '../../gen/redlease/v1/admin.js';
import { type KeepAliveResponse, LeaseState, type Lease as ProtoLease } from '../../gen/redlease/v1/lock.js';
import type { KeepAliveAnswer } from '../coordinator/lease-session.js';
import { InvalidArgumentError, type Lease, type Mode, type NodeStatus } from '../redlock/index.js';

/** Proto3 has no "unset" for scalars: a ttl of 0 means the server default. */
export function ttlFromProto(ttlMs: number): number | undefined {
  return ttlMs === 0 ? undefined : ttlMs;
}

export function optional(text: string): string | undefined {
  return text === '' ? undefined : text;
}

export function leaseToProto(lease: Lease): ProtoLease {
  return {
    resource: lease.resource,
    lockId: lease.lockId,
    fencingToken: lease.fencingToken,
    validityMs: lease.validityMs,
    validUntilMs: lease.validUntilMs,
    nodes: lease.nodes,
    quorum: lease.quorum,
    attempts: lease.attempts,
  };
}

const STATE: Record<KeepAliveAnswer['state'], LeaseState> = {
  held: LeaseState.LEASE_STATE_HELD,
  lost: LeaseState.LEASE_STATE_LOST,
  released: LeaseState.LEASE_STATE_RELEASED,
};

export function answerToProto(answer: KeepAliveAnswer): KeepAliveResponse {
  return { ...answer, state: STATE[answer.state] };
}

export function modeToProto(mode: Mode): ProtoMode {
  return mode === 'single' ? ProtoMode.MODE_SINGLE : ProtoMode.MODE_REDLOCK;
}

export function modeFromProto(mode: ProtoMode): Mode {
  if (mode === ProtoMode.MODE_REDLOCK) return 'redlock';
  if (mode === ProtoMode.MODE_SINGLE) return 'single';
  throw new InvalidArgumentError(
    'mode',
    'MODE_INVALID',
    `mode must be MODE_REDLOCK (1) or MODE_SINGLE (2), got ${mode === ProtoMode.MODE_UNSPECIFIED ? 'MODE_UNSPECIFIED (0)' : String(mode)}`,
  );
}

export function nodeToProto(node: NodeStatus): ProtoNodeStatus {
  return {
    name: node.name,
    address: node.address,
    up: node.up,
    latencyMs: node.latencyMs,
    runId: node.runId,
    quarantined: node.quarantined,
    quarantineRemainingMs: node.quarantineRemainingMs,
    error: node.error,
    voting: node.voting,
    quarantineReason: node.quarantineReason,
  };
}
