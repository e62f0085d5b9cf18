// The terminal client's group rendering and command line: group system messages in words, "read by N of M",
// the JSON of a group, errors reworded with their codes kept, and usage errors (exit 2) before any profile
// is opened.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describeGroupUpdate, groupError, groupJson, groupText, receiptSummary } from '../../../src/cli/groups.ts';
import type { Io } from '../../../src/cli/io.ts';
import { main } from '../../../src/cli/main.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { GroupView } from '../../../src/client/groups/state.ts';
import type { AccountId, E164, GroupId, MessageId } from '../../../src/client/ids.ts';
import type { GroupUpdateRecord, MessageRecord } from '../../../src/client/store/types.ts';

const A = '11111111-1111-4111-8111-111111111111' as AccountId;
const B = '22222222-2222-4222-8222-222222222222' as AccountId;
const C = '33333333-3333-4333-8333-333333333333' as AccountId;
const D = '44444444-4444-4444-8444-444444444444' as AccountId;
const G = '0123456789abcdef0123456789abcdef' as GroupId;
const names: Record<string, string> = { [A]: 'Alice', [B]: 'Bob', [C]: 'Carol' };
const nameOf = (id: string): string => names[id] ?? id;

function update(fields: Partial<GroupUpdateRecord>): GroupUpdateRecord {
  return {
    revision: 1,
    actorId: A,
    created: false,
    added: [],
    removed: [],
    promoted: [],
    demoted: [],
    name: undefined,
    descriptionChanged: false,
    avatarChanged: false,
    settingsChanged: false,
    inviteLinkChanged: false,
    joinedByLink: false,
    left: false,
    ...fields,
  };
}

const view: GroupView = {
  id: G,
  name: 'Family',
  description: 'weekend plans',
  revision: 3,
  active: true,
  members: [
    { accountId: A, number: undefined, admin: true, self: true },
    { accountId: B, number: '+15550100002' as E164, admin: false, self: false },
    { accountId: C, number: undefined, admin: false, self: false },
  ],
  settings: { adminsManageMembers: true, adminsEditInfo: false, adminsSend: false },
  inviteLinkEnabled: false,
  expireTimer: 0,
  createdAt: 1,
};

function outgoing(receipts: MessageRecord['receipts']): MessageRecord {
  return {
    id: `${A}:5` as MessageId,
    conversationId: G,
    senderId: A,
    direction: 'outgoing',
    timestamp: 5,
    serverTimestamp: undefined,
    receivedAt: 5,
    kind: 'text',
    body: 'hi',
    quote: undefined,
    reactions: [],
    editedAt: undefined,
    deleted: false,
    viewOnce: false,
    expireTimer: 0,
    expiresAt: undefined,
    status: 'sent',
    error: undefined,
    receipts,
    groupUpdate: undefined,
    attachments: [],
  };
}

function io(): { io: Io; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  stdout.resume();
  const stdin = new PassThrough();
  stdin.end();
  return { io: { stdout, stderr, stdin }, err: () => err };
}

describe('group rendering', () => {
  it('says what a group update did, in words', () => {
    assert.equal(describeGroupUpdate(update({ created: true, added: [A, B, C] }), nameOf), 'Alice created the group with Bob and Carol');
    assert.equal(describeGroupUpdate(update({ added: [B] }), nameOf), 'Alice added Bob');
    assert.equal(describeGroupUpdate(update({ actorId: C, left: true, removed: [C] }), nameOf), 'Carol left');
    assert.equal(describeGroupUpdate(update({ removed: [B, C, D] }), nameOf), `Alice removed Bob, Carol and ${D}`);
    assert.equal(describeGroupUpdate(update({ added: [B], promoted: [B] }), nameOf), 'Alice added Bob, made Bob admin');
    assert.equal(describeGroupUpdate(update({ name: 'Weekend' }), nameOf), 'Alice changed the name to "Weekend"');
    assert.equal(describeGroupUpdate(update({ actorId: B, joinedByLink: true, added: [B] }), nameOf), 'Bob joined through the invite link');
    assert.equal(describeGroupUpdate(update({ demoted: [B], settingsChanged: true }), nameOf), 'Alice removed admin rights from Bob, changed the group settings');
    assert.equal(describeGroupUpdate(update({ revision: 7 }), nameOf), 'Alice updated the group (revision 7)');
  });

  it('counts receipts over the other current members', () => {
    assert.equal(receiptSummary(outgoing([]), view), 'delivered to 0 of 2');
    assert.equal(receiptSummary(outgoing([{ accountId: B, status: 'delivered', at: 1 }]), view), 'delivered to 1 of 2');
    assert.equal(
      receiptSummary(outgoing([{ accountId: B, status: 'read', at: 1 }, { accountId: C, status: 'delivered', at: 1 }, { accountId: D, status: 'read', at: 1 }]), view),
      'read by 1 of 2, delivered to 2',
      'a receipt of someone no longer in the group does not count',
    );
    assert.equal(receiptSummary({ ...outgoing([]), direction: 'incoming' }, view), undefined);
  });

  it('shows a group as JSON with this profile\'s number and role', () => {
    const j = groupJson(view, '+15550100001');
    assert.equal(j.groupId, G);
    assert.equal(j.role, 'admin');
    assert.deepEqual(j.members, [
      { accountId: A, number: '+15550100001', admin: true, self: true },
      { accountId: B, number: '+15550100002', admin: false, self: false },
      { accountId: C, number: null, admin: false, self: false },
    ]);
    assert.equal(groupJson({ ...view, active: false }, '+15550100001').role, 'none');
    assert.match(groupText(view, '+15550100001'), /\+15550100001 +admin \(you\)/);
  });

  it('rewords group errors and keeps their codes', () => {
    const forbidden = groupError(new ClientError(ClientErrorCode.Forbidden, 'server said 403', { status: 403 }), 'add members');
    assert.ok(ClientError.is(forbidden, ClientErrorCode.Forbidden));
    assert.match(forbidden.message, /only admins may add members/);
    assert.equal(forbidden.status, 403);
    const other = new ClientError(ClientErrorCode.Timeout, 'slow');
    assert.equal(groupError(other, 'x'), other);
  });
});

describe('parley group command line', () => {
  it('exits 2 on usage errors', async () => {
    for (const argv of [
      ['group'],
      ['group', 'create', 'Family'],
      ['group', 'add', G],
      ['group', 'set', G, '--admins-only-send', 'maybe'],
      ['send', '--group', G],
      ['send', '--group', G, '+15550100002', 'text'],
      ['messages'],
      ['messages', '+15550100002', '--group', G],
      ['timer', '--group', G],
      ['timer', '--group', G, 'soon'],
    ]) {
      const t = io();
      assert.equal(await main(argv, t.io), 2, argv.join(' '));
    }
  });

  it('refuses a malformed group id before opening the profile', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parley-group-cli-'));
    try {
      for (const argv of [['group', 'add', 'not-a-group', '+15550100002'], ['group', 'info', 'abc'], ['send', '--group', 'xyz', 'hi']]) {
        const t = io();
        assert.equal(await main([...argv, '--profile', dir], t.io), 1, argv.join(' '));
        assert.match(t.err(), /CLIENT_INVALID_ARGUMENT/);
        assert.match(t.err(), new RegExp(`^parley ${argv[0] === 'group' ? `group ${argv[1] ?? ''}` : argv[0]}:`));
      }
      const t = io();
      assert.equal(await main(['group', 'set', G, '--profile', dir], t.io), 1, 'nothing to change');
      assert.match(t.err(), /nothing to change.*CLIENT_INVALID_ARGUMENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
