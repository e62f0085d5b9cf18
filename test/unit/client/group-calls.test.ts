// Group call signalling without media: the ring and join messages on the wire, and the group call manager's
// rules on the in-memory store: ringing and "answered / declined elsewhere", joins answered with a reply,
// the mesh's offer rule, the limit of 8 devices (a typed error locally, `FULL` to a 9th device), late
// joins, leaves, and what is refused: non-members (a member removed from the group too), messages naming
// another device than the one they came from, replays, messages from the future, stale media messages. This
// device's address is the highest of all here, so it never offers and no RTCPeerConnection is made: the
// media itself is tested end to end in test/integration/group-calls.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { GroupCall } from '../../../src/client/calls/group-call.ts';
import { GroupCallManager, type GroupCallEvent } from '../../../src/client/calls/group-manager.ts';
import type { CallRejectedEvent } from '../../../src/client/calls/manager.ts';
import { offersTo } from '../../../src/client/calls/topology.ts';
import { callMessageInit, MAX_GROUP_CALL_PARTICIPANTS, parseCallMessage, type CallSignal } from '../../../src/client/calls/wire.ts';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import type { Sender } from '../../../src/client/events.ts';
import { CallMessageSchema, type CallMessage_Media } from '../../../src/client/gen/content_pb.ts';
import type { AccountId, GroupId } from '../../../src/client/ids.ts';
import { InMemoryClientStore } from '../../../src/client/store/memory.ts';
import type { MessageRecord } from '../../../src/client/store/types.ts';

const acct = (n: number): AccountId => `${String(n).padStart(8, '0')}-1111-4111-8111-111111111111` as AccountId;
/** The highest address here: this device never offers. */
const SELF = 'ffffffff-ffff-4fff-8fff-ffffffffffff' as AccountId;
const A = acct(1);
const B = acct(2);
const GROUP = 'ab'.repeat(16) as GroupId;
const OTHER_GROUP = 'cd'.repeat(16) as GroupId;
const CALL_ID = '00112233445566778899aabbccddeeff';
const SDP = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n';

const from = (accountId: AccountId, deviceId = 1): Sender => ({ accountId, deviceId, number: undefined, numberVerified: false });
const me = (accountId: AccountId, deviceId = 1) => [{ accountId, deviceId }];

const signal = (body: Partial<CallSignal> & Pick<CallSignal, 'kind'>): CallSignal =>
  ({ callId: CALL_ID, destinationDeviceId: 0, groupId: GROUP, participants: [], ...body }) as CallSignal;

function roundTrip(s: CallSignal): CallSignal {
  return parseCallMessage(fromBinary(CallMessageSchema, toBinary(CallMessageSchema, create(CallMessageSchema, callMessageInit(s)))));
}

