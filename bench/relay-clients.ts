// Idle authenticated connections for `npm run bench:relay`, in a child process (each process may hold
// at most `ulimit -n` sockets). Connects every device it is given, waits until the server has sent each
// one its `queue/empty` (so the server side is fully set up), reports, and holds the sockets open.
import { BenchDevice } from './relay-wire.ts';
import type { BenchCredentials } from './relay-server.ts';

type ClientsCommand = { cmd: 'connect'; wsUrl: string; credentials: BenchCredentials[] } | { cmd: 'close' };

const devices: BenchDevice[] = [];
const CONCURRENCY = 200;

process.on('message', (message: ClientsCommand) => {
  void (async () => {
    if (message.cmd === 'close') {
      for (const d of devices) d.ws.terminate();
      process.exit(0);
    }
    let failed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < message.credentials.length) {
        const c = message.credentials[next++] as BenchCredentials;
        try {
          const device = await BenchDevice.connect(message.wsUrl, c);
          for (let i = 0; i < 500 && !device.queueEmpty; i++) await new Promise((r) => setTimeout(r, 10));
          devices.push(device);
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    process.send?.({ event: 'connected', count: devices.length, failed });
  })();
});
