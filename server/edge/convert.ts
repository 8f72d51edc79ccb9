import type { NodeStatus as ProtoNodeStatus } from '../../gen/redlease/v1/admin.js';
import {
  type DescribeResponse,
  type KeepAliveResponse,
  LeaseState,
  LossReason,
  type Lease as ProtoLease,
} from '../../gen/redlease/v1/lock.js';
import type {
  Grant,
  KeepAliveAnswer,
  Lease,
  LossKind,
  NodeStatus,
  ResourceState,
} from '../coordinator/index.js';

/**
 * The domain's answers in the wire contract's shapes (lock.proto, admin.proto), for both edges: the gRPC edge sends
 * these messages, and the HTTP edge sends the same fields under their proto names (snake_case, see `snakeKeys`).
 */

/** A granted or extended lease; `queuedMs` is 0 for an extension. */
export function leaseToProto(lease: Lease | Grant): ProtoLease {
  return {
    resource: lease.resource,
    lockId: lease.lockId,
    fencingToken: lease.fencingToken,
    validityMs: lease.validityMs,
    validUntilMs: lease.validUntilMs,
    nodes: lease.nodes,
    quorum: lease.quorum,
    attempts: lease.attempts,
    queuedMs: 'queuedMs' in lease ? lease.queuedMs : 0,
    maxHoldMs: 'maxHoldMs' in lease ? lease.maxHoldMs : 0,
  };
}

export function describeToProto(state: ResourceState): DescribeResponse {
  return {
    resource: state.resource,
    locked: state.locked,
    holderClientId: state.holderClientId,
    fencingToken: state.fencingToken,
    validityMs: state.validityMs,
    // -1 (a key without expiry, set by a foreign client) is not a duration: reported as 0.
    nodes: state.nodes.map((n) => ({
      node: n.node,
      reachable: n.reachable,
      held: n.held,
      ttlMs: Math.max(0, n.ttlMs),
    })),
    waiters: state.waiters,
  };
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

const STATE: Record<KeepAliveAnswer['state'], LeaseState> = {
  held: LeaseState.LEASE_STATE_HELD,
  lost: LeaseState.LEASE_STATE_LOST,
  released: LeaseState.LEASE_STATE_RELEASED,
};

/**
 * Internal loss kinds onto the wire's LossReason. `not_held` (a renewal found this lock id gone from a quorum)
 * is EXPIRED: lock.proto says why (the nodes cannot tell who, if anyone, holds the resource now).
 */
const LOSS: Record<LossKind, LossReason> = {
  expired: LossReason.LOSS_REASON_EXPIRED,
  not_held: LossReason.LOSS_REASON_EXPIRED,
  renewal_failed: LossReason.LOSS_REASON_RENEWAL_FAILED,
  taken_over: LossReason.LOSS_REASON_TAKEN_OVER,
  hold_cap: LossReason.LOSS_REASON_HOLD_CAP,
  mode_switch: LossReason.LOSS_REASON_MODE_SWITCH,
};

export function lossReasonToProto(kind: LossKind | undefined): LossReason {
  return kind ? LOSS[kind] : LossReason.LOSS_REASON_UNSPECIFIED;
}

export function answerToProto(answer: KeepAliveAnswer): KeepAliveResponse {
  const { loss, ...rest } = answer;
  return { ...rest, state: STATE[answer.state], lossReason: lossReasonToProto(loss) };
}

type Snake<S extends string> = S extends `${infer Head}${infer Tail}`
  ? Head extends Lowercase<Head>
    ? `${Head}${Snake<Tail>}`
    : `_${Lowercase<Head>}${Snake<Tail>}`
  : S;

type SnakeKeys<T> = T extends readonly (infer E)[]
  ? SnakeKeys<E>[]
  : T extends object
    ? { [K in keyof T as K extends string ? Snake<K> : K]: SnakeKeys<T[K]> }
    : T;

/** A message with its fields under their proto names (lockId → lock_id), as the lab JSON API sends them. */
export function snakeKeys<T>(message: T): SnakeKeys<T> {
  if (Array.isArray(message)) return message.map(snakeKeys) as SnakeKeys<T>;
  if (message === null || typeof message !== 'object') return message as SnakeKeys<T>;
  return Object.fromEntries(
    Object.entries(message).map(([key, value]) => [
      key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      snakeKeys(value),
    ]),
  ) as SnakeKeys<T>;
}
