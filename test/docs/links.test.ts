import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

/**
 * A clone must be readable on its own: no markdown link, and no path a comment or a doc mentions,
 * may point outside the repository or at a file it does not have (README and comments once sent
 * readers to a contract beside the repository, which no clone has).
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Files whose comments and strings are scanned for paths (besides markdown). */
const CODE = new Set(['.ts', '.js', '.mjs', '.cjs', '.sh', '.yaml', '.yml', '.conf', '.template']);

/** Generated or local directories a source tree without git (an unpacked archive) may hold. */
const NOT_SOURCE = /^(node_modules|\.git|run|results|dist|cert)(\/|$)/;

/**
 * Every file of the repository: tracked, plus new ones not ignored (so a new doc is checked before
 * it is committed); without git, every file but NOT_SOURCE.
 */
function repositoryFiles(root: string): string[] {
  let listed: string[];
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    listed = out.split('\0').filter(Boolean);
  } catch {
    listed = readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(root, join(e.parentPath, e.name)))
      .filter((f) => !NOT_SOURCE.test(f));
  }
  return [...new Set(listed)].filter((f) => existsSync(join(root, f)));
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of withoutFences(markdown).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m?.[1]) continue;
    const text = m[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_~]/g, (c) => (c === '_' ? c : ''));
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n ? `${base}-${n}` : base);
  }
  return anchors;
}

/** The text with fenced code blocks blanked (line count kept), so examples are not read as links. */
function withoutFences(markdown: string): string {
  let inFence = false;
  return markdown
    .split('\n')
    .map((line) => {
      if (/^\s*(```|~~~)/.test(line)) {
        inFence = !inFence;
        return '';
      }
      return inFence ? '' : line;
    })
    .join('\n');
}

interface Reference {
  file: string;
  line: number;
  target: string;
  /** A markdown link (checked with its anchor) or a path mentioned in text, code or a comment. */
  kind: 'link' | 'mention';
}

function referencesIn(file: string, text: string): Reference[] {
  const refs: Reference[] = [];
  const lines = (extname(file) === '.md' ? withoutFences(text) : text).split('\n');
  lines.forEach((line, i) => {
    const at = { file, line: i + 1 };
    if (extname(file) === '.md') {
      // Inline links and images `[x](target "title")`, reference definitions `[x]: target`.
      for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
        refs.push({ ...at, target: m[1] ?? '', kind: 'link' });
      const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line);
      if (def?.[1]) refs.push({ ...at, target: def[1], kind: 'link' });
    }
    // Paths that climb out of their directory, and any mention of a markdown file.
    for (const m of line.matchAll(/(?<![\w./-])((?:\.\.?\/)+[\w./@-]*)/g))
      refs.push({ ...at, target: m[1] ?? '', kind: 'mention' });
    for (const m of line.matchAll(/(?<![\w./:-])((?:[\w@-]+\/)*[\w-]+\.md)(?![\w/-])/gi))
      if (!m[1]?.startsWith('.')) refs.push({ ...at, target: m[1] ?? '', kind: 'mention' });
  });
  return refs;
}

/** Every reference in `files` (paths relative to `root`) that leaves `root` or names nothing there. */
function brokenReferences(root: string, files: string[]): string[] {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (path: string) => {
    const known = anchorCache.get(path);
    if (known) return known;
    const found = anchorsOf(readFileSync(path, 'utf8'));
    anchorCache.set(path, found);
    return found;
  };
  for (const file of files) {
    const ext = extname(file);
    if (ext !== '.md' && !CODE.has(ext) && !/(^|\/)Dockerfile$/.test(file)) continue;
    const abs = join(root, file);
    const text = readFileSync(abs, 'utf8');
    for (const ref of referencesIn(file, text)) {
      const where = `${ref.file}:${ref.line}: ${ref.target}`;
      if (/^[a-z][a-z0-9+.-]*:/i.test(ref.target)) continue; // https:, mailto:, node:…
      if (ref.target.startsWith('#')) {
        if (ref.kind === 'link' && ext === '.md' && !anchors(abs).has(ref.target.slice(1)))
          problems.push(`${where} (no such heading)`);
        continue;
      }
      const [pathPart = '', anchor] = ref.target.split('#');
      if (isAbsolute(pathPart)) {
        problems.push(`${where} (absolute path)`);
        continue;
      }
      // A bare `docs/API.md` in a comment means the repository's; `./x`, `../x` and links are relative to the file.
      const relativeToFile = ref.kind === 'link' || pathPart.startsWith('.');
      const candidates = relativeToFile
        ? [resolve(dirname(abs), pathPart)]
        : [resolve(dirname(abs), pathPart), resolve(root, pathPart)];
      const inside = candidates.filter((c) => !relative(root, c).startsWith('..'));
      if (!inside.length) {
        problems.push(`${where} (outside the repository)`);
        continue;
      }
      // Mentions of non-markdown paths (imports, globs, `../x` in prose) only have to stay inside.
      if (ref.kind === 'mention' && !/\.md$/i.test(pathPart)) continue;
      const found = inside.find((c) => existsSync(c));
      if (!found) {
        problems.push(`${where} (no such file)`);
        continue;
      }
      if (ref.kind === 'link' && anchor && statSync(found).isFile() && extname(found) === '.md') {
        if (!anchors(found).has(anchor)) problems.push(`${where} (no such heading)`);
      }
    }
  }
  return [...new Set(problems)];
}

describe('links and references stay inside the repository', () => {
  it('when every markdown file, comment and script is read, then no link or path leaves the repository or names a missing file', () => {
    // This file's fixtures are broken on purpose.
    const files = repositoryFiles(ROOT).filter((f) => f !== 'test/docs/links.test.ts');
    expect(files, 'git ls-files found the repository').to.include.members(['README.md', 'docs/API.md']);
    expect(brokenReferences(ROOT, files)).to.deep.equal([]);
  });

  it('when a fixture has links out of the tree, to missing files or headings, then each is reported', () => {
    const root = mkdtempSync(join(tmpdir(), 'links-'));
    try {
      mkdirSync(join(root, 'docs'));
      mkdirSync(join(root, 'src'));
      writeFileSync(
        join(root, 'docs/API.md'),
        '# API\n\n## Error codes\n\nSee [home](../README.md#start-here).\n',
      );
      writeFileSync(
        join(root, 'README.md'),
        [
          '# Project',
          '## Start here',
          'Fine: [api](docs/API.md), [codes](docs/API.md#error-codes), [here](#start-here), [web](https://example.com).',
          'Out: [contract](../elsewhere/API.md), and `../elsewhere/API.md` in code, [gone](docs/MISSING.md).',
          'Bad anchors: [x](docs/API.md#nope), [y](#nowhere).',
          '```',
          '[example](../not/checked.md)',
          '```',
        ].join('\n'),
      );
      writeFileSync(
        join(root, 'src/a.ts'),
        "// The contract is ../../elsewhere/API.md; see docs/API.md and docs/OLD.md.\nimport { b } from './b.ts';\n",
      );
      const problems = brokenReferences(root, ['README.md', 'docs/API.md', 'src/a.ts']);
      expect(problems).to.have.members([
        'README.md:4: ../elsewhere/API.md (outside the repository)',
        'README.md:4: docs/MISSING.md (no such file)',
        'README.md:5: docs/API.md#nope (no such heading)',
        'README.md:5: #nowhere (no such heading)',
        'src/a.ts:1: ../../elsewhere/API.md (outside the repository)',
        'src/a.ts:1: docs/OLD.md (no such file)',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
