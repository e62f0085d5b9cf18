/**
 * The `parley` command: the server (`parley serve`) and the terminal client, scriptable like signal-cli.
 * The scripting interface is fixed (commands, flags, the JSON fields): extend it, do not rename it.
 *
 * Every client command takes `--profile DIR` (default `~/.parley`, or PARLEY_PROFILE) and `--json` (one JSON
 * object per line on stdout). Exit status: 0 success, 1 failure, 2 usage error.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { contactsCommand, messagesCommand, readCommand, safetyNumberCommand, verifyCommand } from './commands/info.js';
import { daemonCommand } from './commands/daemon.js';
import { receiveCommand } from './commands/receive.js';
import { registerCommand } from './commands/register.js';
import { deleteCommand, editCommand, reactCommand, sendCommand, timerCommand, typingCommand } from './commands/send.js';
import { serveCommand } from './commands/serve.js';
import { Printer, describeError, processIo, type Io } from './io.js';
import { profileDir } from './profile.js';

interface Common {
  profile?: string;
  json?: boolean;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds');
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** Builds the program; `run` receives each command's work and returns its exit status. */
function program(io: Io, run: (work: () => Promise<number>) => void): Command {
  const root = new Command('parley')
    .description('Parley: end-to-end encrypted messaging (Signal Protocol). Server and terminal client.')
    .option('--profile <dir>', 'profile folder (keys, sessions, messages) [env PARLEY_PROFILE, default ~/.parley]')
    .option('--json', 'one JSON object per line on stdout')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError();

  /** A client command: --profile and --json on it as well as on the root. */
  const client = (name: string, description: string): Command =>
    root
      .command(name)
      .description(description)
      .option('--profile <dir>', 'profile folder [env PARLEY_PROFILE, default ~/.parley]')
      .option('--json', 'one JSON object per line on stdout');
  const common = (cmd: Command): { profile: string; out: Printer } => {
    const o = cmd.optsWithGlobals<Common>();
    return { profile: profileDir(o.profile), out: new Printer(io, o.json === true) };
  };

  root
    .command('serve')
    .description('run the server (flags: parley serve --help)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[flags...]')
    .action((flags: string[]) => run(() => serveCommand(flags, io)));

  client('register', 'register this profile for a phone number')
    .argument('<phone>', 'E.164 phone number, e.g. +15550100001')
    .requiredOption('--server <url>', 'the server, e.g. http://localhost:8080')
    .option('--code <code>', 'the verification code (asked for when absent)')
    .action((phone: string, o: { server: string; code?: string }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => registerCommand({ phone, server: o.server, code: o.code, profile }, io, out));
    });

  client('send', 'send a text message; exits 0 once the server accepted it for every device')
    .argument('<phone>', 'recipient')
    .argument('<text>', 'message text')
    .option('--quote <id>', 'reply to this message id')
    .option('--view-once', 'the recipient can see it once')
    .action((phone: string, text: string, o: { quote?: string; viewOnce?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => sendCommand({ phone, text, quote: o.quote, viewOnce: o.viewOnce === true, profile }, out));
    });

  client('receive', 'print incoming messages and events, acknowledging them')
    .option('--timeout <seconds>', 'exit after this long (default 5, or 120 with --until-empty)', seconds)
    .option('--until-empty', 'exit once everything queued for this device has arrived')
    .option('--mark-read', 'mark what arrived as read (sends read receipts)')
    .action((o: { timeout?: number; untilEmpty?: boolean; markRead?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => receiveCommand({ timeout: o.timeout, untilEmpty: o.untilEmpty === true, markRead: o.markRead === true, profile }, out));
    });

  client('contacts', 'list contacts').action((_o: unknown, cmd: Command) => {
    const { profile, out } = common(cmd);
    run(() => contactsCommand({ profile }, out));
  });

  client('safety-number', 'show the safety number of the conversation with a contact')
    .argument('<phone>')
    .action((phone: string, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => safetyNumberCommand({ phone, profile }, out));
    });

  client('verify', 'mark a contact\'s safety number verified (after comparing it)')
    .argument('<phone>')
    .option('--safety-number <digits>', 'refuse unless this is the current safety number')
    .option('--unverify', 'mark it unverified instead (accepts a changed key without verifying)')
    .action((phone: string, o: { safetyNumber?: string; unverify?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => verifyCommand({ phone, safetyNumber: o.safetyNumber, unverify: o.unverify === true, profile }, out));
    });

  client('messages', 'show the stored conversation with a contact')
    .argument('<phone>')
    .option('--limit <n>', 'only the newest n', count)
    .action((phone: string, o: { limit?: number }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => messagesCommand({ phone, limit: o.limit, profile }, out));
    });

  client('read', 'mark a conversation read (sends read receipts)')
    .argument('<phone>')
    .action((phone: string, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => readCommand({ phone, profile }, out));
    });

  client('typing', 'send a typing indicator (never stored by the server)')
    .argument('<phone>')
    .option('--stop', 'stopped typing')
    .action((phone: string, o: { stop?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => typingCommand({ phone, stop: o.stop === true, profile }, out));
    });

  client('react', 'react to a message')
    .argument('<id>', 'message id')
    .argument('<emoji>')
    .option('--remove', 'remove the reaction')
    .action((id: string, emoji: string, o: { remove?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => reactCommand({ id, emoji, remove: o.remove === true, profile }, out));
    });

  client('edit', 'edit one of your messages')
    .argument('<id>', 'message id')
    .argument('<text>')
    .action((id: string, text: string, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => editCommand({ id, text, profile }, out));
    });

  client('delete', 'delete one of your messages for everyone')
    .argument('<id>', 'message id')
    .action((id: string, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => deleteCommand({ id, profile }, out));
    });

  client('timer', 'set the disappearing-message timer of a conversation (0 = off)')
    .argument('<phone>')
    .argument('<seconds>', 'seconds', seconds)
    .action((phone: string, secs: number, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => timerCommand({ phone, seconds: Math.floor(secs), profile }, out));
    });

  client('daemon', 'JSON-RPC 2.0 on stdio and a unix socket, with notifications for incoming messages')
    .option('--socket <path>', 'socket path (default <profile>/parley.sock)')
    .option('--no-stdio', 'serve the socket only')
    .action((o: { socket?: string; stdio: boolean }, cmd: Command) => {
      const { profile } = common(cmd);
      run(() => daemonCommand({ profile, socket: o.socket, stdio: o.stdio }, io));
    });

  return root;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit status. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let work: (() => Promise<number>) | undefined;
  const root = program(io, (w) => {
    work = w;
  });
  try {
    root.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  if (!work) {
    root.outputHelp();
    return 2;
  }
  try {
    return await work();
  } catch (err) {
    const { message, code } = describeError(err);
    const command = argv.find((a) => !a.startsWith('-')) ?? '';
    io.stderr.write(`parley ${command}: ${message}${code ? ` [${code}]` : ''}\n`);
    return 1;
  }
}
