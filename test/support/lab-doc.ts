/**
 * Reads docs/lab.md into what test/lab.test.ts runs. The page's conventions:
 * - `## ` headings start sections; `## Exercise N: …` ones are the lab's exercises. `sh` blocks before the first
 *   heading are setup, run before every section;
 * - a `sh` block is a command without Docker, and is run; the `<!-- expect: <regex> -->` lines right after it are
 *   checked against its output (JavaScript regular expressions, multiline: `^` and `$` match at line ends);
 * - a `sh compose` block is the Docker way of a step, shown and not run (test/compose.test.ts checks the services
 *   it names); the next block must be the same step without Docker (a `sh` block, or `sh demo`), so that the two
 *   stand side by side. `sh compose-only` is a Docker command with no such twin (the text says what to do
 *   instead);
 * - `sh demo` is `npm run demo`, shown and not run: the test starts the demo itself;
 * - a `ts` block preceded by `<!-- source: <path> -->` must be exactly that file of the repository;
 * - other blocks (`text`, `json`) are shown, not run.
 */
export interface LabBlock {
  /** 1-based line of the opening fence, for messages. */
  line: number;
  code: string;
  expects: RegExp[];
}

export interface DockerBlock {
  line: number;
  code: string;
  /** `compose`: the no-Docker twin follows; `compose-only`: none. */
  kind: 'compose' | 'compose-only';
  /** The kind of the next block in the same section, if any ('sh', 'sh demo', …). */
  next?: string;
}

export interface LabSection {
  title: string;
  /** `## Exercise N: …` */
  exercise: boolean;
  /** The blocks that run (`sh`). */
  blocks: LabBlock[];
  docker: DockerBlock[];
}

export interface LabDoc {
  setup: LabBlock[];
  sections: LabSection[];
  /** ts blocks that quote a file: the quoted text and the path. */
  sources: { path: string; code: string; line: number }[];
}

const KINDS = new Set(['sh', 'sh compose', 'sh compose-only', 'sh demo', 'ts', 'text', 'json', '']);

export function parseLabDoc(markdown: string): LabDoc {
  const lines = markdown.split('\n');
  const doc: LabDoc = { setup: [], sections: [], sources: [] };
  let source: string | undefined;
  /** The last Docker block of the current section, until the next block says what follows it. */
  let pending: DockerBlock | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) {
      const title = line.slice(3).trim();
      doc.sections.push({ title, exercise: /^Exercise \d+: /.test(title), blocks: [], docker: [] });
      pending = undefined;
      continue;
    }
    const quoted = /^<!-- source: (\S+) -->$/.exec(line);
    if (quoted) {
      source = quoted[1];
      continue;
    }
    const fence = /^```(\w*(?: [\w-]+)?)\s*$/.exec(line);
    if (!fence) continue;
    const kind = fence[1]!;
    if (!KINDS.has(kind)) throw new Error(`docs/lab.md:${i + 1}: unknown block kind ${JSON.stringify(kind)}`);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`docs/lab.md:${start + 1}: unclosed code block`);
    const code = `${body.join('\n')}\n`;
    if (kind === 'ts' && source !== undefined) doc.sources.push({ path: source, code, line: start + 1 });
    source = undefined;
    if (pending) pending.next = kind;
    pending = undefined;
    const section = doc.sections.at(-1);
    if (kind === 'sh compose' || kind === 'sh compose-only') {
      if (!section) throw new Error(`docs/lab.md:${start + 1}: a Docker block before the first section`);
      const docker: DockerBlock = {
        line: start + 1,
        code,
        kind: kind === 'sh compose' ? 'compose' : 'compose-only',
      };
      section.docker.push(docker);
      pending = docker;
      continue;
    }
    if (kind !== 'sh') continue;
    const expects: RegExp[] = [];
    while (i + 1 < lines.length) {
      const expect = /^<!-- expect: (.*) -->$/.exec(lines[i + 1]!);
      if (!expect) break;
      expects.push(new RegExp(expect[1]!, 'm'));
      i++;
    }
    const block = { line: start + 1, code, expects };
    if (section) section.blocks.push(block);
    else doc.setup.push(block);
  }
  return doc;
}
