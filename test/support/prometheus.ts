/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for tests to read what
 * /metrics serves: `# TYPE` lines and samples `name{label="value",…} value [timestamp]`. `# HELP` and other
 * comments are skipped. Label values may hold the escapes \\, \" and \n; values may be NaN, +Inf or -Inf.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  name: string;
  labels: Labels;
  value: number;
}

export interface Exposition {
  /** Family name → counter, gauge, histogram, summary or untyped, from the `# TYPE` lines. */
  types: ReadonlyMap<string, string>;
  samples: readonly Sample[];
  /**
   * The value of the one sample named `name` whose labels are exactly `labels`; undefined when there is none
   * (prom-client leaves out a labelled series until it is first touched).
   */
  value(name: string, labels?: Labels): number | undefined;
  /** Every sample of `name` whose labels include `labels`. */
  all(name: string, labels?: Labels): Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const TYPE = /^#\s+TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(counter|gauge|histogram|summary|untyped)$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const type = TYPE.exec(line);
      if (type) {
        if (types.has(type[1]!)) throw new Error(`line ${index + 1}: a second # TYPE for ${type[1]}`);
        types.set(type[1]!, type[2]!);
      }
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (!sample) throw new Error(`line ${index + 1}: not a sample: ${line}`);
    samples.push({
      name: sample[1]!,
      labels: parseLabels(sample[2] ?? '', index + 1),
      value: parseValue(sample[3]!, index + 1),
    });
  }
  const matches = (labels: Labels, wanted: Labels): boolean =>
    Object.entries(wanted).every(([k, v]) => labels[k] === v);
  return {
    types,
    samples,
    value(name, labels = {}) {
      const found = samples.filter(
        (s) =>
          s.name === name &&
          matches(s.labels, labels) &&
          Object.keys(s.labels).length === Object.keys(labels).length,
      );
      if (found.length > 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
    all(name, labels = {}) {
      return samples.filter((s) => s.name === name && matches(s.labels, labels));
    },
  };
}

function parseLabels(text: string, line: number): Labels {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const label = LABEL.exec(text);
    if (!label) throw new Error(`line ${line}: bad labels at "${text.slice(start)}"`);
    const name = label[1]!;
    if (name in labels) throw new Error(`line ${line}: label ${name} twice`);
    labels[name] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (label[3] === '') break;
  }
  return labels;
}

/** Like Prometheus (Go's ParseFloat), special values in any case: prom-client writes NaN as `Nan`. */
function parseValue(text: string, line: number): number {
  const special = text.toLowerCase();
  if (special === '+inf' || special === 'inf') return Number.POSITIVE_INFINITY;
  if (special === '-inf') return Number.NEGATIVE_INFINITY;
  if (special === 'nan') return Number.NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`line ${line}: bad value "${text}"`);
  return value;
}

/** GET /metrics on the HTTP port: the content type and the parsed exposition. */
export async function scrape(httpPort: number): Promise<{ contentType: string; metrics: Exposition }> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`, {
    signal: AbortSignal.timeout(5_000),
  });
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`);
  return {
    contentType: response.headers.get('content-type') ?? '',
    metrics: parseExposition(await response.text()),
  };
}
