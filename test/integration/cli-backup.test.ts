// Encrypted backups end to end through the `parley` binary (issue #10): Alice chats with Bob (texts, a group,
// a photo Bob sends her), backs up with a recovery key and the files inside (also exported to a file)
// and then with a password; her phone is "lost": she re-registers the number on a fresh profile, and
//   - a wrong password, a wrong recovery key, a truncated and a tampered file are refused with their error
//     codes and leave the new profile empty (nothing half-imported, no file left in its media folder);
//   - the right password restores every conversation, message, the group and the photo, and she
//     keeps chatting with Bob (who is told her safety number changed), also in the group (the limit is 2 here);
//   - on yet another re-registration, wrong passwords beyond the limit lock the server's share: then even the
//     right password fails (CLIENT_BACKUP_LOCKED), and the exported file still opens with the recovery key;
//   - the server's data folder (database and blob files) holds none of the texts and none of the photo's bytes.
// The server is the real one (createApp on SQLite in a temporary folder) with the backup routes added in the
// test process (test/unit/server/backup-support.ts), with the backup limits the test needs; the clients are the
// binary.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { cliOk, filesUnder, NUMBERS, runCli, tempDir, type CliResult } from '../support/cli.ts';
import { startBackupServer, type BackupServer } from '../unit/server/backup-support.ts';

const { alice: A, bob: B } = NUMBERS;
type Line = Record<string, unknown>;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** 64-byte slices of `bytes` with at least 40 distinct values (not padding or a table every JPEG shares), spread over the file. */
function distinctiveSlices(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 64 <= bytes.length && out.length < 8; at += Math.max(64, Math.floor(bytes.length / 8))) {
    for (let i = at; i + 64 <= Math.min(bytes.length, at + 4096); i += 16) {
      const slice = bytes.subarray(i, i + 64);
      if (new Set(slice).size >= 40 && i > 1024) {
        out.push(slice);
        break;
      }
    }
  }
  return out;
}

