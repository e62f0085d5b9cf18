// `parley call` and `parley answer` end to end: two terminal profiles on `parley serve`, one answering, one
// calling, each playing a tone and recording the other's; both exit 0, the recordings are non-silent Opus.
// Inside a loopback-only network namespace, as calls.test.ts (skipped where unshare is not allowed, except
// under CI=true).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { NUMBERS, cliOk, startCli, tempDir } from '../support/cli.ts';
import { NETNS_ENV, probeAudio, describeInNetns, startServer, toneFile } from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('parley call / parley answer', FILE, 300_000);
} else {
  describe('parley call / parley answer (in a loopback-only namespace)', () => {
    it('calls, answers, plays and records both ways, and hangs up after --duration', async () => {
      const tmp = tempDir('parley-calls-cli-');
      const server = await startServer(`${tmp.dir}/server`);
      try {
        const alice = `${tmp.dir}/alice`;
        const bob = `${tmp.dir}/bob`;
        await cliOk(['register', NUMBERS.alice.number, '--server', server.url, '--code', NUMBERS.alice.code, '--profile', alice]);
        await cliOk(['register', NUMBERS.bob.number, '--server', server.url, '--code', NUMBERS.bob.code, '--profile', bob]);
        const toneA = toneFile(tmp.dir, 'a.opus', 440, 2);
        const toneB = toneFile(tmp.dir, 'b.opus', 880, 2);
        const answering = startCli(['answer', '--json', '--profile', bob, '--play', toneB, '--record', `${tmp.dir}/bob-heard.opus`, '--timeout', '90']);
        const calling = await cliOk(['call', NUMBERS.bob.number, '--json', '--profile', alice, '--play', toneA, '--record', `${tmp.dir}/alice-heard.opus`, '--duration', '3'], { timeoutMs: 120_000 });
        const answered = await answering.done(60_000);
        assert.equal(answered.code, 0, answered.stderr);
        const events = (lines: Array<Record<string, unknown>>): unknown[] => lines.map((l) => l.event);
        assert.deepEqual(events(calling.lines).filter((e) => e !== 'ringing'), ['dialing', 'connected', 'ended']);
        assert.deepEqual(events(answered.lines), ['incoming', 'connected', 'ended']);
        const endA = calling.lines.at(-1) as { outcome: string; reason: string; by: string; durationMs: number; recording: { path: string; rms: number } };
        const endB = answered.lines.at(-1) as typeof endA;
        assert.deepEqual([endA.outcome, endA.reason, endA.by], ['answered', 'normal', 'local']);
        assert.deepEqual([endB.outcome, endB.reason, endB.by], ['answered', 'normal', 'remote']);
        assert.ok(endA.durationMs >= 2_500, `connected ${endA.durationMs} ms`);
        for (const [who, end] of [['caller', endA], ['callee', endB]] as const) {
          assert.ok(end.recording.rms > 500, `${who}'s recording is silent: ${JSON.stringify(end.recording)}`);
          assert.equal(probeAudio(end.recording.path).codec, 'opus', who);
        }
        // Both chats record the call.
        const messages = await cliOk(['messages', NUMBERS.alice.number, '--json', '--profile', bob]);
        assert.equal(messages.lines.filter((l) => l.type === 'call' && l.direction === 'incoming').length, 1, messages.stdout);
      } finally {
        await server.stop();
        tmp.remove();
      }
    });
  });
}
