// Running ffmpeg/ffprobe (src/node/media/tools.ts), parsing ffprobe's JSON, and what preparing does when a
// tool is missing (PARLEY_FFMPEG / PARLEY_FFPROBE pointing nowhere).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ClientError, ClientErrorCode } from '../../../src/client/errors.ts';
import { prepareFile } from '../../../src/node/media/prepare.ts';
import { parseFfprobeJson } from '../../../src/node/media/probe.ts';
import { ffmpegFileArg, MAX_STDERR_CHARS, runTool, toolPath } from '../../../src/node/media/tools.ts';

let root: string;
const saved = { ffmpeg: process.env['PARLEY_FFMPEG'], ffprobe: process.env['PARLEY_FFPROBE'] };

function restoreEnv(): void {
  for (const [name, value] of [['PARLEY_FFMPEG', saved.ffmpeg], ['PARLEY_FFPROBE', saved.ffprobe]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'parley-media-tools-'));
  const run = (...args: string[]): void => void execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args]);
  run('-f', 'lavfi', '-i', 'sine', '-t', '0.5', path.join(root, 'tone.wav'));
  run('-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-t', '0.5', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', path.join(root, 'tiny.mp4'));
  await sharp({ create: { width: 50, height: 40, channels: 3, background: 'red' } }).jpeg().toFile(path.join(root, 'red.jpg'));
});
afterEach(restoreEnv);
after(async () => {
  restoreEnv();
  await rm(root, { recursive: true, force: true });
});

const isMissing = (err: unknown): boolean => ClientError.is(err, ClientErrorCode.MediaToolMissing) && /install/.test((err as Error).message);

describe('runTool', () => {
  it('runs the tool from the PATH, or from PARLEY_FFMPEG / PARLEY_FFPROBE', async () => {
    assert.equal(toolPath('ffmpeg', {}), 'ffmpeg');
    assert.equal(toolPath('ffprobe', { PARLEY_FFPROBE: '/opt/ff/ffprobe' }), '/opt/ff/ffprobe');
    const { stdout } = await runTool('ffprobe', ['-version']);
    assert.match(stdout.toString(), /ffprobe version/);
  });

  it('fails with CLIENT_MEDIA_TOOL_MISSING, saying what to install, when the binary is absent', async () => {
    process.env['PARLEY_FFMPEG'] = '/nonexistent/ffmpeg';
    await assert.rejects(runTool('ffmpeg', ['-version']), isMissing);
  });

  it('fails with CLIENT_BAD_MEDIA_INPUT and the end of stderr when the tool fails', async () => {
    await assert.rejects(runTool('ffprobe', ['-v', 'error', ffmpegFileArg(path.join(root, 'nope.mp4'))]), (err: unknown) => {
      assert.ok(ClientError.is(err, ClientErrorCode.BadMediaInput));
      assert.match(err.message, /exited with status 1: .*No such file/);
      return true;
    });
  });

  it('kills the tool when the signal aborts', async () => {
    const controller = new AbortController();
    // An endless source: only the abort can stop it.
    const running = runTool('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-f', 'lavfi', '-i', 'sine', '-f', 'null', '-'], { signal: controller.signal });
    controller.abort();
    await assert.rejects(running, (err: unknown) => ClientError.is(err, ClientErrorCode.Aborted));
    const aborted = AbortSignal.abort();
    await assert.rejects(runTool('ffmpeg', ['-version'], { signal: aborted }), (err: unknown) => ClientError.is(err, ClientErrorCode.Aborted));
  });

  it('bounds stdout and keeps only the end of stderr', async () => {
    await assert.rejects(
      runTool('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'sine', '-f', 'wav', 'pipe:1'], { maxStdoutBytes: 100_000 }),
      (err: unknown) => ClientError.is(err, ClientErrorCode.BadMediaInput) && /more than 100000 bytes/.test((err as Error).message),
    );
    // -loglevel debug prints far more than the kept tail.
    const { stderr } = await runTool('ffmpeg', ['-nostdin', '-loglevel', 'debug', '-f', 'lavfi', '-i', 'sine', '-t', '0.2', '-f', 'null', '-']);
    assert.ok(stderr.length > 0 && stderr.length <= MAX_STDERR_CHARS);
  });

  it('passes file names as file: arguments, so they cannot look like options or protocols', () => {
    assert.equal(ffmpegFileArg('/a/-x.mp4'), 'file:/a/-x.mp4');
    assert.ok(ffmpegFileArg('http://example.com/x.mp4').startsWith(`file:${process.cwd()}`));
  });
});

