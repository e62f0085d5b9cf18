// `parley call --group` and `parley answer --group` end to end: three terminal profiles on `parley serve` in
// one group; two wait for the group call and join it, one starts it; each plays a tone and records every
// other participant (one file each); all exit 0 with non-silent Opus recordings of both others. Inside a
// loopback-only network namespace, as calls.test.ts (skipped where unshare is not allowed, except under
// CI=true).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { NUMBERS, cliOk, startCli, tempDir } from '../support/cli.ts';
import { NETNS_ENV, probeAudio, describeInNetns, startServer, toneFile } from './calls-support.ts';

const FILE = fileURLToPath(import.meta.url);

if (process.env[NETNS_ENV] !== '1') {
  describeInNetns('parley call --group / parley answer --group', FILE, 300_000);
} else {
  describe('parley call --group / parley answer --group (in a loopback-only namespace)', () => {
    it('starts a group call, two join it, everybody records both others, and all leave after --duration', async () => {
      const tmp = tempDir('parley-group-calls-cli-');
      const server = await startServer(`${tmp.dir}/server`);
      try {
        const who = ['alice', 'bob', 'carol'] as const;
        const profile = (w: (typeof who)[number]): string => `${tmp.dir}/${w}`;
        for (const w of who) await cliOk(['register', NUMBERS[w].number, '--server', server.url, '--code', NUMBERS[w].code, '--profile', profile(w)]);
        const groupId = (await cliOk(['group', 'create', 'call', NUMBERS.bob.number, NUMBERS.carol.number, '--json', '--profile', profile('alice')])).lines[0]?.groupId as string;
        assert.match(groupId, /^[0-9a-f]{32}$/);
        for (const w of ['bob', 'carol'] as const) await cliOk(['receive', '--until-empty', '--profile', profile(w)]);
        const tones = { alice: toneFile(tmp.dir, 'a.opus', 440, 2), bob: toneFile(tmp.dir, 'b.opus', 660, 2), carol: toneFile(tmp.dir, 'c.opus', 880, 2) };
        const answering = (['bob', 'carol'] as const).map((w) =>
          startCli(['answer', '--group', '--json', '--profile', profile(w), '--play', tones[w], '--record', `${tmp.dir}/${w}-heard.opus`, '--timeout', '90', '--duration', '5']),
        );
        const calling = await cliOk(['call', '--group', groupId, '--json', '--profile', profile('alice'), '--play', tones.alice, '--record', `${tmp.dir}/alice-heard.opus`, '--duration', '5'], {
          timeoutMs: 120_000,
        });
        const answered = await Promise.all(answering.map((a) => a.done(90_000)));
        for (const a of answered) assert.equal(a.code, 0, a.stderr);
        const events = (lines: Array<Record<string, unknown>>): unknown[] => lines.map((l) => l.event);
        assert.equal(events(calling.lines)[0], 'joined');
        for (const a of answered) assert.deepEqual(events(a.lines).slice(0, 2), ['incoming', 'joined']);
        for (const [name, r] of [['alice', calling], ['bob', answered[0]], ['carol', answered[1]]] as const) {
          const lines = r?.lines ?? [];
          assert.equal(lines.filter((l) => l.event === 'connected').length, 2, `${name}: ${r?.stdout}`);
          const end = lines.at(-1) as { event: string; reason: string; recordings: Array<{ path: string; rms: number }> };
          assert.equal(end.event, 'ended');
          assert.equal(end.recordings.length, 2, `${name} recorded ${end.recordings.length} participants`);
          for (const rec of end.recordings) {
            assert.ok(rec.rms > 500, `${name}'s recording is silent: ${JSON.stringify(rec)}`);
            assert.equal(probeAudio(rec.path).codec, 'opus');
          }
        }
      } finally {
        await server.stop();
        tmp.remove();
      }
    });
  });
}
