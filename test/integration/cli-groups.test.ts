// Groups end to end through the `parley` binary against the real server (`parley serve`): seven profiles,
// a group of five that everyone writes to (each message arrives once, with its group id and the right
// sender), refused admin actions, a removed member that provably cannot decrypt what is sent after its
// removal (the ciphertext taken from the server's database, decrypted with the member's own stored sender
// keys), a new member that cannot decrypt what was sent before it joined, two admins changing the
// membership at the same time, and group messages that survive a server restart and reach an offline
// member exactly once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { crypto } from '../../src/cli/profile.ts';
import { SqliteClientStore } from '../../src/cli/store/sqlite-store.ts';
import { senderKeyStore } from '../../src/client/groups/state.ts';
import type { AccountId, GroupId } from '../../src/client/ids.ts';
import { ProtocolAddress, groupDecrypt } from '../../src/protocol/index.ts';
import { ProtocolError, ProtocolErrorCode } from '../../src/protocol/errors.ts';
import { cliOk, NUMBERS, runCli, startServer, tempDir, type CliResult, type CliServer } from '../support/cli.ts';

type Name = 'alice' | 'bob' | 'carol' | 'dave' | 'erin' | 'frank' | 'grace';
const NAMES: readonly Name[] = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace'];

interface Line {
  readonly [key: string]: unknown;
}

/** A transaction's way out without committing (the decryption attempts must not change the profiles). */
class Rollback<T> extends Error {
  constructor(readonly value: T) {
    super('rolled back');
  }
}

