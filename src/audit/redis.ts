/**
 * An audit log in a Redis stream, shared by every process. The chain head is
 * a hash next to the stream; one script moves the head and appends the record
 * only if the head is still the one the record was chained to, so concurrent
 * appends from many processes form one chain (the loser re-chains to the new
 * head and tries again). Both keys share a hash tag, so it also works on
 * Redis Cluster. A head that is gone (deleted, or evicted by a Redis that
 * evicts: run it with `maxmemory-policy noeviction`) is read back from the
 * newest record of the stream.
 *
 * Retention: `maxLen` (XADD MAXLEN ~) keeps about the newest N records,
 * `retentionMs` (XADD MINID ~) the records younger than that. What retention
 * removes is the oldest records: `verify()` starts from the first record it
 * is given, and checkpoints still catch a truncated tail.
 *
 * @module
 */

import type { Redis } from 'ioredis';
import { invalidOption } from '../core/errors.js';
import {
  type AuditSink,
  type ChainedRecord,
  type ChainHead,
  chainAll,
  LogQueue,
  recordText,
} from './chain.js';

/** Options of {@link redisStreamSink}. */
export interface RedisStreamSinkOptions {
  /** Prefix of the keys. @default 'restwell:audit:' */
  prefix?: string;
  /** Keep about this many newest records (XADD MAXLEN ~). @default undefined (all) */
  maxLen?: number;
  /** Keep the records of about this many last milliseconds (XADD MINID ~). @default undefined (all) */
  retentionMs?: number;
  /** Attempts when other processes keep moving the head first. @default 50 */
  maxAttempts?: number;
}

// KEYS: head, stream. ARGV: expected seq and hash, trim mode, trim arg (MAXLEN's count, or the
// retention in ms), then (seq, hash, text) per record. The head is compared whole: a cached head of the right number but another hash
// (the log wiped and begun again since) must not be chained to. Without a head, the newest
// record is the head: a head key deleted or evicted must not begin a second chain at 1 in the
// same stream.
const APPEND = `
local head = redis.call('HMGET', KEYS[1], 'seq', 'hash')
local seq, hash = head[1], head[2]
if not seq then
  seq, hash = '0', ''
  local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
  if newest then
    local fields = newest[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'record' then
        local ok, record = pcall(cjson.decode, fields[i + 1])
        if not ok or type(record) ~= 'table' or type(record.seq) ~= 'number' or type(record.hash) ~= 'string' then
          return redis.error_reply('restwell/audit: the head is gone and the newest record cannot be read')
        end
        seq, hash = string.format('%d', record.seq), record.hash
      end
    end
  end
end
hash = hash or ''
if seq ~= ARGV[1] or hash ~= ARGV[2] then return {0, seq, hash} end
local n = (#ARGV - 4) / 3
local minid
if ARGV[3] == 'minid' then
  -- Stream ids are the server's milliseconds: retention is measured by its clock, not the appender's.
  local now = redis.call('TIME')
  minid = string.format('%d-0', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[4]))
end
for i = 0, n - 1 do
  local text = ARGV[7 + i * 3]
  if ARGV[3] == 'maxlen' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'record', text)
  elseif ARGV[3] == 'minid' then
    redis.call('XADD', KEYS[2], 'MINID', '~', minid, '*', 'record', text)
  else
    redis.call('XADD', KEYS[2], '*', 'record', text)
  end
end
redis.call('HSET', KEYS[1], 'seq', ARGV[5 + (n - 1) * 3], 'hash', ARGV[6 + (n - 1) * 3])
return {1}
`;

function keysOf(prefix: string, log: string): [head: string, stream: string] {
  // One hash tag for both keys: the script touches them together (Redis Cluster).
  const tag = `${prefix}{${log}}`;
  return [`${tag}:head`, `${tag}:records`];
}

function positive(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalidOption('audit', name, 'an integer from 1', value);
  }
  return value;
}

/** Appends audit records to a Redis stream per log (see the module's comment). */
export function redisStreamSink(redis: Redis, options: RedisStreamSinkOptions = {}): AuditSink {
  if (redis === null || typeof redis !== 'object' || typeof redis.eval !== 'function') {
    invalidOption('audit', 'redis', 'an ioredis client', redis);
  }
  const prefix = options.prefix ?? 'restwell:audit:';
  const maxLen = positive('maxLen', options.maxLen);
  const retentionMs = positive('retentionMs', options.retentionMs);
  if (maxLen !== undefined && retentionMs !== undefined) {
    invalidOption(
      'audit',
      'retentionMs',
      'unset when maxLen is set (one retention rule)',
      retentionMs,
    );
  }
  const maxAttempts = positive('maxAttempts', options.maxAttempts) ?? 50;
  const heads = new Map<string, ChainHead | undefined>();
  const queue = new LogQueue();
  function appendRecords(
    log: string,
    makers: ReadonlyArray<(head: ChainHead | undefined) => ChainedRecord>,
  ): Promise<ChainedRecord[]> {
    return queue.run(log, async () => {
      const [headKey, streamKey] = keysOf(prefix, log);
      let head = heads.get(log);
      for (let attempt = 0; attempt < maxAttempts; attempt++) {
        const records = chainAll(head, makers);
        const [mode, arg] =
          maxLen !== undefined
            ? ['maxlen', String(maxLen)]
            : retentionMs !== undefined
              ? ['minid', String(retentionMs)]
              : ['none', ''];
        const args = [String(head?.seq ?? 0), head?.hash ?? '', mode, arg];
        for (const r of records) args.push(String(r.seq), r.hash, recordText(r));
        const reply = (await redis.eval(APPEND, 2, headKey, streamKey, ...args)) as [
          number,
          string?,
          string?,
        ];
        if (reply[0] === 1) {
          const last = records[records.length - 1] as ChainedRecord;
          heads.set(log, { seq: last.seq, hash: last.hash });
          return records;
        }
        // Another process appended first: chain to its head.
        const seq = Number(reply[1]);
        head = seq === 0 ? undefined : { seq, hash: reply[2] ?? '' };
      }
      throw new Error(
        `restwell/audit: the head of log ${log} kept moving; gave up after ${maxAttempts} attempts.`,
      );
    });
  }

  return {
    name: 'redis',
    async append(log, make) {
      const [record] = await appendRecords(log, [make]);
      return record as ChainedRecord;
    },
    appendMany: (log, makers) => appendRecords(log, makers),
  };
}

/**
 * The stored text of every record of a log in a Redis stream, oldest first,
 * read a page at a time (for `verifyAuditStream()`, in constant memory).
 */
export async function* streamRedisLog(
  redis: Redis,
  log: string,
  options: { prefix?: string } = {},
): AsyncGenerator<string> {
  const [, streamKey] = keysOf(options.prefix ?? 'restwell:audit:', log);
  let start = '-';
  for (;;) {
    const batch = await redis.xrange(streamKey, start, '+', 'COUNT', 1000);
    for (const [, fields] of batch) {
      const i = fields.indexOf('record');
      if (i >= 0) yield fields[i + 1] as string;
    }
    if (batch.length < 1000) return;
    start = `(${batch[batch.length - 1]?.[0]}`;
  }
}

/** Every record of a log in a Redis stream, oldest first (for `verifyAuditLog()`). */
export async function readRedisLog(
  redis: Redis,
  log: string,
  options: { prefix?: string } = {},
): Promise<ChainedRecord[]> {
  const out: ChainedRecord[] = [];
  for await (const text of streamRedisLog(redis, log, options)) {
    out.push(JSON.parse(text) as ChainedRecord);
  }
  return out;
}
