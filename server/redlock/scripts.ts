import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** A Lua script read once from its file, run by EVALSHA, falling back to EVAL (which caches it again) when a
 *  node answers NOSCRIPT, e.g. after a restart emptied its script cache. */
export interface Script {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
  readonly keys: number;
}

function load(name: string, keys: number): Script {
  const lua = readFileSync(new URL(`./scripts/${name}.lua`, import.meta.url), 'utf8');
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex'), keys };
}

export const SCRIPTS = {
  acquire: load('acquire-3', 3),
  commit: load('commit-3', 3),
  release: load('release-2', 2),
  extend: load('extend-2', 2),
  inspect: load('inspect-2', 2),
} as const;

/** `keys` is always the resource's [lock, holder, fence] keys; each script takes the first `script.keys`. */
export async function runScript(
  redis: Redis,
  script: Script,
  resourceKeys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const keys = resourceKeys.slice(0, script.keys);
  try {
    return await redis.evalsha(script.sha, script.keys, ...keys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return await redis.eval(script.lua, script.keys, ...keys, ...args);
    }
    throw error;
  }
}
