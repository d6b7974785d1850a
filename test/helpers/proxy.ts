/**
 * A TCP proxy between a client and PostgreSQL that can cut the connection at a chosen point of the
 * conversation, to test what a dropped connection leaves behind.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface CuttingProxy {
  readonly port: number;
  /** Cut the connection that next forwards a client message whose text matches; disarmed after `times` cuts. */
  cutAfter(pattern: RegExp, times?: number): void;
  /**
   * The connection whose client next sends a message matching `pattern` goes silent: nothing more is
   * forwarded either way, and a close on one side is not passed on (a hard failover, a partition: the
   * server's session lives on until `close()`).
   */
  silenceAt(pattern: RegExp): void;
  readonly cuts: number;
  /** What clients sent (messages as latin1 text, SQL included), from the start or the last `clearSent`. */
  readonly sent: readonly string[];
  clearSent(): void;
  close(): Promise<void>;
}

export async function cuttingProxy(target: { host: string; port: number }): Promise<CuttingProxy> {
  let pattern: RegExp | undefined;
  let armed = 0;
  let cuts = 0;
  let sent: string[] = [];
  let hush: RegExp | undefined;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    const cut = () => {
      cuts++;
      client.destroy();
      upstream.destroy();
    };
    let silent = false;
    client.on('data', (chunk) => {
      sent.push(chunk.toString('latin1'));
      if (!silent && hush?.test(chunk.toString('latin1'))) {
        hush = undefined;
        silent = true;
      }
      if (silent) return;
      // Query messages carry their SQL as text; cut once the matching one has reached the server's socket.
      const matches = armed > 0 && pattern!.test(chunk.toString('latin1'));
      if (matches) armed--;
      upstream.write(chunk, () => matches && cut());
    });
    upstream.on('data', (chunk) => !silent && client.write(chunk));
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        // Silent is a partition: the side that gives up closes only its own end; the other never learns.
        if (silent) return;
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    silenceAt(p) {
      hush = p;
    },
    cutAfter(p, times = 1) {
      pattern = p;
      armed = times;
    },
    get cuts() {
      return cuts;
    },
    get sent() {
      return sent;
    },
    clearSent() {
      sent = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