describe('parley backup end to end', () => {
  const tmp = tempDir('parley-cli-backup-');
  const p = {
    a1: path.join(tmp.dir, 'alice-old'),
    a2: path.join(tmp.dir, 'alice-new'),
    a3: path.join(tmp.dir, 'alice-third'),
    b: path.join(tmp.dir, 'bob'),
  };
  const files = path.join(tmp.dir, 'files');
  const passwordFile = path.join(files, 'password');
  const wrongPasswordFile = path.join(files, 'wrong');
  const exported = path.join(files, 'alice.parleybackup');
  let server: BackupServer;
  let groupId = '';
  let recoveryKey = '';
  let photoSha = '';
  const texts = ['Hi Bob, lunch tomorrow?', 'Sure, noon at the usual place', 'Bring the holiday photos', 'Family group: dinner on Sunday'];
  const as = (profile: string, ...args: string[]): string[] => [...args, '--profile', profile, '--json'];
  const receive = async (profile: string): Promise<Line[]> => (await cliOk(as(profile, 'receive', '--until-empty'), { timeoutMs: 120_000 })).lines;
  const conversation = async (profile: string): Promise<Line[]> => (await cliOk(as(profile, 'messages', B.number))).lines;
  const groupConversation = async (profile: string): Promise<Line[]> => (await cliOk(as(profile, 'messages', '--group', groupId))).lines;
  const refused = (r: CliResult, code: string): void => {
    assert.equal(r.code, 1, `exit 1: ${r.stdout} ${r.stderr}`);
    assert.ok(r.stderr.includes(code), `error code ${code} in: ${r.stderr}`);
  };
  /** The new profile holds nothing of the old conversations and no media file. */
  const untouched = async (profile: string): Promise<void> => {
    assert.deepEqual(await conversation(profile), []);
    const media = path.join(profile, 'media');
    const saved = existsSync(media) ? readdirSync(media, { recursive: true }).map(String).filter((f) => !f.startsWith('.')) : [];
    assert.deepEqual(saved, [], 'no file left in the media folder');
  };
  /** What is compared before and after: id, sender, body, reactions, attachment hashes. */
  const shape = (lines: readonly Line[]): unknown[] =>
    lines.map((l) => ({ id: l.id, from: l.from, body: l.body, type: l.type, reactions: l.reactions, sha: (l.attachment as Line | undefined)?.sha256 }));
  let before1: unknown[] = [];
  let beforeGroup: unknown[] = [];

  before(async () => {
    mkdirSync(files, { recursive: true });
    writeFileSync(passwordFile, 'correct horse battery staple\n');
    writeFileSync(wrongPasswordFile, 'Tr0ub4dor&3-wrong\n');
    server = await startBackupServer({ backups: { maxAttempts: 2, unlockRate: { capacity: 100, windowMs: 60_000 } } });
    await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', p.a1, '--json']);
    await cliOk(['register', B.number, '--server', server.url, '--code', B.code, '--profile', p.b, '--json']);
  });

  after(async () => {
    await server?.close();
    tmp.remove();
  });

  it('Alice and Bob chat: texts, a group, a photo; Alice backs up with a recovery key (files inside, exported) and with a password', async () => {
    await cliOk(as(p.a1, 'send', B.number, texts[0] as string));
    const photo = path.join(files, 'holiday.jpg');
    // Noise, so that the JPEG's bytes are its own (no long runs that any file could contain).
    await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 128, g: 128, b: 128 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg({ quality: 90 })
      .toFile(photo);
    await cliOk(as(p.b, 'send', A.number, texts[1] as string));
    await cliOk(as(p.b, 'send-file', A.number, photo, '--caption', texts[2] as string));
    const got = await receive(p.a1);
    const attachment = got.find((l) => l.attachment !== undefined)?.attachment as Line;
    assert.equal(attachment.state, 'saved');
    photoSha = attachment.sha256 as string;
    assert.equal(sha256(readFileSync(attachment.path as string)), photoSha);
    groupId = (await cliOk(as(p.a1, 'group', 'create', 'Family', B.number))).lines[0]?.groupId as string;
    await cliOk(as(p.a1, 'send', '--group', groupId, texts[3] as string));
    await receive(p.b);
    await cliOk(as(p.b, 'send', '--group', groupId, 'See you there'));
    await receive(p.a1);
    before1 = shape(await conversation(p.a1));
    beforeGroup = shape(await groupConversation(p.a1));
    assert.equal(before1.length, 3);
    assert.ok(beforeGroup.length >= 2);

    const withKey = await cliOk(as(p.a1, 'backup', 'create', '--recovery-key', '--include-media', '--output', exported), { timeoutMs: 120_000 });
    const made = withKey.lines.at(-1) as Line;
    recoveryKey = made.recoveryKey as string;
    assert.match(recoveryKey, /^[0-9]{64}$/);
    assert.equal(made.uploaded, true);
    assert.deepEqual(made.protectedBy, ['recovery-key']);
    assert.equal((made.counts as Line).files, 1);
    assert.equal(readFileSync(exported).length, made.size);
    const human = await runCli(['backup', 'create', '--password-file', passwordFile, '--include-media', '--profile', p.a1], { timeoutMs: 120_000 });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^Backup made: \d+ messages/);
    assert.ok(!human.stdout.includes(recoveryKey), 'a password backup does not show a recovery key');
  });

  it('the server\'s data folder holds none of the texts and none of the photo\'s bytes', async () => {
    const all = filesUnder(server.dataDir);
    for (const text of [...texts, 'See you there', 'Family']) assert.equal(all.indexOf(Buffer.from(text)), -1, `"${text}" is not on the server`);
    const photo = readFileSync(path.join(files, 'holiday.jpg'));
    // The sent file is a re-encoded JPEG: look for slices of what Alice saved (the bytes that were sent).
    const saved = readdirSync(path.join(p.a1, 'media')).map((f) => path.join(p.a1, 'media', f)).find((f) => f.endsWith('.jpg'));
    for (const bytes of [photo, saved ? readFileSync(saved) : photo]) {
      const slices = distinctiveSlices(bytes);
      assert.ok(slices.length >= 3);
      for (const slice of slices) assert.equal(all.indexOf(slice), -1, 'no slice of the photo on the server');
    }
  });

  it('on a fresh profile of the same number: a wrong password, a wrong recovery key, a truncated or tampered file are refused and import nothing', async () => {
    await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', p.a2, '--json']);
    const wrong = await runCli(as(p.a2, 'backup', 'restore', '--password-file', wrongPasswordFile), { timeoutMs: 60_000 });
    refused(wrong, 'CLIENT_WRONG_BACKUP_KEY');
    assert.match(wrong.stderr, /1 attempt left/);
    const otherKey = recoveryKey.replace(/^./, (d) => String((Number(d) + 1) % 10));
    refused(await runCli(as(p.a2, 'backup', 'restore', '--recovery-key', otherKey, '--input', exported)), 'CLIENT_WRONG_BACKUP_KEY');
    const file = readFileSync(exported);
    const truncated = path.join(files, 'truncated.parleybackup');
    writeFileSync(truncated, file.subarray(0, Math.floor(file.length * 0.6)));
    refused(await runCli(as(p.a2, 'backup', 'restore', '--recovery-key', recoveryKey, '--input', truncated)), 'CLIENT_BAD_BACKUP');
    const tampered = path.join(files, 'tampered.parleybackup');
    const flipped = Buffer.from(file);
    flipped[flipped.length - 100] = (flipped[flipped.length - 100] as number) ^ 0x01;
    writeFileSync(tampered, flipped);
    refused(await runCli(as(p.a2, 'backup', 'restore', '--recovery-key', recoveryKey, '--input', tampered)), 'CLIENT_BAD_BACKUP');
    await untouched(p.a2);
  });

  it('the right password restores every conversation, message, the group and the photo; Alice keeps chatting with Bob', async () => {
    const restored = (await cliOk(as(p.a2, 'backup', 'restore', '--password-file', passwordFile), { timeoutMs: 120_000 })).lines[0] as Line;
    assert.equal((restored.imported as Line).files, 1);
    const after1 = await conversation(p.a2);
    assert.deepEqual(shape(after1), before1);
    assert.deepEqual(shape(await groupConversation(p.a2)), beforeGroup);
    const a = after1.find((l) => l.attachment !== undefined)?.attachment as Line;
    assert.equal(a.state, 'saved');
    assert.ok((a.path as string).startsWith(path.join(p.a2, 'media')));
    assert.equal(sha256(readFileSync(a.path as string)), photoSha);

    await cliOk(as(p.a2, 'send', B.number, 'Back on a new phone'));
    const atBob = await receive(p.b);
    assert.ok(atBob.some((l) => l.type === 'identity-changed'), 'Bob is told Alice\'s safety number changed');
    assert.ok(atBob.some((l) => l.type === 'text' && l.body === 'Back on a new phone'));
    await cliOk(as(p.b, 'send', A.number, 'Welcome back'));
    await cliOk(as(p.b, 'send', '--group', groupId, 'Hello again, group'));
    const atAlice = await receive(p.a2);
    assert.ok(atAlice.some((l) => l.type === 'text' && l.body === 'Welcome back'));
    assert.ok(atAlice.some((l) => l.type === 'text' && l.body === 'Hello again, group' && l.groupId === groupId));
  });

  it('wrong passwords beyond the limit lock the server\'s share; then even the right password fails, and the exported file opens with the recovery key', async () => {
    await cliOk(['register', A.number, '--server', server.url, '--code', A.code, '--profile', p.a3, '--json']);
    refused(await runCli(as(p.a3, 'backup', 'restore', '--password-file', wrongPasswordFile), { timeoutMs: 60_000 }), 'CLIENT_WRONG_BACKUP_KEY');
    refused(await runCli(as(p.a3, 'backup', 'restore', '--password-file', wrongPasswordFile), { timeoutMs: 60_000 }), 'CLIENT_BACKUP_LOCKED');
    refused(await runCli(as(p.a3, 'backup', 'restore', '--password-file', passwordFile), { timeoutMs: 60_000 }), 'CLIENT_BACKUP_LOCKED');
    await untouched(p.a3);
    await cliOk(as(p.a3, 'backup', 'restore', '--recovery-key', recoveryKey.replace(/(.{4})/g, '$1 '), '--input', exported), { timeoutMs: 120_000 });
    const after3 = await conversation(p.a3);
    assert.deepEqual(shape(after3), before1);
    const a = after3.find((l) => l.attachment !== undefined)?.attachment as Line;
    assert.equal(sha256(readFileSync(a.path as string)), photoSha);
  });
});