describe('preparing without ffmpeg', () => {
  it('fails with CLIENT_MEDIA_TOOL_MISSING for audio and video, and leaves nothing behind', async () => {
    process.env['PARLEY_FFPROBE'] = '/nonexistent/ffprobe';
    const workDir = path.join(root, 'work-missing');
    await assert.rejects(prepareFile(path.join(root, 'tiny.mp4'), { workDir }), isMissing);
    await assert.rejects(prepareFile(path.join(root, 'tone.wav'), { workDir, voiceNote: true }), isMissing);
    restoreEnv();
    process.env['PARLEY_FFMPEG'] = '/nonexistent/ffmpeg';
    await assert.rejects(prepareFile(path.join(root, 'tiny.mp4'), { workDir }), isMissing);
    await assert.rejects(prepareFile(path.join(root, 'tone.wav'), { workDir, voiceNote: true }), isMissing);
    assert.deepEqual(await readdir(workDir), []);
  });

  it('still sends images, documents and originals (a video without its thumbnail)', async () => {
    process.env['PARLEY_FFMPEG'] = '/nonexistent/ffmpeg';
    process.env['PARLEY_FFPROBE'] = '/nonexistent/ffprobe';
    const workDir = path.join(root, 'work-images');
    const image = await prepareFile(path.join(root, 'red.jpg'), { workDir });
    assert.equal(image.input.type, 'image');
    assert.ok(image.input.thumbnail !== undefined);
    const document = await prepareFile(path.join(root, 'tiny.mp4'), { workDir, asDocument: true });
    assert.equal(document.input.type, 'document');
    assert.equal(document.input.contentType, 'video/mp4');

    delete process.env['PARLEY_FFPROBE'];
    const original = await prepareFile(path.join(root, 'tiny.mp4'), { workDir, original: true });
    assert.equal(original.input.type, 'video');
    assert.deepEqual([original.input.width, original.input.height], [160, 120]);
    assert.equal(original.input.thumbnail, undefined, 'no ffmpeg, no frame: sent without a thumbnail');
  });
});

describe('parseFfprobeJson', () => {
  const json = (value: unknown): string => JSON.stringify(value);

  it('reads a video with a display-matrix rotation and non-square pixels as displayed', () => {
    const probe = parseFfprobeJson(
      json({
        streams: [
          { codec_type: 'video', codec_name: 'hevc', width: 1920, height: 1080, avg_frame_rate: '30000/1001', side_data_list: [{ side_data_type: 'Display Matrix', rotation: -90 }] },
          { codec_type: 'audio', codec_name: 'aac', channels: 2 },
        ],
        format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '12.345000' },
      }),
    );
    assert.deepEqual(probe, {
      kind: 'video',
      formatName: 'mov,mp4,m4a,3gp,3g2,mj2',
      durationMs: 12345,
      width: 1080,
      height: 1920,
      videoCodec: 'hevc',
      audioCodec: 'aac',
      audioChannels: 2,
      frameRate: 30000 / 1001,
    });
    const anamorphic = parseFfprobeJson(json({ streams: [{ codec_type: 'video', width: 720, height: 576, sample_aspect_ratio: '16:11', tags: { rotate: '180' } }], format: {} }));
    assert.deepEqual([anamorphic?.width, anamorphic?.height, anamorphic?.durationMs], [1047, 576, undefined]);
  });

  it('treats cover art as no video, and takes the duration from the streams when the format has none', () => {
    const probe = parseFfprobeJson(
      json({
        streams: [
          { codec_type: 'video', codec_name: 'mjpeg', width: 500, height: 500, disposition: { attached_pic: 1 } },
          { codec_type: 'audio', codec_name: 'mp3', channels: 2, duration: '3.5' },
        ],
        format: { format_name: 'mp3' },
      }),
    );
    assert.equal(probe?.kind, 'audio');
    assert.equal(probe?.width, undefined);
    assert.equal(probe?.durationMs, 3500);
  });

  it('rejects what holds no audio or video, and ignores malformed fields', () => {
    assert.equal(parseFfprobeJson('not json'), undefined);
    assert.equal(parseFfprobeJson('[]'), undefined);
    assert.equal(parseFfprobeJson(json({ streams: [], format: { format_name: 'mp4' } })), undefined);
    assert.equal(parseFfprobeJson(json({ streams: [{ codec_type: 'video', width: 10, height: 10 }], format: { format_name: 'png_pipe' } })), undefined);
    assert.equal(parseFfprobeJson(json({ streams: [{ codec_type: 'data' }], format: {} })), undefined);
    const odd = parseFfprobeJson(
      json({ streams: [{ codec_type: 'video', width: -5, height: '720', codec_name: 7, avg_frame_rate: '0/0' }, 'x', null], format: { duration: 'N/A', format_name: 5 } }),
    );
    assert.deepEqual(odd, {
      kind: 'video',
      formatName: 'unknown',
      durationMs: undefined,
      width: undefined,
      height: undefined,
      videoCodec: undefined,
      audioCodec: undefined,
      audioChannels: undefined,
      frameRate: undefined,
    });
  });
});
