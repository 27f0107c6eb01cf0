/**
 * In-process audit sinks: JSON lines to a writable stream, and a callback.
 * Their chain head lives in the process, so each process writes its own log
 * (name it per instance, e.g. `api-${hostname}-${pid}`); for one log shared
 * by many processes use the Redis or PostgreSQL sink.
 *
 * @module
 */

import type { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { invalidOption } from '../core/errors.js';
import {
  type AuditSink,
  type ChainedRecord,
  type ChainHead,
  LogQueue,
  recordText,
} from './chain.js';

/** Anything with a `write(chunk)` (a Node stream, `process.stdout`, a pino destination). */
export interface WritableLike {
  write(chunk: string, callback?: (err?: Error | null) => void): boolean;
}

/** Options of {@link streamSink}. */
export interface StreamSinkOptions {
  /**
   * Write each record inside a pino-shaped line (`{"level":30,"time":…,"msg":"audit","audit":{…}}`),
   * so pino tooling reads it; `verify()` reads both shapes.
   * @default true
   */
  pino?: boolean;
}

/** A sink whose head is kept in this process. */
function inProcessSink(name: string, write: (record: ChainedRecord) => Promise<void>): AuditSink {
  const heads = new Map<string, ChainHead>();
  const queue = new LogQueue();
  return {
    name,
    append(log, make) {
      return queue.run(log, async () => {
        const record = make(heads.get(log));
        await write(record);
        // The head moves only once the record is written: a failed write is retried on the same head.
        heads.set(log, { seq: record.seq, hash: record.hash });
        return record;
      });
    },
  };
}

/** Streams the sinks listen to for 'error', once each. */
const heard = new WeakSet<object>();

function ignoreStreamError(): void {
  // The write's callback has the same error: the append fails and is retried.
}

/**
 * JSON lines to a stream: one record per line, in order. A write's callback
 * error (a closed pipe, a full disk) fails the append, which the middleware
 * retries; a stream that stops taking writes is bounded by the middleware's
 * `timeoutMs`. A destination whose `write()` takes no callback (a pino
 * destination, sonic-boom) has a record written once `write()` returns.
 */
export function streamSink(stream: WritableLike, options: StreamSinkOptions = {}): AuditSink {
  if (stream === null || typeof stream !== 'object' || typeof stream.write !== 'function') {
    invalidOption('audit', 'stream', 'a writable stream', stream);
  }
  const pino = options.pino ?? true;
  // sonic-boom's write(data) never calls a callback: waiting for one would stop the log at its first record.
  const callsBack = stream instanceof Writable || stream.write.length >= 2;
  // A Node stream emits a failed write as 'error' too, and an 'error' nobody
  // hears is an uncaught exception: a full disk would end the process.
  const emitter = stream as Partial<Pick<EventEmitter, 'on'>>;
  if (typeof emitter.on === 'function' && !heard.has(stream)) {
    heard.add(stream);
    emitter.on.call(stream, 'error', ignoreStreamError);
  }
  return inProcessSink('stream', (record) => {
    const text = recordText(record);
    const line = pino
      ? `{"level":30,"time":${Date.parse(record.time)},"msg":"audit","audit":${text}}\n`
      : `${text}\n`;
    return new Promise<void>((resolve, reject) => {
      if (!callsBack) {
        stream.write(line);
        resolve();
        return;
      }
      stream.write(line, (err) => (err ? reject(err) : resolve()));
    });
  });
}

/** Each record to a function; a rejection fails the append (retried by the middleware). */
export function callbackSink(write: (record: ChainedRecord) => void | Promise<void>): AuditSink {
  if (typeof write !== 'function') invalidOption('audit', 'callback', 'a function', write);
  return inProcessSink('callback', async (record) => {
    await write(record);
  });
}
