import { Mode as ProtoMode } from '../../gen/redlease/v1/admin.js';
import { InvalidArgumentError, type Mode } from '../coordinator/index.js';

/** Proto3 has no "unset" for scalars: a ttl of 0 means the server default. */
export function ttlFromProto(ttlMs: number): number | undefined {
  return ttlMs === 0 ? undefined : ttlMs;
}

export function optional(text: string): string | undefined {
  return text === '' ? undefined : text;
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
