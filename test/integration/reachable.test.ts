/**
 * After an RDS restore-by-rename the endpoint's name takes minutes to resolve again: the first
 * connection keeps trying for a bounded time. Tested at the network boundary with a real server
 * behind a local port that stops answering and answers again later.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { connectWhenReachable } from '../../lambda/engine/db';
import { ConnectionError } from '../../lambda/engine/errors';
import { adminUrl } from '../helpers/db';
import { type GatedPort, gatedPort } from '../helpers/gated-port';

let gate: GatedPort | undefined;
afterEach(async () => {
  await gate?.dispose();
  gate = undefined;
});

/** The admin URL, through the gate. */
async function throughGate(options: { closed?: boolean } = {}) {
  const server = new URL(adminUrl());
  gate = await gatedPort({ host: server.hostname, port: Number(server.port) }, options);
  const url = new URL(adminUrl());
  url.host = `127.0.0.1:${gate.port}`;
  return url.toString();
}

describe('connectWhenReachable', () => {
  test('waits for a port that starts answering later, then connects', async () => {
    const url = await throughGate({ closed: true });
    await expect(connectWhenReachable(url, { retryForMs: 0 })).rejects.toThrow(/ECONNREFUSED|connect/);
    await gate!.close(1_000); // answers again in a second
    const client = await connectWhenReachable(url, { retryForMs: 60_000, intervalMs: 100 });
    try {
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  test('gives up after its bound, saying for how long it tried', async () => {
    const url = await throughGate({ closed: true });
    const err = await connectWhenReachable(url, { retryForMs: 600, intervalMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.message).toMatch(/^could not connect to .*127\.0\.0\.1:\d+.*\(unreachable for 1 s, \d+ attempts\)$/);
    expect(err.message).not.toContain(new URL(adminUrl()).password || '\0');
  });

  test('a refusal by the server itself (a wrong password) is not retried', async () => {
    const url = new URL(await throughGate());
    url.password = 'not-the-password';
    const err = await connectWhenReachable(url.toString(), { retryForMs: 60_000, intervalMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err.message).toMatch(/password authentication failed/);
    expect(gate!.accepted).toBe(1);
  });
});
