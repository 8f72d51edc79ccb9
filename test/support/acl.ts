import { readFileSync } from 'node:fs';

/** The password the tests give the documented user (the README writes `>PASSWORD`). */
export const ACL_PASSWORD = 's3cret-for-tests';

const README = new URL('../../README.md', import.meta.url);

/**
 * The rules of the README's `ACL SETUSER redlease …` command (the least privilege a redlease server needs on each
 * Redis node), read from the README itself so that the tests run exactly what users are told to configure: the
 * command starts on a line of its own and goes on over the indented lines after it, up to the end of its code
 * block. Its `>PASSWORD` becomes `>` + ACL_PASSWORD.
 */
export function readmeAclRules(readme = readFileSync(README, 'utf8')): string[] {
  const lines = readme.split('\n');
  const starts = lines.flatMap((line, i) => (/^\s*ACL SETUSER redlease\s/.test(line) ? [i] : []));
  if (starts.length !== 1) {
    throw new Error(`README.md: expected one "ACL SETUSER redlease …" line, found ${starts.length}`);
  }
  const command: string[] = [];
  for (let i = starts[0]!; i < lines.length && !/^\s*```/.test(lines[i]!) && lines[i]!.trim() !== ''; i++) {
    command.push(lines[i]!);
  }
  const words = command.join(' ').trim().split(/\s+/);
  const rules = words.slice(3); // after ACL SETUSER redlease
  if (!rules.includes('>PASSWORD')) {
    throw new Error(`README.md: the ACL SETUSER line sets no ">PASSWORD": ${words.join(' ')}`);
  }
  return rules.map((rule) => (rule === '>PASSWORD' ? `>${ACL_PASSWORD}` : rule));
}

/** The least privilege a redlease server needs on each Redis node, exactly as the README lists it. */
export const ACL_RULES = readmeAclRules();
