// The WebSocket transport with the real `ws` package (the other transport tests use the fake server's
// socket): closing while the socket is still connecting must not surface `ws`'s "closed before the
// connection was established" error as an uncaught exception (it crashed a client closed mid-reconnect).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket } from 'ws';
import { ConnectionState, WebSocketTransport } from '../../../src/client/transport/websocket.ts';

describe('WebSocket transport over ws', () => {
  it('closes quietly while the socket is still connecting', async () => {
    // A server that accepts the TCP connection and never answers the upgrade: the socket stays CONNECTING.
    const held: Socket[] = [];
    let upgrades = 0;
    const server: Server = createServer();
    server.on('upgrade', (_req, socket: Socket) => {
      upgrades++;
      held.push(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): void => {
      uncaught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const transport = new WebSocketTransport({
        url,
        credentials: { accountId: '00000000-0000-4000-8000-000000000000', deviceId: 1, password: 'x' },
        WebSocket,
        keepAliveMs: 0,
      });
      transport.connect();
      while (upgrades === 0) await new Promise((r) => setTimeout(r, 5));
      assert.equal(transport.state, ConnectionState.Connecting);
      transport.close();
      await new Promise((r) => setTimeout(r, 50)); // ws reports the aborted handshake on a later tick
      assert.equal(transport.state, ConnectionState.Closed);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
