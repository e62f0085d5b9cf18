// docs/errors.md and the error-code objects of each layer must list the same codes (as fastify's errors
// test does for FST_ERR_*). To cover a new layer, add its section to docs/errors.md and an entry to LAYERS.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ClientErrorCode } from '../../src/client/errors.ts';
import { ProtocolErrorCode } from '../../src/protocol/errors.ts';
import { ServerErrorCode } from '../../src/server/errors.ts';

interface Layer {
  /** The code prefix, e.g. 'PROTOCOL_'. */
  prefix: string;
  /** The start of the `## ` heading of the layer's section in docs/errors.md. */
  heading: string;
  /** The layer's code object: name -> code string. */
  codes: Readonly<Record<string, string>>;
}

const LAYERS: readonly Layer[] = [
  { prefix: 'PROTOCOL_', heading: 'Protocol core', codes: ProtocolErrorCode },
  { prefix: 'CLIENT_', heading: 'Client SDK', codes: ClientErrorCode },
  { prefix: 'SERVER_', heading: 'Server', codes: ServerErrorCode },
];

/** Prefixes reserved for layers; a code with one of them must belong to a layer listed in LAYERS. */
const RESERVED_PREFIXES = ['PROTOCOL_', 'CLIENT_', 'SERVER_', 'WEB_', 'CLI_'];

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** The `## ` sections of the doc, by heading. */
function sections(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  const parts = markdown.split(/^## /m).slice(1);
  for (const part of parts) {
    const newline = part.indexOf('\n');
    out.set(part.slice(0, newline).trim(), part.slice(newline + 1));
  }
  return out;
}

interface Row {
  code: string;
  name: string;
  meaning: string;
  retry: string;
}

/** The rows of the code table of a section: `| `CODE` | `Name` | meaning | retry |`. */
function codeRows(section: string): Row[] {
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('|')) continue;
    const cells = line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    const code = /^`([A-Z0-9_]+)`$/.exec(cells[0] ?? '')?.[1];
    if (code === undefined) continue; // header and separator rows
    assert.equal(cells.length, 4, `row of ${code} must have 4 cells (Code | Name | Meaning | Retry): ${line}`);
    rows.push({
      code,
      name: /^`(\w+)`$/.exec(cells[1] ?? '')?.[1] ?? '',
      meaning: cells[2] ?? '',
      retry: cells[3] ?? '',
    });
  }
  return rows;
}

const bySection = sections(doc);

describe('docs/errors.md', () => {
  for (const layer of LAYERS) {
    describe(`${layer.prefix}* (${layer.heading})`, () => {
      const heading = [...bySection.keys()].find((h) => h.startsWith(layer.heading));
      const rows = heading === undefined ? [] : codeRows(bySection.get(heading) ?? '');
      const documented = new Map(rows.map((r) => [r.code, r]));

      it('has a section with a code table', () => {
        assert.ok(heading !== undefined, `docs/errors.md needs a "## ${layer.heading}" section`);
        assert.ok(rows.length > 0, `the "${heading}" section has no code table`);
      });

      it('lists every code the layer defines', () => {
        const missing = Object.values(layer.codes).filter((code) => !documented.has(code));
        assert.deepEqual(missing, [], 'codes missing from docs/errors.md');
      });

      it('lists only codes that exist, each once, under its name', () => {
        const known = new Map(Object.entries(layer.codes).map(([name, code]) => [code, name]));
        const unknown = rows.filter((r) => !known.has(r.code)).map((r) => r.code);
        assert.deepEqual(unknown, [], 'documented codes that the code does not define');
        assert.equal(documented.size, rows.length, 'a code is listed twice');
        for (const row of rows) {
          assert.equal(row.name, known.get(row.code), `name column of ${row.code}`);
        }
      });

      it('says what each code means and whether retrying helps', () => {
        for (const row of rows) {
          assert.ok(row.meaning.length > 0, `${row.code} has no meaning`);
          assert.match(row.retry, /^(Yes|No)\b/, `${row.code}: the Retry column starts with Yes or No`);
        }
      });

      it('uses the layer prefix for every code', () => {
        for (const code of Object.values(layer.codes)) {
          assert.match(code, new RegExp(`^${layer.prefix}[A-Z0-9_]+$`));
        }
      });
    });
  }

  it('names no code, anywhere in the text, that does not exist', () => {
    const tokens = doc.match(new RegExp(`\\b(?:${RESERVED_PREFIXES.join('|')})[A-Z0-9_]*[A-Z0-9]\\b`, 'g')) ?? [];
    assert.ok(tokens.length > 0);
    const unknown = tokens.filter((token) => {
      const layer = LAYERS.find((l) => token.startsWith(l.prefix));
      return layer === undefined || !Object.values(layer.codes).includes(token);
    });
    assert.deepEqual([...new Set(unknown)], [], 'tokens in docs/errors.md that are not codes of a layer in LAYERS');
  });
});
