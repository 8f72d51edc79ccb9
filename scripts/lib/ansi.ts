/**
 * ANSI colours for the demo's terminal output, and when to use them: only on a terminal, and never when NO_COLOR
 * is set to anything but the empty string (https://no-color.org).
 */

/** SGR codes used by the demo: 1 bold, 2 dim, 3x foreground, 9x bright foreground. */
export type AnsiCode =
  | '1'
  | '2'
  | '31'
  | '32'
  | '33'
  | '34'
  | '35'
  | '36'
  | '90'
  | '91'
  | '92'
  | '93'
  | '94'
  | '95'
  | '96';

export interface Ansi {
  readonly enabled: boolean;
  /** `text` in colour `code`, or unchanged when colour is off. */
  paint(code: AnsiCode, text: string): string;
}

/** Colour for `stream` (a terminal, unless NO_COLOR), or forced on/off with `enabled`. */
export function ansi(enabled: boolean = process.stdout.isTTY === true && !process.env.NO_COLOR): Ansi {
  return {
    enabled,
    paint: (code, text) => (enabled ? `\x1b[${code}m${text}\x1b[0m` : text),
  };
}
