/** The route table: every route of docs/api.md, in one list (literal paths before parameterised ones). */
import type { Route } from '../http/route.js';
import type { BlobStore } from '../blobs/blob-store.js';
import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';
import type { AccountService } from '../services/accounts.js';
import type { BackupService } from '../services/backups.js';
import type { DeviceService } from '../services/devices.js';
import type { GroupService } from '../services/groups.js';
import type { KeyDirectory } from '../services/key-directory.js';
import type { MessageService } from '../services/messages.js';
import type { PresenceService } from '../services/presence.js';
import type { RegistrationService } from '../services/registration.js';
import type { TurnConfig } from '../turn.js';
import { accountRoutes } from './accounts.js';
import { backupRoutes } from './backups.js';
import { blobRoutes } from './blobs.js';
import { callRoutes } from './calls.js';
import { deviceRoutes } from './devices.js';
import { groupRoutes } from './groups.js';
import { keyRoutes } from './keys.js';
import { messageRoutes } from './messages.js';
import { presenceRoutes } from './presence.js';
import { registrationRoutes } from './registration.js';
import { systemRoutes } from './system.js';

/** The services the routes call. */
export interface RouteServices {
  readonly registration: RegistrationService;
  readonly accounts: AccountService;
  readonly keys: KeyDirectory;
  readonly messages: MessageService;
  readonly presence: PresenceService;
  readonly groups: GroupService;
  readonly devices: DeviceService;
  readonly blobs: BlobStore;
  readonly config: ServerConfig;
  readonly metrics: ServerMetrics;
  readonly accepting: () => boolean;
  /** The TURN server whose credentials `GET /v1/calls/turn` mints (absent: that route answers 404). */
  readonly turn?: TurnConfig | undefined;
  /** Encrypted backups (absent: the `/v1/backups` routes answer 404). */
  readonly backups?: BackupService | undefined;
  /** Web Push (`src/server/push/routes.ts`; absent: no `/v1/push` routes). */
  readonly push?: readonly Route[] | undefined;
}

/** Builds the route table. */
export function buildRoutes(s: RouteServices): Route[] {
  return [
    ...systemRoutes(s.metrics, s.accepting),
    ...registrationRoutes(s.registration),
    ...accountRoutes(s.accounts),
    ...keyRoutes(s.keys),
    ...messageRoutes(s.messages),
    ...presenceRoutes(s.presence),
    ...groupRoutes(s.groups),
    ...deviceRoutes(s.devices),
    ...blobRoutes(s.blobs, s.config),
    ...(s.backups === undefined ? [] : backupRoutes(s.backups)),
    ...callRoutes(s.turn, s.config.clock),
    ...(s.push ?? []),
  ];
}
