// The pure rules of groups (src/server/services/group-rules.ts): permissions by settings and role, the
// order of member operations, no-op changes, the admin invariant, the member limit, invite links and
// leaving with last-admin promotion.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ServerError } from '../../../src/server/errors.ts';
import type { AccountId, GroupId } from '../../../src/server/ids.ts';
import { changeGroup, createGroup, DEFAULT_SETTINGS, joinGroup, leaveGroup, type ParsedChange } from '../../../src/server/services/group-rules.ts';
import type { GroupRecord } from '../../../src/server/storage/stores.ts';

const A = 'a0000000-0000-4000-8000-000000000000' as AccountId;
const B = 'b0000000-0000-4000-8000-000000000000' as AccountId;
const C = 'c0000000-0000-4000-8000-000000000000' as AccountId;
const D = 'd0000000-0000-4000-8000-000000000000' as AccountId;
const ID = '00'.repeat(16) as GroupId;
const LIMITS = { maxGroupMembers: 4 };
const NONE: ParsedChange = { add: [], remove: [], promote: [], demote: [], attributes: undefined, settings: undefined, inviteHash: undefined };
const sha = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/** A created by A with B and C (A admin), at revision 0. */
function group(): GroupRecord {
  const t = createGroup(ID, A, [C, B], { attributes: new Uint8Array([1]), settings: DEFAULT_SETTINGS, now: 100 }, LIMITS);
  assert.ok(t.next !== undefined);
  return t.next;
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ServerError) return err.code;
    throw err;
  }
  return 'none';
};

describe('group rules', () => {
  it('creates with the creator as only admin, members in account order, and refuses past the limit', () => {
    const g = group();
    assert.deepEqual(g.members.map((m) => [m.accountId, m.admin, m.joinedRevision]), [[A, true, 0], [B, false, 0], [C, false, 0]]);
    assert.equal(code(() => createGroup(ID, A, [B, C, D, 'e' as AccountId], { attributes: new Uint8Array(), settings: DEFAULT_SETTINGS, now: 1 }, LIMITS)), 'SERVER_GROUP_FULL');
  });

  it('lets only admins manage members by default; opened up, members add and promote but never touch admins', () => {
    const g = group();
    assert.equal(code(() => changeGroup(g, B, { ...NONE, add: [D] }, 200, LIMITS)), 'SERVER_FORBIDDEN');
    assert.equal(code(() => changeGroup(g, D, { ...NONE, attributes: new Uint8Array([2]) }, 200, LIMITS)), 'SERVER_FORBIDDEN', 'not a member');
    const open = { ...g, settings: { ...g.settings, adminsManageMembers: false } };
    const added = changeGroup(open, B, { ...NONE, add: [D], promote: [D] }, 200, LIMITS);
    assert.deepEqual(added?.summary.added, [D]);
    assert.deepEqual(added?.next?.members.find((m) => m.accountId === D), { accountId: D, admin: true, joinedAt: 200, joinedRevision: 1 });
    assert.equal(code(() => changeGroup(open, B, { ...NONE, remove: [A] }, 200, LIMITS)), 'SERVER_FORBIDDEN');
    assert.equal(code(() => changeGroup(open, B, { ...NONE, demote: [A] }, 200, LIMITS)), 'SERVER_FORBIDDEN');
    assert.equal(code(() => changeGroup(open, B, { ...NONE, settings: DEFAULT_SETTINGS }, 200, LIMITS)), 'SERVER_FORBIDDEN', 'settings: admins only, even unchanged');
    assert.equal(code(() => changeGroup(open, B, { ...NONE, inviteHash: null }, 200, LIMITS)), 'SERVER_FORBIDDEN');
    assert.equal(changeGroup(open, B, { ...NONE, attributes: new Uint8Array([9]) }, 200, LIMITS)?.summary.attributesChanged, true, 'info is open unless admins_edit_info');
    const closedInfo = { ...g, settings: { ...g.settings, adminsEditInfo: true } };
    assert.equal(code(() => changeGroup(closedInfo, B, { ...NONE, attributes: new Uint8Array([9]) }, 200, LIMITS)), 'SERVER_FORBIDDEN');
    assert.equal(changeGroup(closedInfo, A, { ...NONE, attributes: new Uint8Array([9]) }, 200, LIMITS)?.next?.attributes[0], 9);
  });

  it('answers undefined for a change that changes nothing, and keeps an admin', () => {
    const g = group();
    assert.equal(changeGroup(g, A, { ...NONE, add: [B], remove: [D], promote: [A], demote: [C], attributes: new Uint8Array([1]), inviteHash: null }, 200, LIMITS), undefined);
    assert.equal(code(() => changeGroup(g, A, { ...NONE, demote: [A] }, 200, LIMITS)), 'SERVER_CONFLICT');
    assert.equal(code(() => changeGroup(g, A, { ...NONE, remove: [A] }, 200, LIMITS)), 'SERVER_BAD_REQUEST');
    const two = changeGroup(g, A, { ...NONE, promote: [B] }, 200, LIMITS)?.next;
    assert.ok(two !== undefined);
    assert.deepEqual(changeGroup(two, A, { ...NONE, demote: [A] }, 300, LIMITS)?.summary.demoted, [A], 'self-demotion while another admin remains');
    assert.equal(code(() => changeGroup(g, A, { ...NONE, add: [D, 'e' as AccountId] }, 200, LIMITS)), 'SERVER_GROUP_FULL');
  });

  it('joins only with the current link password, constant answers otherwise', () => {
    const password = new Uint8Array(16).fill(7);
    const g = changeGroup(group(), A, { ...NONE, inviteHash: sha(password) }, 200, LIMITS)?.next;
    assert.ok(g !== undefined);
    assert.equal(code(() => joinGroup(g, D, sha(new Uint8Array(16)), 300, LIMITS)), 'SERVER_FORBIDDEN');
    const joined = joinGroup(g, D, sha(password), 300, LIMITS);
    assert.deepEqual([joined?.next?.revision, joined?.summary.joinedByLink, joined?.summary.added], [2, true, [D]]);
    assert.equal(joinGroup(g, B, sha(new Uint8Array(16)), 300, LIMITS), undefined, 'a member already');
    assert.equal(code(() => joinGroup(group(), D, sha(password), 300, LIMITS)), 'SERVER_FORBIDDEN', 'no link');
  });

  it('promotes the longest-standing member when the last admin leaves; the last member deletes the group', () => {
    const g = group();
    const later = changeGroup(g, A, { ...NONE, add: [D] }, 50, LIMITS)?.next; // D joined with an earlier clock reading
    assert.ok(later !== undefined);
    const left = leaveGroup(later, A);
    assert.deepEqual([left?.summary.left, left?.summary.removed, left?.summary.promoted], [true, [A], [D]]);
    assert.equal(leaveGroup(later, 'e' as AccountId), undefined);
    let current: GroupRecord | undefined = group();
    for (const who of [A, B]) current = leaveGroup(current as GroupRecord, who)?.next;
    assert.deepEqual(current?.members.map((m) => [m.accountId, m.admin]), [[C, true]]);
    const end = leaveGroup(current, C);
    assert.ok(end !== undefined);
    assert.deepEqual([end.next, end.summary.removed, end.summary.left], [undefined, [C], true]);
  });
});
