/**
 * Types for the part of node-redlock 5.0.0-beta.2 the bench uses. The package ships types
 * (dist/index.d.ts), but its package.json `exports` has no "types" condition, so NodeNext resolution cannot find
 * them; these mirror them.
 */
declare module 'redlock' {
  import type { EventEmitter } from 'node:events';
  import type { Redis } from 'ioredis';

  export interface Settings {
    readonly driftFactor: number;
    readonly retryCount: number;
    readonly retryDelay: number;
    readonly retryJitter: number;
    readonly automaticExtensionThreshold: number;
  }

  /** A quorum could not be reached within the retry window (held, split vote, or nodes failing). */
  export class ExecutionError extends Error {}

  export class Lock {
    readonly resources: string[];
    readonly value: string;
    expiration: number;
    release(): Promise<unknown>;
  }

  export default class Redlock extends EventEmitter {
    constructor(clients: Iterable<Redis>, settings?: Partial<Settings>);
    acquire(resources: string[], duration: number, settings?: Partial<Settings>): Promise<Lock>;
  }
}
