// Go's time.ParseDuration, which ghz uses for every duration in its flags and config files ("10s", "1m30s",
// "250ms", "0"), returning nanoseconds. A bare number other than 0 is refused with Go's own message, as ghz does.

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign
  μs: 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Nanoseconds in `text`, a Go duration string; throws Go's error text for anything Go would refuse. */
export function parseDuration(text: string): number {
  const invalid = () => new Error(`time: invalid duration "${text}"`);
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();
  let total = 0;
  while (rest !== '') {
    const number = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    const [whole = '', fraction = ''] = [number[1], number[2]];
    if (whole === '' && fraction === '') throw invalid();
    rest = rest.slice(number[0].length);
    const unit = /^[^\d.]+/.exec(rest)?.[0];
    if (unit === undefined) throw new Error(`time: missing unit in duration "${text}"`);
    const scale = UNIT_NS[unit];
    if (scale === undefined) throw new Error(`time: unknown unit "${unit}" in duration "${text}"`);
    rest = rest.slice(unit.length);
    total += Number(whole || '0') * scale + (fraction ? Math.trunc(Number(`0.${fraction}`) * scale) : 0);
  }
  return sign * total;
}
