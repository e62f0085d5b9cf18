/**
 * Running Debian's `ffmpeg` and `ffprobe` (docs/media.md, "Preparing"): spawned without a shell, with an
 * argument array, a bounded capture of stdout and stderr, and an AbortSignal that kills the child. The
 * paths default to the names on the `PATH` and can be overridden with `PARLEY_FFMPEG` / `PARLEY_FFPROBE`.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { abortError, ClientError, ClientErrorCode } from '../../client/errors.js';

/** The external programs media preparation runs. */
export type MediaTool = 'ffmpeg' | 'ffprobe';

const ENV: Readonly<Record<MediaTool, string>> = { ffmpeg: 'PARLEY_FFMPEG', ffprobe: 'PARLEY_FFPROBE' };

/** Default limit of captured stdout: generous for ffprobe's JSON and a small piped frame. */
export const DEFAULT_MAX_STDOUT_BYTES = 16 * 1024 * 1024;
/** Only the end of stderr is kept (the tool's last words are the useful ones). */
export const MAX_STDERR_CHARS = 4096;

/** The path (or `PATH` name) a tool runs from: `PARLEY_FFMPEG` / `PARLEY_FFPROBE`, else its name. */
export function toolPath(tool: MediaTool, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[ENV[tool]];
  return configured !== undefined && configured !== '' ? configured : tool;
}

/** Options of {@link runTool}. */
export interface RunToolOptions {
  /** Kills the child (SIGKILL) and rejects with the abort error. */
  readonly signal?: AbortSignal | undefined;
  /** More stdout than this kills the child and fails the run. Default {@link DEFAULT_MAX_STDOUT_BYTES}. */
  readonly maxStdoutBytes?: number | undefined;
  /** Default `process.env` (read for the tool path only; the child inherits `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** What a successful run printed. */
export interface ToolResult {
  readonly stdout: Buffer;
  /** The last {@link MAX_STDERR_CHARS} characters of stderr. */
  readonly stderr: string;
}

/** The error for a tool that is not installed, telling the user what to do. */
function missing(tool: MediaTool, path: string, cause: unknown): ClientError {
  return new ClientError(
    ClientErrorCode.MediaToolMissing,
    `${tool} was not found (${path}): install Debian's ffmpeg package (apt-get install ffmpeg) or set ${ENV[tool]}, ` +
      'or send the file with --original or as a document',
    { cause },
  );
}

/** Keeps the tail of stderr, a line or two of which explains a failure. */
function tail(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 300 ? `...${trimmed.slice(-300)}` : trimmed;
}

/**
 * Runs `tool` with `args` (no shell) and resolves with its output when it exits with status 0. Rejects with
 * `CLIENT_MEDIA_TOOL_MISSING` when the binary is absent, `CLIENT_BAD_MEDIA_INPUT` when it fails (with the
 * end of its stderr) or prints too much, and the abort error when `signal` aborts (the child is killed).
 */
export function runTool(tool: MediaTool, args: readonly string[], options: RunToolOptions = {}): Promise<ToolResult> {
  const { signal } = options;
  const maxStdout = options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES;
  const path = toolPath(tool, options.env);
  if (signal?.aborted === true) return Promise.reject(abortError(signal));

  return new Promise<ToolResult>((resolve, reject) => {
    const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false, windowsHide: true });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let failure: ClientError | undefined;
    let settled = false;

    const kill = (error: ClientError): void => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const onAbort = (): void => {
      if (signal !== undefined) kill(abortError(signal));
    };
    const finish = (action: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      action();
    };
    signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) {
        kill(new ClientError(ClientErrorCode.BadMediaInput, `${tool} printed more than ${maxStdout} bytes`));
        return;
      }
      stdout.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_STDERR_CHARS);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EACCES') finish(() => reject(missing(tool, path, err)));
      else finish(() => reject(failure ?? new ClientError(ClientErrorCode.BadMediaInput, `${tool} could not run: ${err.message}`, { cause: err })));
    });
    child.on('close', (code, sig) => {
      finish(() => {
        if (failure !== undefined) reject(failure);
        else if (code === 0) resolve({ stdout: Buffer.concat(stdout), stderr });
        else {
          const how = code === null ? `was killed (${sig ?? 'signal'})` : `exited with status ${code}`;
          const said = tail(stderr);
          reject(new ClientError(ClientErrorCode.BadMediaInput, `${tool} ${how}${said === '' ? '' : `: ${said}`}`));
        }
      });
    });
  });
}

/** The arguments every ffmpeg run starts with: quiet, no prompts, no reading of stdin. */
export const FFMPEG_COMMON_ARGS: readonly string[] = ['-nostdin', '-hide_banner', '-loglevel', 'error'];

/**
 * A file path as an ffmpeg/ffprobe input or output argument: absolute and behind the `file:` protocol, so a
 * name can neither look like an option (`-x.mp4`) nor like another protocol (`http:`, `concat:`).
 */
export function ffmpegFileArg(path: string): string {
  return `file:${resolve(path)}`;
}
