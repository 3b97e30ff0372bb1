// node-zookeeper-client's callback API as promises, ZooKeeper's sync (which that client lacks), and the standard
// lock recipe (ZooKeeper's "Recipes and Solutions": ephemeral sequential nodes, the lowest holds the lock, each
// waiter watches only its predecessor).
import { createRequire } from "node:module";
import zookeeper, { type Client, type Event, type Stat } from "node-zookeeper-client";

export type { Client };

/** Opens a session against one server (or a connection string); rejects if not connected within timeoutMs. */
export function openSession(connectionString: string, timeoutMs = 30_000): Promise<Client> {
  const client = zookeeper.createClient(connectionString, { sessionTimeout: 30_000, retries: 0 });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`zookeeper: no session with ${connectionString} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once("connected", () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

type Callback<T> = (error: Error | zookeeper.Exception | null, result: T) => void;
const call = <T>(fn: (cb: Callback<T>) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((error, result) => (error ? reject(error) : resolve(result))));

/** The server's error code of a failed call (zookeeper.Exception.NO_NODE …), or undefined for other errors. */
export function codeOf(error: unknown): number | undefined {
  return error instanceof zookeeper.Exception ? error.getCode() : undefined;
}

export const create = (c: Client, path: string, data: Buffer, mode = zookeeper.CreateMode.PERSISTENT) =>
  call<string>((cb) => c.create(path, data, mode, cb));
export const setData = (c: Client, path: string, data: Buffer) => call<Stat>((cb) => c.setData(path, data, -1, cb));
export const getData = (c: Client, path: string) => call<Buffer>((cb) => c.getData(path, cb));
export const getChildren = (c: Client, path: string) => call<string[]>((cb) => c.getChildren(path, cb));
export const remove = (c: Client, path: string) => call<void>((cb) => c.remove(path, -1, cb));

/** Creates `path` (persistent) unless it exists. */
export async function ensureNode(c: Client, path: string, data: Buffer = Buffer.alloc(0)): Promise<void> {
  try {
    await create(c, path, data);
  } catch (e) {
    if (codeOf(e) !== zookeeper.Exception.NODE_EXISTS) throw e;
  }
}

/**
 * Runs `op` again after a CONNECTION_LOSS, up to `attempts` times: the session survives a dropped connection (the
 * client reconnects to a server of the ensemble), but the calls in flight on it fail. For the untimed setup only,
 * whose calls are idempotent (create-unless-exists, setData of the same value, reads); a timed run counts them
 * as errors instead. One such loss, in setup right after a fresh start, once ended a whole bench:compare.
 */
export async function retryOnConnectionLoss<T>(op: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (codeOf(e) !== zookeeper.Exception.CONNECTION_LOSS || attempt >= attempts) throw e;
      process.stderr.write(`zookeeper bench: setup call lost its connection (attempt ${attempt} of ${attempts}); retrying\n`);
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

// node-zookeeper-client 1.1.3 has no sync(): its reply parser knows no SYNC reply and drops the connection on one.
// On the wire a SyncRequest is one ustring (the path), as a GetACLRequest is, and a SyncResponse is one ustring,
// as a CreateResponse is. So the request is serialized with opcode SYNC (9) while the pending entry carries CREATE,
// and the reply is read with CreateResponse's layout. The server sees and answers a real sync.
const require = createRequire(import.meta.url);
interface JuteRecord {
  type?: number;
  path?: string;
}
interface Jute {
  OP_CODES: { CREATE: number; SYNC: number };
  Request: { new (header: JuteRecord, payload: JuteRecord): { toBuffer(): Buffer }; prototype: { toBuffer(): Buffer } };
  protocol: { RequestHeader: new () => JuteRecord; GetACLRequest: new () => JuteRecord };
}
const jute = require("node-zookeeper-client/lib/jute") as Jute;
interface ConnectionManager {
  queue(request: unknown, callback: (error: Error | null, response: { payload: { path: string } }) => void): void;
}

/**
 * ZooKeeper's sync: returns once the server this session is connected to has applied every write the leader had
 * committed when the sync reached the leader. Followed by a read on the same session, the read is linearizable.
 */
export function sync(c: Client, path: string): Promise<string> {
  const header = new jute.protocol.RequestHeader();
  header.type = jute.OP_CODES.CREATE;
  const payload = new jute.protocol.GetACLRequest();
  payload.path = path;
  const request = new jute.Request(header, payload);
  request.toBuffer = () => {
    header.type = jute.OP_CODES.SYNC;
    try {
      return jute.Request.prototype.toBuffer.call(request);
    } finally {
      header.type = jute.OP_CODES.CREATE;
    }
  };
  const manager = (c as unknown as { connectionManager: ConnectionManager }).connectionManager;
  return new Promise((resolve, reject) =>
    manager.queue(request, (error, response) => (error ? reject(error) : resolve(response.payload.path))),
  );
}

const SEQUENCE_DIGITS = 10;
const sequenceOf = (name: string) => Number(name.slice(-SEQUENCE_DIGITS));

/**
 * The lock recipe's decision: undefined if `mine` has the lowest sequence number among `children` (it holds the
 * lock), else the child just below it, the only one it watches. Throws if `mine` is not among them.
 */
export function predecessorOf(children: readonly string[], mine: string): string | undefined {
  const sorted = [...children].sort((a, b) => sequenceOf(a) - sequenceOf(b));
  const at = sorted.indexOf(mine);
  if (at < 0) throw new Error(`lock node ${mine} is not among the lock's children (${children.length} of them)`);
  return at === 0 ? undefined : sorted[at - 1];
}

/** Takes the lock under `lockPath` (which must exist); resolves with the node to delete to release it. */
export async function acquireLock(c: Client, lockPath: string): Promise<string> {
  const created = await create(c, `${lockPath}/lock-`, Buffer.alloc(0), zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL);
  const mine = created.slice(lockPath.length + 1);
  for (;;) {
    const predecessor = predecessorOf(await getChildren(c, lockPath), mine);
    if (predecessor === undefined) return created;
    // Watch the predecessor with getData (an absent node errors and leaves no watch behind); its deletion, or any
    // change, sends us back to re-read the children: a predecessor that gave up does not mean we are first.
    await new Promise<void>((resolve, reject) =>
      c.getData(
        `${lockPath}/${predecessor}`,
        (_event: Event) => resolve(),
        (error) => {
          if (!error) return; // watching; the watcher resolves
          if (codeOf(error) === zookeeper.Exception.NO_NODE) resolve();
          else reject(error);
        },
      ),
    );
  }
}

export const releaseLock = (c: Client, node: string) => remove(c, node);
