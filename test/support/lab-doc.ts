/**
 * Reads docs/lab.md into what test/lab.test.ts runs. The page's conventions:
 * - `## ` headings start exercises; `sh` blocks before the first one are setup, run before every exercise;
 * - a `sh` block is run; the `<!-- expect: <regex> -->` lines right after it are checked against its output
 *   (JavaScript regular expressions, multiline: `^` and `$` match at line ends);
 * - a `ts` block preceded by `<!-- source: <path> -->` must be exactly that file of the repository;
 * - other blocks (`text`, `json`) are shown, not run.
 */
export interface LabBlock {
  /** 1-based line of the opening fence, for messages. */
  line: number;
  code: string;
  expects: RegExp[];
}

export interface LabExercise {
  title: string;
  blocks: LabBlock[];
}

export interface LabDoc {
  setup: LabBlock[];
  exercises: LabExercise[];
  /** ts blocks that quote a file: the quoted text and the path. */
  sources: { path: string; code: string; line: number }[];
}

export function parseLabDoc(markdown: string): LabDoc {
  const lines = markdown.split('\n');
  const doc: LabDoc = { setup: [], exercises: [], sources: [] };
  let source: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) {
      doc.exercises.push({ title: line.slice(3).trim(), blocks: [] });
      continue;
    }
    const quoted = /^<!-- source: (\S+) -->$/.exec(line);
    if (quoted) {
      source = quoted[1];
      continue;
    }
    const fence = /^```(\w*)\s*$/.exec(line);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`docs/lab.md:${start + 1}: unclosed code block`);
    const code = `${body.join('\n')}\n`;
    if (fence[1] === 'ts' && source !== undefined) doc.sources.push({ path: source, code, line: start + 1 });
    source = undefined;
    if (fence[1] !== 'sh') continue;
    const expects: RegExp[] = [];
    while (i + 1 < lines.length) {
      const expect = /^<!-- expect: (.*) -->$/.exec(lines[i + 1]!);
      if (!expect) break;
      expects.push(new RegExp(expect[1]!, 'm'));
      i++;
    }
    const block = { line: start + 1, code, expects };
    const exercise = doc.exercises.at(-1);
    if (exercise) exercise.blocks.push(block);
    else doc.setup.push(block);
  }
  return doc;
}
