/**
 * The `parley` command: the server (`parley serve`) and the terminal client, scriptable like signal-cli.
 * The scripting interface is fixed (commands, flags, the JSON fields): extend it, do not rename it.
 *
 * Every client command takes `--profile DIR` (default `~/.parley`, or PARLEY_PROFILE) and `--json` (one JSON
 * object per line on stdout). Exit status: 0 success, 1 failure, 2 usage error.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { contactsCommand, messagesCommand, readCommand, safetyNumberCommand, verifyCommand } from './commands/info.js';
import { answerCommand, answerGroupCommand, callCommand, groupCallCommand } from './commands/call.js';
import { backupCreateCommand, backupRestoreCommand, backupScheduleCommand, backupStatusCommand, parseInterval } from './commands/backup.js';
import { daemonCommand } from './commands/daemon.js';
import { devicesCommand, devicesLinkCommand, devicesRemoveCommand, linkCommand } from './commands/devices.js';
import {
  groupCreateCommand,
  groupInfoCommand,
  groupJoinCommand,
  groupLeaveCommand,
  groupLinkCommand,
  groupListCommand,
  groupMembersCommand,
  groupSetCommand,
  onOffArg,
  type MemberChange,
} from './commands/group.js';
import { receiveCommand } from './commands/receive.js';
import { registerCommand } from './commands/register.js';
import { downloadCommand, sendFileCommand, viewCommand } from './commands/media.js';
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

function interval(value: string): number {
  try {
    return parseInterval(value);
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : 'expected a duration');
  }
}

function onOff(value: string): boolean {
  try {
    return onOffArg(value);
  } catch {
    throw new InvalidArgumentError('expected on or off');
  }
}

function deviceIdArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a device id (a whole number, 1 for the primary)');
  return n;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

/** Builds the program; `run` receives each command's work and returns its exit status. */
function program(io: Io, run: (work: () => Promise<number>) => void, named: (command: string) => void = () => undefined): Command {
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
    named(cmd.parent && cmd.parent !== root ? `${cmd.parent.name()} ${cmd.name()}` : cmd.name());
    return { profile: profileDir(o.profile), out: new Printer(io, o.json === true) };
  };
  /** The conversation of a command that takes `[phone]` or `--group <id>` (exactly one; a usage error otherwise). */
  const target = (cmd: Command, phone: string | undefined, group: string | undefined): string => {
    if (phone !== undefined && group !== undefined) cmd.error('error: give a phone number or --group, not both', { exitCode: 2 });
    const conversation = phone ?? group;
    if (conversation === undefined) cmd.error('error: missing required argument \'phone\' (or --group <groupId>)', { exitCode: 2 });
    return conversation;
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

  client('send', 'send a text message to a contact or a group; exits 0 once the server accepted it for every device')
    .usage('[options] <phone> <text>  |  --group <groupId> <text>')
    .argument('<phone>', 'recipient: a phone number, or a group id (or give --group and only the text)')
    .argument('[text]', 'message text')
    .option('--group <groupId>', 'send to this group')
    .option('--quote <id>', 'reply to this message id')
    .option('--view-once', 'the recipient can see it once')
    .action((first: string, second: string | undefined, o: { group?: string; quote?: string; viewOnce?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      if ((o.group === undefined) === (second === undefined)) {
        cmd.error(o.group === undefined ? 'error: missing required argument \'text\'' : 'error: with --group, give only the text', { exitCode: 2 });
      }
      const to = o.group ?? first;
      const text = second ?? first;
      run(() => sendCommand({ to, group: o.group !== undefined, text, quote: o.quote, viewOnce: o.viewOnce === true, profile }, out));
    });

  client('call', 'place an audio call: plays a file into it, records what it receives (Opus); ends after --duration or when the peer hangs up')
    .usage('[options] <phone>  |  --group <groupId>')
    .argument('[phone]', 'the contact to call (every device of the account rings)')
    .option('--group <groupId>', 'start a call in this group (every member rings; up to 8 take part), or join the one running there')
    .option('--play <file>', 'audio file to play into the call (looped; any format ffmpeg reads)')
    .option('--record <file>', 'record the received audio to this file (Opus in Ogg)')
    .option('--duration <seconds>', 'hang up after this many seconds connected', seconds)
    .option('--relay', 'only through the TURN relay (iceTransportPolicy relay)')
    .option('--ring-timeout <seconds>', 'give up when nobody answers within this time (default 45)', seconds)
    .action((phone: string | undefined, o: { group?: string; play?: string; record?: string; duration?: number; relay?: boolean; ringTimeout?: number }, cmd: Command) => {
      const { profile, out } = common(cmd);
      const to = target(cmd, phone, o.group);
      const media = { profile, play: o.play, record: o.record, duration: o.duration, relay: o.relay === true, ringTimeout: o.ringTimeout };
      run(() => (o.group !== undefined ? groupCallCommand({ ...media, groupId: to }, out) : callCommand({ ...media, to }, out)));
    });

  client('answer', 'wait for an incoming call and answer it (or --decline it); plays and records like call')
    .option('--play <file>', 'audio file to play into the call (looped)')
    .option('--record <file>', 'record the received audio to this file (Opus in Ogg)')
    .option('--duration <seconds>', 'hang up after this many seconds connected', seconds)
    .option('--relay', 'only through the TURN relay')
    .option('--timeout <seconds>', 'how long to wait for a call (default 60)', seconds)
    .option('--decline', 'decline the call instead of answering it')
    .option('--group', 'wait for a group call instead, and join it (--record: one file per participant)')
    .action((o: { play?: string; record?: string; duration?: number; relay?: boolean; timeout?: number; decline?: boolean; group?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      const args = { profile, play: o.play, record: o.record, duration: o.duration, relay: o.relay === true, timeout: o.timeout ?? 60, decline: o.decline === true };
      run(() => (o.group === true ? answerGroupCommand(args, out) : answerCommand(args, out)));
    });

  client('send-file', 'send a photo, video, voice note or document (compressed unless --original); resumes an interrupted upload')
    .usage('[options] <phone> <path>  |  --group <groupId> <path>')
    .argument('<phone>', 'recipient: a phone number, or a group id (or give --group and only the path)')
    .argument('[path]', 'the file')
    .option('--group <groupId>', 'send to this group')
    .option('--caption <text>', 'a caption shown with the file')
    .option('--original', 'send images and videos as they are, without compressing them')
    .option('--voice-note', 'send audio as a voice note (Opus)')
    .option('--view-once', 'the recipient can see it once')
    .action((first: string, second: string | undefined, o: { group?: string; caption?: string; original?: boolean; voiceNote?: boolean; viewOnce?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      if ((o.group === undefined) === (second === undefined)) {
        cmd.error(o.group === undefined ? 'error: missing required argument \'path\'' : 'error: with --group, give only the path', { exitCode: 2 });
      }
      const to = o.group ?? first;
      const file = second ?? first;
      run(() =>
        sendFileCommand({ to, group: o.group !== undefined, file, caption: o.caption, original: o.original === true, voiceNote: o.voiceNote === true, viewOnce: o.viewOnce === true, profile }, io, out),
      );
    });

  client('view', 'save a view-once file to PATH, then mark it viewed (it is erased from this profile)')
    .argument('<id>', 'message id')
    .requiredOption('--out <path>', 'where the file goes (a directory when the message has several)')
    .action((id: string, o: { out: string }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => viewCommand({ id, out: o.out, profile }, io, out));
    });

  client('download', 'download (again) the attachments of a received message into the media folder')
    .argument('<id>', 'message id')
    .option('--index <n>', 'only this attachment (0 is the first)', wholeNumber)
    .action((id: string, o: { index?: number }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => downloadCommand({ id, index: o.index, profile }, io, out));
    });

  client('receive', 'print incoming messages and events, acknowledging them')
    .option('--timeout <seconds>', 'exit after this long (default 5, or 120 with --until-empty)', seconds)
    .option('--until-empty', 'exit once everything queued for this device has arrived')
    .option('--mark-read', 'mark what arrived as read (sends read receipts)')
    .option('--no-download', 'leave attachments on the server (fetch them later with parley download <id>)')
    .action((o: { timeout?: number; untilEmpty?: boolean; markRead?: boolean; download: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => receiveCommand({ timeout: o.timeout, untilEmpty: o.untilEmpty === true, markRead: o.markRead === true, download: o.download, profile }, out));
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

  client('messages', 'show the stored conversation with a contact or a group (with per-member receipts)')
    .argument('[phone]', 'a phone number or a group id')
    .option('--group <groupId>', 'the group\'s conversation')
    .option('--limit <n>', 'only the newest n', count)
    .action((phone: string | undefined, o: { group?: string; limit?: number }, cmd: Command) => {
      const { profile, out } = common(cmd);
      const conversation = target(cmd, phone, o.group);
      run(() => messagesCommand({ phone: conversation, limit: o.limit, profile }, out));
    });

  client('read', 'mark a conversation read (sends read receipts)')
    .argument('[phone]', 'a phone number or a group id')
    .option('--group <groupId>', 'the group\'s conversation')
    .action((phone: string | undefined, o: { group?: string }, cmd: Command) => {
      const { profile, out } = common(cmd);
      const conversation = target(cmd, phone, o.group);
      run(() => readCommand({ phone: conversation, profile }, out));
    });

  client('typing', 'send a typing indicator (never stored by the server)')
    .argument('[phone]', 'a phone number or a group id')
    .option('--group <groupId>', 'to this group')
    .option('--stop', 'stopped typing')
    .action((phone: string | undefined, o: { group?: string; stop?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      const conversation = target(cmd, phone, o.group);
      run(() => typingCommand({ phone: conversation, stop: o.stop === true, profile }, out));
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
    .usage('[options] <phone> <seconds>  |  --group <groupId> <seconds>')
    .argument('<phone>', 'a phone number or a group id (or give --group and only the seconds)')
    .argument('[seconds]', 'seconds')
    .option('--group <groupId>', 'the group\'s timer')
    .action((first: string, second: string | undefined, o: { group?: string }, cmd: Command) => {
      const { profile, out } = common(cmd);
      if ((o.group === undefined) === (second === undefined)) {
        cmd.error(o.group === undefined ? 'error: missing required argument \'seconds\'' : 'error: with --group, give only the seconds', { exitCode: 2 });
      }
      let secs = 0;
      try {
        secs = seconds(second ?? first);
      } catch (err) {
        cmd.error(`error: ${(err as Error).message}`, { exitCode: 2 });
      }
      run(() => timerCommand({ phone: o.group ?? first, seconds: Math.floor(secs), profile }, out));
    });

  const group = root.command('group').description('groups: create, members and admins, settings, invite links, info').showHelpAfterError();
  /** A group subcommand: --profile and --json on it as well. */
  const groupCmd = (name: string, description: string): Command =>
    group
      .command(name)
      .description(description)
      .option('--profile <dir>', 'profile folder [env PARLEY_PROFILE, default ~/.parley]')
      .option('--json', 'one JSON object per line on stdout');

  groupCmd('create', 'create a group with you as its admin; prints its id')
    .argument('<name>', 'the group\'s name')
    .argument('<phone...>', 'members: phone numbers (or account ids)')
    .option('--description <text>', 'the group\'s description')
    .action((name: string, members: string[], o: { description?: string }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => groupCreateCommand({ name, members, description: o.description, profile }, out));
    });

  const memberChange = (change: MemberChange, description: string): void => {
    groupCmd(change, description)
      .argument('<groupId>')
      .argument('<phone...>', 'phone numbers (or account ids)')
      .action((groupId: string, members: string[], _o: unknown, cmd: Command) => {
        const { profile, out } = common(cmd);
        run(() => groupMembersCommand({ change, groupId, members, profile }, out));
      });
  };
  memberChange('add', 'add members');
  memberChange('remove', 'remove members (they cannot read what is sent afterwards)');
  memberChange('promote', 'make members admins');
  memberChange('demote', 'take admin rights away');

  groupCmd('leave', 'leave a group (the history stays here)')
    .argument('<groupId>')
    .action((groupId: string, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => groupLeaveCommand({ groupId, profile }, out));
    });

  groupCmd('info', 'show a group: name, description, members and admins, settings, your role, the invite link')
    .argument('<groupId>')
    .option('--refresh', 'fetch the current state from the server first')
    .action((groupId: string, o: { refresh?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => groupInfoCommand({ groupId, refresh: o.refresh === true, profile }, out));
    });

  groupCmd('list', 'list the groups of this profile').action((_o: unknown, cmd: Command) => {
    const { profile, out } = common(cmd);
    run(() => groupListCommand({ profile }, out));
  });

  groupCmd('set', 'change the name, description or settings')
    .argument('<groupId>')
    .option('--name <name>', 'a new name')
    .option('--description <text>', 'a new description')
    .option('--admins-only-send <on|off>', 'only admins send (an announcement group)', onOff)
    .option('--admins-only-edit <on|off>', 'only admins change name, description and avatar', onOff)
    .option('--admins-only-manage <on|off>', 'only admins add, remove, promote and demote members', onOff)
    .action(
      (
        groupId: string,
        o: { name?: string; description?: string; adminsOnlySend?: boolean; adminsOnlyEdit?: boolean; adminsOnlyManage?: boolean },
        cmd: Command,
      ) => {
        const { profile, out } = common(cmd);
        run(() =>
          groupSetCommand(
            { groupId, name: o.name, description: o.description, adminsSend: o.adminsOnlySend, adminsEdit: o.adminsOnlyEdit, adminsManage: o.adminsOnlyManage, profile },
            out,
          ),
        );
      },
    );

  groupCmd('link', 'print a new invite link (the previous one stops working), or revoke it')
    .argument('<groupId>')
    .option('--revoke', 'turn the invite link off')
    .action((groupId: string, o: { revoke?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => groupLinkCommand({ groupId, revoke: o.revoke === true, profile }, out));
    });

  groupCmd('join', 'join a group through an invite link')
    .argument('<link>')
    .action((link: string, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => groupJoinCommand({ link, profile }, out));
    });

  client('link', 'link this (new) profile to an account: shows a code for the primary device to scan or paste')
    .requiredOption('--server <url>', 'the server, e.g. http://localhost:8080')
    .option('--name <name>', 'this device\'s name, as the account\'s device list shows it (default: parley on <host>)')
    .option('--timeout <seconds>', 'give up after this long (default 300)', seconds)
    .action((o: { server: string; name?: string; timeout?: number }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => linkCommand({ server: o.server, name: o.name, timeout: o.timeout, profile }, out));
    });

  const devices = client('devices', 'list this account\'s devices (primary and linked companions); link and remove devices')
    .showHelpAfterError()
    .action((_o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => devicesCommand({ profile }, out));
    });
  /** A devices subcommand: --profile and --json on it as well. */
  const devicesCmd = (name: string, description: string): Command =>
    devices
      .command(name)
      .description(description)
      .option('--profile <dir>', 'profile folder [env PARLEY_PROFILE, default ~/.parley]')
      .option('--json', 'one JSON object per line on stdout');

  devicesCmd('link', 'on the primary: link the new device that shows this code (parley link there); sends it the recent history')
    .argument('<uri>', 'the parley://link/... code the new device shows')
    .option('--yes', 'approve without asking')
    .option('--timeout <seconds>', 'give up after this long (default 120)', seconds)
    .action((uri: string, o: { yes?: boolean; timeout?: number }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => devicesLinkCommand({ uri, yes: o.yes === true, timeout: o.timeout, profile }, io, out));
    });

  devicesCmd('remove', 'on the primary: remove a linked device (it receives nothing more); on a companion, its own id logs it out')
    .argument('<id>', 'the device id (parley devices)', deviceIdArg)
    .action((deviceId: number, _o: unknown, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => devicesRemoveCommand({ deviceId, profile }, out));
    });

  client('unlink', 'on a linked companion: log this device out of its account (parley devices remove <own id>)').action((_o: unknown, cmd: Command) => {
    const { profile, out } = common(cmd);
    run(() => devicesRemoveCommand({ deviceId: undefined, profile }, out));
  });

  client('daemon', 'JSON-RPC 2.0 on stdio and a unix socket, with notifications for incoming messages')
    .option('--socket <path>', 'socket path (default <profile>/parley.sock)')
    .option('--no-stdio', 'serve the socket only')
    .option('--backup-every <interval>', 'make encrypted backups this often (24h, 7d, off; kept in the profile)', interval)
    .action((o: { socket?: string; stdio: boolean; backupEvery?: number }, cmd: Command) => {
      const { profile } = common(cmd);
      run(() => daemonCommand({ profile, socket: o.socket, stdio: o.stdio, backupEveryMs: o.backupEvery }, io));
    });

  const backup = root.command('backup').description('end-to-end encrypted backups: create, restore, status, schedule').showHelpAfterError();
  /** A backup subcommand: --profile and --json on it as well. */
  const backupCmd = (name: string, description: string): Command =>
    backup
      .command(name)
      .description(description)
      .option('--profile <dir>', 'profile folder [env PARLEY_PROFILE, default ~/.parley]')
      .option('--json', 'one JSON object per line on stdout');

  backupCmd('create', 'back up conversations, contacts, groups (and with --include-media the files), encrypted, to the server')
    .option('--password-file <file>', 'protect with the password in this file (Argon2id; the server allows a few wrong tries)')
    .option('--recovery-key', 'protect with a new 64-digit recovery key, printed once')
    .option('--include-media', 'carry the saved attachment files inside the backup (otherwise only their pointers)')
    .option('--output <file>', 'also write the encrypted backup file here (an offline copy)')
    .option('--no-upload', 'with --output: only write the file')
    .action((o: { passwordFile?: string; recoveryKey?: boolean; includeMedia?: boolean; output?: string; upload: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      if (!o.upload && o.output === undefined) cmd.error('error: --no-upload needs --output', { exitCode: 2 });
      run(() =>
        backupCreateCommand({ profile, passwordFile: o.passwordFile, recoveryKey: o.recoveryKey === true, includeMedia: o.includeMedia === true, output: o.output, upload: o.upload }, io, out),
      );
    });

  backupCmd('restore', 'on a freshly registered profile (the same number): restore the account\'s backup')
    .option('--password-file <file>', 'the backup\'s password, in this file')
    .option('--recovery-key <key>', 'the 64-digit recovery key (spaces allowed)')
    .option('--input <file>', 'restore from this backup file instead of the server\'s current backup')
    .action((o: { passwordFile?: string; recoveryKey?: string; input?: string }, cmd: Command) => {
      const { profile, out } = common(cmd);
      if ((o.passwordFile === undefined) === (o.recoveryKey === undefined)) cmd.error('error: give --password-file <file> or --recovery-key <key>', { exitCode: 2 });
      run(() => backupRestoreCommand({ profile, passwordFile: o.passwordFile, recoveryKey: o.recoveryKey, input: o.input }, io, out));
    });

  backupCmd('status', 'this profile\'s backup set-up and schedule, and the account\'s backup on the server').action((_o: unknown, cmd: Command) => {
    const { profile, out } = common(cmd);
    run(() => backupStatusCommand({ profile }, out));
  });

  backupCmd('schedule', 'automatic backups while parley daemon runs')
    .requiredOption('--every <interval>', 'how often: 24h, 7d, ... or off', interval)
    .option('--include-media', 'carry the saved files inside the automatic backups')
    .action((o: { every: number; includeMedia?: boolean }, cmd: Command) => {
      const { profile, out } = common(cmd);
      run(() => backupScheduleCommand({ profile, every: o.every, includeMedia: o.includeMedia }, out));
    });

  return root;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit status. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let work: (() => Promise<number>) | undefined;
  let command = '';
  const root = program(
    io,
    (w) => {
      work = w;
    },
    (name) => {
      command = name;
    },
  );
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
    io.stderr.write(`parley ${command}: ${message}${code ? ` [${code}]` : ''}\n`);
    return 1;
  }
}