/** A manager over an in-memory store; sends are recorded; the group's members are `members.list`. */
function manager(now: { t: number }, opts: { members?: AccountId[]; inOtherCall?: boolean; otherDevices?: boolean } = {}) {
  const store = new InMemoryClientStore();
  const members = { list: opts.members ?? [SELF, A, B] };
  const sent: Array<{ to: AccountId; signal: CallSignal; durable: boolean }> = [];
  const events: GroupCallEvent[] = [];
  const rejected: CallRejectedEvent[] = [];
  const recorded: MessageRecord[] = [];
  const errors: unknown[] = [];
  let ts = 0;
  const m = new GroupCallManager(
    {
      self: { accountId: SELF, deviceId: 1 },
      store,
      now: () => now.t,
      randomBytes: (n) => new Uint8Array(n).fill(9),
      send: async (to, s, durable) => {
        sent.push({ to, signal: s, durable });
        return now.t + ++ts;
      },
      members: async (groupId) => {
        if (groupId !== GROUP || !members.list.includes(SELF)) throw new ClientError(ClientErrorCode.NotGroupMember, 'not a member');
        return members.list;
      },
      hasOtherDevices: async () => opts.otherDevices ?? false,
      inOtherCall: () => opts.inOtherCall ?? false,
      createConnection: async () => {
        throw new Error('no connection is made in these tests');
      },
      emitCall: (e) => events.push(e),
      emitRejected: (e) => rejected.push(e),
      emitMessage: (msg) => recorded.push(msg),
      onError: (e) => errors.push(e),
    },
    { ringTimeoutMs: 45_000 },
  );
  const handle = async (f: Sender, timestamp: number, s: CallSignal | undefined): Promise<void> => {
    m.handle(f, { timestamp, signal: s });
    await m.whenIdle();
  };
  return { m, store, members, sent, events, rejected, recorded, errors, handle };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('group call messages on the wire', () => {
  it('round-trips a ring, a join, a join reply and a FULL hang-up', () => {
    for (const s of [
      signal({ kind: 'ring', media: 'video', participants: me(A) }),
      signal({ kind: 'join', reply: false, media: 'audio', participants: me(A, 3) }),
      signal({ kind: 'join', reply: true, media: 'audio', participants: [...me(A), ...me(B, 2)], destinationDeviceId: 2 }),
      signal({ kind: 'hangup', reason: 'full', deviceId: 4, destinationDeviceId: 2 }),
    ]) {
      assert.deepEqual(roundTrip(s), s);
    }
  });

  it('refuses a ring or join without a group or without naming its sender', () => {
    const bad: Array<[string, Parameters<typeof create<typeof CallMessageSchema>>[1]]> = [
      ['ring without a group', { callId: new Uint8Array(16), kind: { case: 'ring', value: {} } }],
      ['join without participants', { callId: new Uint8Array(16), groupId: GROUP, kind: { case: 'join', value: {} } }],
      ['unknown media', { callId: new Uint8Array(16), groupId: GROUP, participants: me(A), kind: { case: 'ring', value: { media: 7 as CallMessage_Media } } }],
    ];
    for (const [what, init] of bad) {
      assert.throws(() => parseCallMessage(create(CallMessageSchema, init)), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_CONTENT'), what);
    }
  });

  it('lets the lower address of each pair offer', () => {
    assert.equal(offersTo({ accountId: A, deviceId: 1 }, { accountId: B, deviceId: 1 }), true);
    assert.equal(offersTo({ accountId: B, deviceId: 1 }, { accountId: A, deviceId: 1 }), false);
    assert.equal(offersTo({ accountId: A, deviceId: 1 }, { accountId: A, deviceId: 2 }), true);
  });
});

describe('GroupCallManager', () => {
  it('rings on a ring from a member; stops when another device of ours answers; the call stays joinable', async () => {
    const now = { t: 1_000_000 };
    const { handle, events, rejected } = manager(now);
    await handle(from(A), now.t - 100, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    const call = events[0]?.call as GroupCall;
    assert.deepEqual([events[0]?.type, call.state, call.direction, call.startedBy?.accountId, call.participants.map((p) => [p.accountId, p.state])], [
      'incoming',
      'ringing',
      'incoming',
      A,
      [[A, 'joined']],
    ]);
    // The same ring again changes nothing; an own device saying it answered, naming another device: forged.
    await handle(from(A), now.t - 100, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    await handle(from(SELF, 2), now.t, signal({ kind: 'hangup', reason: 'answered-elsewhere', deviceId: 3 }));
    assert.equal(call.state, 'ringing');
    await handle(from(SELF, 2), now.t, signal({ kind: 'hangup', reason: 'answered-elsewhere', deviceId: 2 }));
    assert.deepEqual([call.state, events.map((e) => e.type)], ['idle', ['incoming', 'running']]);
    assert.deepEqual(rejected.map((r) => r.reason), ['wrong-device']);
  });

  it('refuses rings from non-members, naming another device, from our account, from the future, and replays of an ended call', async () => {
    const now = { t: 2_000_000 };
    const { handle, events, rejected, m } = manager(now);
    const outsider = acct(77);
    await handle(from(outsider), now.t, signal({ kind: 'ring', media: 'audio', participants: me(outsider) }));
    await handle(from(A, 1), now.t, signal({ kind: 'ring', media: 'audio', participants: me(A, 2) }));
    await handle(from(A, 1), now.t, signal({ kind: 'ring', media: 'audio', participants: me(B) }));
    await handle(from(SELF, 2), now.t, signal({ kind: 'ring', media: 'audio', participants: me(SELF, 2) }));
    await handle(from(A), now.t + 3_600_000, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    await handle(from(A), now.t, signal({ kind: 'ring', media: 'audio', participants: me(A), groupId: OTHER_GROUP }));
    await handle(from(A), now.t, undefined);
    assert.deepEqual(rejected.map((r) => r.reason), ['not-member', 'wrong-device', 'wrong-device', 'not-own-device', 'future', 'not-member', 'malformed']);
    assert.equal(events.length, 0);
    // A call that ended here: its ring again is a replay.
    await handle(from(A), now.t, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    const call = events[0]?.call as GroupCall;
    await handle(from(A), now.t + 10, signal({ kind: 'hangup', reason: 'normal', deviceId: 1 }));
    assert.deepEqual([call.state, call.end?.by], ['ended', 'remote']);
    await handle(from(A), now.t + 20, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    assert.equal(rejected.at(-1)?.reason, 'replayed');
    assert.equal(m.active.length, 0);
  });

  it('records a ring older than the ring timeout as a running call, not ringing; and the missed call in the group chat when it ends', async () => {
    const now = { t: 3_000_000 };
    const { handle, events, recorded } = manager(now);
    await handle(from(A), now.t - 60_000, signal({ kind: 'ring', media: 'video', participants: me(A) }));
    assert.deepEqual([events[0]?.type, events[0]?.call.state], ['running', 'idle']);
    await handle(from(A), now.t, signal({ kind: 'hangup', reason: 'normal', deviceId: 1 }));
    await settle();
    assert.deepEqual(events.map((e) => e.type), ['running', 'ended']);
    assert.deepEqual([recorded[0]?.conversationId, recorded[0]?.id, recorded[0]?.kind, recorded[0]?.call?.outcome, recorded[0]?.call?.media], [
      GROUP,
      `${A}:${now.t - 60_000}`,
      'call',
      'missed',
      'video',
    ]);
  });

  it('starts a call: rings every other member durably, joined at once; answers joins with a reply and admits up to 8 devices; FULL to the 9th', async () => {
    const now = { t: 4_000_000 };
    const others = Array.from({ length: 9 }, (_, i) => acct(i + 1));
    const { m, handle, sent, rejected, events, errors } = manager(now, { members: [SELF, ...others] });
    const call = await m.start(GROUP, {});
    assert.deepEqual([call.state, call.direction, events.map((e) => e.type)], ['joined', 'outgoing', ['joined']]);
    assert.deepEqual(
      sent.map((s) => [s.to, s.signal.kind, s.durable, s.signal.participants]),
      others.map((o) => [o, 'ring', true, me(SELF)]),
    );
    sent.length = 0;
    for (const [i, o] of others.entries()) await handle(from(o), now.t + i, signal({ callId: call.id, kind: 'join', reply: false, media: 'audio', participants: me(o) }));
    assert.equal(call.participants.length, MAX_GROUP_CALL_PARTICIPANTS - 1);
    // Seven replies (ephemeral, to the joining device), then FULL to the ninth device.
    assert.deepEqual(
      sent.map((s) => [s.to, s.signal.kind, s.durable, s.signal.destinationDeviceId]),
      [...others.slice(0, 7).map((o) => [o, 'join', false, 1]), [others[7], 'hangup', false, 1], [others[8], 'hangup', false, 1]],
    );
    const last = sent.at(-1)?.signal;
    assert.equal(last?.kind === 'hangup' && last.reason, 'full');
    assert.deepEqual(rejected.map((r) => r.reason), ['full', 'full']);
    // This device offers to nobody (its address is the highest): every participant waits for an offer.
    assert.ok(call.participants.every((p) => p.state === 'connecting'));
    assert.deepEqual(errors, []);
    m.close();
  });

  it('refuses replayed joins, offers from the side that must answer, unasked answers, media without a device, stale media', async () => {
    const now = { t: 5_000_000 };
    const { m, handle, rejected } = manager(now);
    const call = await m.start(GROUP, {});
    const join = signal({ callId: call.id, kind: 'join', reply: false, media: 'audio', participants: me(A) });
    await handle(from(A), now.t, join);
    await handle(from(A), now.t, join);
    await handle(from(A), now.t, signal({ callId: call.id, kind: 'answer', sdp: SDP, destinationDeviceId: 1 }));
    await handle(from(A), now.t, signal({ callId: call.id, kind: 'offer', sdp: SDP, media: 'audio', destinationDeviceId: 0 }));
    await handle(from(A), now.t - 120_000, signal({ callId: call.id, kind: 'offer', sdp: SDP, media: 'audio', destinationDeviceId: 1 }));
    assert.deepEqual(rejected.map((r) => r.reason), ['replayed', 'unexpected', 'wrong-device', 'stale']);
    m.close();
  });

  it('takes a leave only from the device it names, drops the participant, and ignores a leave older than the device’s newest join', async () => {
    const now = { t: 6_000_000 };
    const { m, handle, rejected } = manager(now);
    const call = await m.start(GROUP, {});
    const left: string[] = [];
    call.on('participantLeft', ({ participant, reason }) => left.push(`${participant.accountId}:${reason}`));
    await handle(from(A), now.t, signal({ callId: call.id, kind: 'join', reply: false, media: 'audio', participants: me(A) }));
    await handle(from(B), now.t, signal({ callId: call.id, kind: 'hangup', reason: 'normal', deviceId: 1 }));
    await handle(from(A), now.t, signal({ callId: call.id, kind: 'hangup', reason: 'normal', deviceId: 2 }));
    await handle(from(A), now.t - 5, signal({ callId: call.id, kind: 'hangup', reason: 'normal', deviceId: 1 }));
    assert.deepEqual([call.participants.length, left], [1, []]);
    await handle(from(A), now.t + 5, signal({ callId: call.id, kind: 'hangup', reason: 'normal', deviceId: 1 }));
    assert.deepEqual([call.participants.length, left, call.state], [0, [`${A}:normal`], 'joined']);
    // FULL out of the blue (not an answer to a fresh join of ours) is refused.
    now.t += 120_000;
    await handle(from(B), now.t, signal({ callId: call.id, kind: 'hangup', reason: 'full', deviceId: 1, destinationDeviceId: 1 }));
    assert.deepEqual(rejected.map((r) => r.reason), ['wrong-device', 'unexpected']);
    assert.equal(call.state, 'joined');
    m.close();
  });

  it('a member removed from the group is refused and dropped from the call; removed ourselves, we cannot start or join', async () => {
    const now = { t: 7_000_000 };
    const { m, handle, rejected, members } = manager(now);
    const call = await m.start(GROUP, {});
    await handle(from(A), now.t, signal({ callId: call.id, kind: 'join', reply: false, media: 'audio', participants: me(A) }));
    await handle(from(B), now.t, signal({ callId: call.id, kind: 'join', reply: false, media: 'audio', participants: me(B) }));
    assert.equal(call.participants.length, 2);
    members.list = [SELF, A];
    m.membershipChanged(GROUP);
    await m.whenIdle();
    assert.deepEqual(call.participants.map((p) => p.accountId), [A]);
    await handle(from(B), now.t + 1, signal({ callId: call.id, kind: 'join', reply: false, media: 'audio', participants: me(B) }));
    assert.deepEqual(rejected.map((r) => r.reason), ['not-member']);
    await m.leave(call);
    members.list = [A, B];
    await assert.rejects(m.start(GROUP, {}), (e: unknown) => ClientError.is(e, 'CLIENT_NOT_GROUP_MEMBER'));
    m.close();
  });

  it('joins late: a call heard of from joins only is idle and joinable; at 8 devices joining is CLIENT_CALL_FULL', async () => {
    const now = { t: 8_000_000 };
    const others = Array.from({ length: 9 }, (_, i) => acct(i + 1));
    const { m, handle, events, sent } = manager(now, { members: [SELF, ...others], otherDevices: true });
    await handle(from(others[0] as AccountId), now.t, signal({ kind: 'join', reply: false, media: 'audio', participants: me(others[0] as AccountId) }));
    const call = events[0]?.call as GroupCall;
    assert.deepEqual([events[0]?.type, call.state, call.startedBy], ['running', 'idle', undefined]);
    for (const o of others.slice(1, 8)) await handle(from(o), now.t, signal({ kind: 'join', reply: false, media: 'audio', participants: me(o) }));
    assert.equal(call.participants.length, 8);
    await assert.rejects(call.join(), (e: unknown) => ClientError.is(e, 'CLIENT_CALL_FULL'));
    // One leaves: now there is room.
    await handle(from(others[3] as AccountId), now.t + 1, signal({ kind: 'hangup', reason: 'normal', deviceId: 1 }));
    sent.length = 0;
    await call.join();
    await settle();
    assert.equal(call.state, 'joined');
    const joins = sent.filter((s) => s.signal.kind === 'join');
    assert.deepEqual(new Set(joins.map((s) => s.to)), new Set(others));
    assert.ok(joins.every((s) => s.durable && s.signal.destinationDeviceId === 0));
    // Our other devices stop ringing.
    assert.ok(sent.some((s) => s.to === SELF && s.signal.kind === 'hangup' && s.signal.reason === 'answered-elsewhere'));
    m.close();
  });

  it('replaces a local track only while joined, and only of a kind the call has', async () => {
    const now = { t: 10_000_000 };
    const { m, handle, events, errors } = manager(now);
    await handle(from(A), now.t, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    const ringing = events[0]?.call as GroupCall;
    await assert.rejects(ringing.replaceLocalTrack('audio', null), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'not joined');
    await ringing.join();
    await handle(from(A), now.t + 1, signal({ callId: ringing.id, kind: 'join', reply: true, media: 'audio', participants: me(A), destinationDeviceId: 1 }));
    await ringing.replaceLocalTrack('audio', null); // joined: the pair waiting for its offer takes it then
    await assert.rejects(ringing.replaceLocalTrack('video', null), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'an audio call has no video');
    await assert.rejects(ringing.replaceLocalTrack('screen' as 'audio', null), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'no such kind');
    await ringing.leave();
    await assert.rejects(ringing.replaceLocalTrack('audio', null), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'), 'left');
    assert.deepEqual(errors, []);
    m.close();
  });

  it('after leaving a call the others are still in, the same call is followed as a new idle call and can be joined again; ended once everybody left', async () => {
    const now = { t: 11_000_000 };
    const { m, handle, events, sent, rejected, errors } = manager(now);
    const first = await m.start(GROUP, {});
    const join = (who: AccountId, t: number, reply = false): Promise<void> =>
      handle(from(who), t, signal({ callId: first.id, kind: 'join', reply, media: 'audio', participants: me(who), destinationDeviceId: reply ? 1 : 0 }));
    await join(A, now.t + 1);
    await join(B, now.t + 2);
    events.length = 0;
    sent.length = 0;
    await m.leave(first);
    assert.deepEqual([first.state, first.end?.by], ['ended', 'local']);
    const again = m.forGroup(GROUP) as GroupCall;
    assert.deepEqual(events.map((e) => [e.type, e.call === first]), [['ended', true], ['running', false]]);
    assert.deepEqual([again.id, again.state, again.direction, again.participants.map((p) => [p.accountId, p.state])], [first.id, 'idle', 'outgoing', [[A, 'joined'], [B, 'joined']]]);
    assert.deepEqual(sent.map((s) => [s.to, s.signal.kind]), [[A, 'hangup'], [B, 'hangup']]);
    // Replays stay refused: an old join of A.
    await join(A, now.t + 1);
    assert.deepEqual(rejected.map((r) => r.reason), ['replayed']);
    assert.equal(m.active.length, 1);
    // Joined again: a fresh join to every member; the others' replies (newer) connect the pairs.
    now.t += 1_000;
    sent.length = 0;
    await again.join();
    assert.equal(again.state, 'joined');
    assert.deepEqual(sent.filter((s) => s.signal.kind === 'join').map((s) => [s.to, s.durable, s.signal.kind === 'join' && s.signal.reply]), [[A, true, false], [B, true, false]]);
    await join(A, now.t + 1, true);
    await join(B, now.t + 2, true);
    assert.deepEqual(again.participants.map((p) => p.state), ['connecting', 'connecting']);
    // Left again while they stay: followed again; when both leave, it is over: nothing to join.
    await m.leave(again);
    const third = m.forGroup(GROUP) as GroupCall;
    assert.deepEqual([again.state, third.state, third.id], ['ended', 'idle', first.id]);
    await handle(from(A), now.t + 10, signal({ callId: first.id, kind: 'hangup', reason: 'normal', deviceId: 1 }));
    assert.equal(third.state, 'idle');
    await handle(from(B), now.t + 11, signal({ callId: first.id, kind: 'hangup', reason: 'normal', deviceId: 1 }));
    assert.deepEqual([third.state, third.end?.by, m.forGroup(GROUP), m.active.length], ['ended', 'remote', undefined, 0]);
    await handle(from(A), now.t + 12, signal({ callId: first.id, kind: 'ring', media: 'audio', participants: me(A) }));
    assert.equal(rejected.at(-1)?.reason, 'replayed');
    await settle();
    assert.deepEqual(errors, []);
    m.close();
  });

  it('another device leaves and joins again: its new join is taken (a reply is sent), its old join and its media from before are replays', async () => {
    const now = { t: 12_000_000 };
    const { m, handle, sent, rejected } = manager(now);
    const call = await m.start(GROUP, {});
    const msg = (body: Partial<CallSignal> & Pick<CallSignal, 'kind'>): CallSignal => signal({ callId: call.id, ...body });
    const oldJoin = msg({ kind: 'join', reply: false, media: 'audio', participants: me(A) });
    await handle(from(A), now.t + 1, oldJoin);
    const first = call.participants[0];
    await handle(from(A), now.t + 5, msg({ kind: 'hangup', reason: 'normal', deviceId: 1 }));
    assert.deepEqual([call.participants.length, call.state], [0, 'joined']);
    // Before it comes back: its old join, and an offer it made before leaving (which would admit it), are replays.
    await handle(from(A), now.t + 1, oldJoin);
    await handle(from(A), now.t + 3, msg({ kind: 'offer', sdp: SDP, media: 'audio', destinationDeviceId: 1 }));
    assert.deepEqual([call.participants.length, rejected.map((r) => r.reason)], [0, ['replayed', 'replayed']]);
    // It joins again (newer than its leave): admitted, answered with a reply; a new participant object.
    sent.length = 0;
    await handle(from(A), now.t + 10, msg({ kind: 'join', reply: false, media: 'audio', participants: me(A) }));
    const back = call.participants[0];
    assert.ok(back && back !== first);
    assert.deepEqual([back.joinedAt, back.state], [now.t + 10, 'connecting']);
    assert.deepEqual(sent.map((s) => [s.to, s.signal.kind, s.signal.kind === 'join' && s.signal.reply]), [[A, 'join', true]]);
    // Replays after it: the old join, and the old offer (older than its new join); neither drops it.
    await handle(from(A), now.t + 1, oldJoin);
    await handle(from(A), now.t + 3, msg({ kind: 'offer', sdp: SDP, media: 'audio', destinationDeviceId: 1 }));
    assert.deepEqual(rejected.map((r) => r.reason), ['replayed', 'replayed', 'replayed', 'replayed']);
    assert.equal(call.participants[0], back);
    m.close();
  });

  it('declining stops ringing here and on our other devices; a device in a 1:1 call does not ring and cannot join', async () => {
    const now = { t: 9_000_000 };
    const { m, handle, events, sent } = manager(now, { otherDevices: true });
    await handle(from(A), now.t, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    const call = events[0]?.call as GroupCall;
    await call.decline();
    await settle();
    assert.equal(call.state, 'idle');
    assert.deepEqual(sent.map((s) => [s.to, s.signal.kind === 'hangup' && s.signal.reason, s.durable]), [[SELF, 'declined-elsewhere', true]]);
    m.close();

    const busy = manager(now, { inOtherCall: true });
    await busy.handle(from(A), now.t, signal({ kind: 'ring', media: 'audio', participants: me(A) }));
    const c2 = busy.events[0]?.call as GroupCall;
    assert.deepEqual([busy.events[0]?.type, c2.state], ['running', 'idle']);
    await assert.rejects(c2.join(), (e: unknown) => ClientError.is(e, 'CLIENT_INVALID_ARGUMENT'));
    busy.m.close();
  });
});
