/**
 * A local port in front of PostgreSQL that can stop answering and answer again later on the same
 * port — what a client sees of an RDS endpoint while its name moves to a restored instance.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface GatedPort {
  readonly port: number;
  /** Connections accepted (and forwarded) so far. */
  readonly accepted: number;
  /** Refuses connections from now on; `reopenAfterMs` later it answers again. */
  close(reopenAfterMs?: number): Promise<void>;
  open(): Promise<void>;
  dispose(): Promise<void>;
}

export async function gatedPort(target: { host: string; port: number }, options: { closed?: boolean } = {}) {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let server: Server | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Take a free port, then hold on to its number while closed.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const open = async () => {
    if (server) return;
    server = createServer((client) => {
      accepted++;
      const upstream = createConnection(target);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(s);
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
  };
  const close = async (reopenAfterMs?: number) => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    if (reopenAfterMs !== undefined) timer = setTimeout(() => void open(), reopenAfterMs);
  };
  if (!options.closed) await open();
  const gate: GatedPort = {
    port,
    get accepted() {
      return accepted;
    },
    open,
    close,
    dispose: async () => {
      clearTimeout(timer);
      await close();
    },
  };
  return gate;
}