describe('parley groups end to end', () => {
  const tmp = tempDir('parley-groups-e2e-');
  const profile = Object.fromEntries(NAMES.map((n) => [n, path.join(tmp.dir, n)])) as Record<Name, string>;
  const account = {} as Record<Name, AccountId>;
  const number = (n: Name): string => NUMBERS[n].number;
  let server: CliServer;
  let groupId: GroupId;

  const as = (n: Name, ...args: string[]): string[] => [...args, '--profile', profile[n], '--json'];
  const text = (label: string): string => `${label} ${randomBytes(4).toString('hex')}`;
  /** Runs `receive --until-empty --json` for each profile at once. */
  const receiveAll = async (names: readonly Name[]): Promise<Record<string, Line[]>> => {
    const results = await Promise.all(names.map((n) => cliOk(as(n, 'receive', '--until-empty'))));
    return Object.fromEntries(names.map((n, i) => [n, (results[i] as CliResult).lines]));
  };
  const texts = (lines: readonly Line[]): Line[] => lines.filter((l) => l.type === 'text' && l.groupId === groupId);
  const info = async (n: Name): Promise<{ members: Array<{ accountId: string; number: string | null; admin: boolean }>; revision: number; role: string; active: boolean }> => {
    const r = await cliOk(as(n, 'group', 'info', groupId));
    return r.lines[0] as never;
  };
  const memberNumbers = (i: { members: Array<{ number: string | null }> }): Array<string | null> => i.members.map((m) => m.number).sort();
  /** A view's members as account ids (a member added by someone else may have no known number yet). */
  const memberIds = (i: { members: Array<{ accountId: string }> }): string[] => i.members.map((m) => m.accountId).sort();

  /** The stored ciphertext (a SenderKeyMessage) of the group message `sender` sent at `timestamp`, from the server's database. */
  function serverCiphertext(sender: Name, timestamp: number): Uint8Array {
    const db = new Database(path.join(server.dataDir, 'parley.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const row = db
        .prepare(
          `SELECT coalesce(p.content, m.content) AS content FROM messages m LEFT JOIN payloads p ON p.id = m.payload_id
           WHERE m.group_id = ? AND m.type = 7 AND m.source_account_id = ? AND m.timestamp = ? LIMIT 1`,
        )
        .get(groupId, account[sender], timestamp) as { content: Buffer } | undefined;
      assert.ok(row, `the server still queues the group message ${sender} sent at ${timestamp}`);
      return new Uint8Array(row.content);
    } finally {
      db.close();
    }
  }

  /** Decrypts `ciphertext` from `sender` (device 1) with the sender keys stored in `reader`'s profile, committing nothing. */
  async function decryptWithProfile(reader: Name, sender: Name, ciphertext: Uint8Array): Promise<{ plaintext: Uint8Array } | { code: string }> {
    const store = SqliteClientStore.open(profile[reader]);
    try {
      return await store
        .transaction(async (tx) => {
          let result: { plaintext: Uint8Array } | { code: string };
          try {
            result = { plaintext: await groupDecrypt(crypto, senderKeyStore(tx, groupId), new ProtocolAddress(account[sender], 1), ciphertext) };
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            result = { code: err.code };
          }
          throw new Rollback(result);
        })
        .catch((err: unknown) => {
          if (err instanceof Rollback) return err.value as { plaintext: Uint8Array } | { code: string };
          throw err;
        });
    } finally {
      await store.close();
    }
  }

  /** Sends `body` to the group as `n`; resolves with the sender timestamp. */
  const sendToGroup = async (n: Name, body: string): Promise<number> => {
    const r = await cliOk(as(n, 'send', '--group', groupId, body));
    const line = r.lines.at(-1);
    assert.equal(line?.groupId, groupId);
    assert.equal(line?.status, 'sent');
    return line?.timestamp as number;
  };

  before(async () => {
    server = await startServer(path.join(tmp.dir, 'server'));
    const registered = await Promise.all(
      NAMES.map((n) => cliOk(['register', number(n), '--server', server.url, '--code', NUMBERS[n].code, '--profile', profile[n], '--json'])),
    );
    NAMES.forEach((n, i) => {
      account[n] = (registered[i] as CliResult).lines[0]?.accountId as AccountId;
    });
  });

  after(async () => {
    await server?.stop();
    tmp.remove();
  });

  it('creates a group of five in which everyone writes and every message arrives once, with its group id and sender', async () => {
    const created = await cliOk(as('alice', 'group', 'create', 'Family', number('bob'), number('carol'), number('dave'), number('erin'), '--description', 'weekend plans'));
    groupId = created.lines[0]?.groupId as GroupId;
    assert.match(groupId, /^[0-9a-f]{32}$/);
    assert.equal((created.lines[0]?.members as unknown[]).length, 5);

    const members: Name[] = ['alice', 'bob', 'carol', 'dave', 'erin'];
    const joined = await receiveAll(members.slice(1));
    for (const n of members.slice(1)) {
      const update = joined[n]?.find((l) => l.type === 'group-update' && l.groupId === groupId);
      assert.ok(update, `${n} is told about the new group`);
      assert.equal(update.fromAccountId, account.alice);
      assert.match(update.body as string, /created the group/);
    }

    const said = Object.fromEntries(members.map((n) => [n, text(`hello from ${n}`)])) as Record<string, string>;
    await Promise.all(members.map((n) => sendToGroup(n, said[n] as string)));
    const got = await receiveAll(members);
    for (const n of members) {
      const lines = texts(got[n] ?? []);
      const expected = members.filter((m) => m !== n);
      assert.deepEqual(lines.map((l) => l.body).sort(), expected.map((m) => said[m]).sort(), `${n} gets each other member's message once`);
      for (const l of lines) {
        const sender = expected.find((m) => said[m] === l.body) as Name;
        assert.equal(l.fromAccountId, account[sender]);
        assert.equal(l.from, number(sender));
      }
    }

    const views = await Promise.all(members.map((n) => info(n)));
    for (const v of views) {
      assert.deepEqual(memberNumbers(v), members.map(number).sort());
      assert.deepEqual(v.members.filter((m) => m.admin).map((m) => m.number), [number('alice')]);
    }
    assert.equal(views[0]?.role, 'admin');
    assert.equal(views[1]?.role, 'member');
  });

  it('refuses admin actions of a non-admin with a clear error and exit status 1', async () => {
    const add = await runCli(as('bob', 'group', 'add', groupId, number('frank')));
    assert.equal(add.code, 1);
    assert.match(add.stderr, /only admins may add members/);
    assert.match(add.stderr, /CLIENT_FORBIDDEN/);
    const remove = await runCli(as('bob', 'group', 'remove', groupId, number('carol')));
    assert.equal(remove.code, 1);
    assert.match(remove.stderr, /CLIENT_FORBIDDEN/);
    assert.deepEqual(memberNumbers(await info('alice')), ['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => number(n as Name)).sort());
  });

  it('keeps what is sent after a removal from the removed member: not delivered, and undecryptable with its old state', async () => {
    const before = text('before erin was removed');
    const beforeAt = await sendToGroup('alice', before);
    const beforeCiphertext = serverCiphertext('alice', beforeAt);
    await cliOk(as('alice', 'group', 'remove', groupId, number('erin')));
    const afterText = text('after erin was removed');
    const afterAt = await sendToGroup('alice', afterText);
    const afterCiphertext = serverCiphertext('alice', afterAt);

    // Erin's profile as it was before it heard of the removal: it decrypts Alice's earlier message (so the
    // attempt is a real one), and not the later one.
    const control = await decryptWithProfile('erin', 'alice', beforeCiphertext);
    assert.ok('plaintext' in control, `Erin's old state decrypts the message sent before the removal (${JSON.stringify(control)})`);
    assert.ok(Buffer.from(control.plaintext).includes(Buffer.from(before)));
    assert.deepEqual(await decryptWithProfile('erin', 'alice', afterCiphertext), { code: ProtocolErrorCode.NoSenderKeyState });

    const got = await receiveAll(['bob', 'carol', 'dave', 'erin']);
    for (const n of ['bob', 'carol', 'dave'] as const) {
      assert.deepEqual(texts(got[n] ?? []).map((l) => l.body), [before, afterText], `${n} gets both`);
      assert.ok(got[n]?.some((l) => l.type === 'group-update' && /removed/.test(l.body as string)), `${n} is told that erin was removed`);
    }
    assert.deepEqual(texts(got.erin ?? []).map((l) => l.body), [before], 'erin gets only what was sent before her removal');
    assert.ok(got.erin?.some((l) => l.type === 'group-update' && /removed you/.test(l.body as string)), 'erin is told she was removed');

    const erinView = await info('erin');
    assert.equal(erinView.active, false);
    assert.equal(erinView.role, 'none');
    const refused = await runCli(as('erin', 'send', '--group', groupId, 'still here?'));
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /CLIENT_NOT_GROUP_MEMBER/);
  });

  it('keeps what was sent before a member joined from the new member', async () => {
    const early = text('before frank joined');
    const earlyAt = await sendToGroup('alice', early);
    const earlyCiphertext = serverCiphertext('alice', earlyAt);
    await cliOk(as('alice', 'group', 'add', groupId, number('frank')));
    const welcome = text('welcome frank');
    await sendToGroup('alice', welcome);
    const frank = await receiveAll(['frank']);
    assert.deepEqual(texts(frank.frank ?? []).map((l) => l.body), [welcome], 'frank gets only what was sent after he joined');

    const later = text('after frank joined');
    const laterAt = await sendToGroup('alice', later);
    const laterCiphertext = serverCiphertext('alice', laterAt);
    const control = await decryptWithProfile('frank', 'alice', laterCiphertext);
    assert.ok('plaintext' in control, `Frank's state decrypts a message sent after he joined (${JSON.stringify(control)})`);
    const early2 = await decryptWithProfile('frank', 'alice', earlyCiphertext);
    assert.ok('code' in early2, 'the message sent before frank joined does not decrypt with his state');
    // Either no state for that sender key at all (rotated), or the chain he was given starts after it.
    assert.ok(([ProtocolErrorCode.NoSenderKeyState, ProtocolErrorCode.DuplicateMessage] as string[]).includes(early2.code), early2.code);

    const got = await receiveAll(['alice', 'bob', 'carol', 'dave', 'frank']);
    assert.deepEqual(texts(got.frank ?? []).map((l) => l.body), [later]);
    for (const n of ['bob', 'carol', 'dave'] as const) assert.deepEqual(texts(got[n] ?? []).map((l) => l.body), [early, welcome, later]);
  });

  it('converges when two admins change the membership at the same time', async () => {
    await cliOk(as('alice', 'group', 'promote', groupId, number('bob')));
    await receiveAll(['bob']);
    assert.equal((await info('bob')).role, 'admin');
    const [a, b] = await Promise.all([runCli(as('alice', 'group', 'add', groupId, number('erin'))), runCli(as('bob', 'group', 'add', groupId, number('grace')))]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);

    const everyone: Name[] = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace'];
    await receiveAll(everyone);
    const views = await Promise.all(everyone.map((n) => info(n)));
    const expected = everyone.map((n) => account[n]).sort();
    for (const [i, v] of views.entries()) {
      assert.deepEqual(memberIds(v), expected, `${everyone[i] ?? ''} sees every member`);
      assert.equal(v.revision, views[0]?.revision, `${everyone[i] ?? ''} is at the same revision`);
      assert.deepEqual(memberIds({ members: v.members.filter((m) => m.admin) }), [account.alice, account.bob].sort());
    }
  });

  it('keeps group messages across a server restart and delivers them to an offline member once', async () => {
    const kept = text('survives the restart');
    await sendToGroup('dave', kept);
    const port = server.port;
    await server.stop();
    server = await startServer(path.join(tmp.dir, 'server'), [], port);

    const first = await receiveAll(['carol', 'grace']);
    for (const n of ['carol', 'grace'] as const) {
      const lines = texts(first[n] ?? []).filter((l) => l.body === kept);
      assert.equal(lines.length, 1, `${n} gets it once`);
      assert.equal(lines[0]?.from, number('dave'));
    }
    const again = await receiveAll(['carol']);
    assert.deepEqual(texts(again.carol ?? []), [], 'nothing arrives twice');
    const stored = await cliOk(as('carol', 'messages', '--group', groupId));
    assert.equal(stored.lines.filter((l) => l.body === kept).length, 1);
  });
});
