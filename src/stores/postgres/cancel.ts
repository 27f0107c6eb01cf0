/**
 * Cancels the statement a PostgreSQL backend is running, with the protocol's
 * own CancelRequest (what libpq's `PQcancel` and psql's Ctrl-C send): a new
 * connection to the server carrying the backend's process id and secret key
 * (PostgreSQL protocol, "Canceling Requests in Progress"). It needs no free
 * connection from the pool, which may be exhausted when statements time out.
 */
import net from 'node:net';

/** The parts of a connected pg `Client` a cancel needs; pg sets them at startup. */
export interface CancellableClient {
  host?: unknown;
  port?: unknown;
  processID?: unknown;
  secretKey?: unknown;
}

/** The CancelRequest code: 1234 in the high 16 bits, 5678 in the low ones. */
const CANCEL_REQUEST_CODE = 80_877_102;

/**
 * Sends a CancelRequest for `client`'s backend. Resolves `true` once it is
 * written, `false` when it could not be (no backend key yet, server
 * unreachable within `timeoutMs`). The server never answers a cancel; it
 * interrupts the backend's current statement, if any, which then fails with
 * SQLSTATE 57014.
 */
export function cancelBackend(client: CancellableClient, timeoutMs = 1000): Promise<boolean> {
  const { host, port, processID, secretKey } = client;
  if (
    typeof processID !== 'number' ||
    typeof secretKey !== 'number' ||
    typeof port !== 'number' ||
    (host !== undefined && typeof host !== 'string')
  ) {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    // A host starting with "/" is the directory of the server's Unix socket.
    const socket =
      typeof host === 'string' && host.startsWith('/')
        ? net.connect(`${host}/.s.PGSQL.${port}`)
        : net.connect(port, host || 'localhost');
    const done = (sent: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(sent);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      packet.writeInt32BE(processID, 8);
      packet.writeInt32BE(secretKey, 12);
      // The server reads the packet and closes the connection; wait for that,
      // so the cancel has reached it when this resolves.
      socket.once('close', () => done(true));
      socket.end(packet);
    });
  });
}
