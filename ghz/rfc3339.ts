// Go's time.Time formats that ghz's output uses: RFC3339 ("2006-01-02T15:04:05Z07:00", the report's `date` and
// the Timestamp template field) and RFC3339Nano (each detail's `timestamp`, trailing zeros dropped), both in the
// local time zone as Go prints them.

/** `date` in RFC 3339, local offset ("Z" for UTC); with `fraction`, the milliseconds too (zeros trimmed). */
export function formatRfc3339(date: Date, fraction = false): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const offset = -date.getTimezoneOffset();
  const zone =
    offset === 0
      ? 'Z'
      : `${offset > 0 ? '+' : '-'}${pad(Math.trunc(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  const ms = date.getMilliseconds();
  const fractionText = fraction && ms > 0 ? `.${pad(ms, 3).replace(/0+$/, '')}` : '';
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}${fractionText}${zone}`
  );
}
