/**
 * `restwell-audit verify`: the command line of `verifyAuditLog()`.
 *
 * ```
 * AUDIT_KEY=... restwell-audit verify audit.jsonl --checkpoints checkpoints.jsonl --public-key audit.pub
 * AUDIT_KEY=... restwell-audit verify --redis redis://host:6379 --log api
 * AUDIT_KEY=... restwell-audit verify --postgres postgres://host/db --log api
 * ```
 *
 * The chain key is read from an environment variable (`--key-env`, default
 * `AUDIT_KEY`), never from an argument, which other users of the machine can
 * see in the process list. Exit status: 0 intact, 1 a defect (named on
 * stdout), 2 a usage or input error.
 *
 * @module
 */

import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { AuditCheckpoint } from './checkpoint.js';
import { type AuditVerification, verifyAuditStream } from './verify.js';

/** Where the command writes, and what it reads: injectable for tests. */
export interface AuditCliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Reads a file, or standard input for `-`, whole. By default the log is
   * read line by line and the checkpoints and key whole.
   */
  readFile?: (path: string) => string;
}

const USAGE = `usage: restwell-audit verify [FILE | - | --redis URL | --postgres URL] [options]
  --log NAME              the log to check (default: every log in the input)
  --key-env VAR           the environment variable holding the chain key (default AUDIT_KEY)
  --checkpoints FILE      signed checkpoints, one JSON object per line
  --public-key FILE       the ed25519 public key (PEM) checkpoints are signed with
  --allow-trimmed-start   the log may start after record 1 (retention)
  --prefix P              Redis key prefix (default restwell:audit:)
  --table T               PostgreSQL table (default restwell_audit)`;

/**
 * The lines of a file, or of standard input for `-`, as they are read: a log
 * of any size is checked in constant memory (one string of the whole file
 * could not hold more than about 512 MB).
 */
async function fileLines(path: string): Promise<AsyncIterable<string>> {
  // Opened first, so that a missing file is a read error before any line.
  const input = path === '-' ? process.stdin : (await open(path)).createReadStream();
  return createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
}

/** Runs the command with `argv` (the arguments after the program name); resolves to the exit status. */
export async function runAuditCli(argv: readonly string[], io: AuditCliIo): Promise<number> {
  const read = io.readFile ?? ((p: string) => readFileSync(p === '-' ? 0 : p, 'utf8'));
  const [command, ...rest] = argv;
  if (command !== 'verify') {
    io.err(USAGE);
    return 2;
  }
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (arg === '--allow-trimmed-start') flags[arg] = true;
    else if (arg.startsWith('--')) {
      const value = rest[++i];
      if (value === undefined) {
        io.err(`${arg} needs a value.\n${USAGE}`);
        return 2;
      }
      flags[arg] = value;
    } else positional.push(arg);
  }
  const known = [
    '--log',
    '--key-env',
    '--checkpoints',
    '--public-key',
    '--allow-trimmed-start',
    '--prefix',
    '--table',
    '--redis',
    '--postgres',
  ];
  const unknown = Object.keys(flags).find((f) => !known.includes(f));
  if (unknown !== undefined || positional.length > 1) {
    io.err(`${unknown === undefined ? 'Give one file.' : `Unknown option ${unknown}.`}\n${USAGE}`);
    return 2;
  }
  const keyEnv = typeof flags['--key-env'] === 'string' ? flags['--key-env'] : 'AUDIT_KEY';
  const key = io.env[keyEnv];
  if (key === undefined || Buffer.byteLength(key) < 32) {
    io.err(`Set ${keyEnv} to the chain key (at least 32 bytes).`);
    return 2;
  }
  const log = typeof flags['--log'] === 'string' ? flags['--log'] : undefined;
  try {
    let checkpoints: AuditCheckpoint[] | undefined;
    if (typeof flags['--checkpoints'] === 'string') {
      if (typeof flags['--public-key'] !== 'string') {
        io.err(`--checkpoints needs --public-key, the key they are signed with.\n${USAGE}`);
        return 2;
      }
      checkpoints = [];
      for (const [i, line] of read(flags['--checkpoints']).split('\n').entries()) {
        if (line.trim() === '') continue;
        try {
          checkpoints.push(JSON.parse(line) as AuditCheckpoint);
        } catch {
          io.err(`--checkpoints: line ${i + 1} is not JSON.`);
          return 2;
        }
      }
    }
    const publicKey =
      typeof flags['--public-key'] === 'string'
        ? createPublicKey(read(flags['--public-key']))
        : undefined;
    if (publicKey !== undefined && publicKey.asymmetricKeyType !== 'ed25519') {
      io.err(`--public-key must be an ed25519 public key, not ${publicKey.asymmetricKeyType}.`);
      return 2;
    }
    const options = {
      key,
      ...(log === undefined ? {} : { log }),
      ...(checkpoints === undefined ? {} : { checkpoints }),
      ...(publicKey === undefined ? {} : { publicKey }),
      allowTrimmedStart: flags['--allow-trimmed-start'] === true,
    };
    let result: AuditVerification;
    if (typeof flags['--redis'] === 'string' || typeof flags['--postgres'] === 'string') {
      if (log === undefined) {
        io.err('--log is required with --redis or --postgres.');
        return 2;
      }
      // The stored texts, not parsed records, so that every check of a line applies to them.
      if (typeof flags['--redis'] === 'string') {
        const { Redis } = await import('ioredis');
        const { streamRedisLog } = await import('./redis.js');
        const redis = new Redis(flags['--redis'], { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await redis.connect();
          const prefix = typeof flags['--prefix'] === 'string' ? flags['--prefix'] : undefined;
          result = await verifyAuditStream(
            streamRedisLog(redis, log, prefix === undefined ? {} : { prefix }),
            options,
          );
        } finally {
          redis.disconnect();
        }
      } else {
        const pg = await import('pg');
        const { streamPostgresLog } = await import('./postgres.js');
        const pool = new pg.default.Pool({
          connectionString: flags['--postgres'] as string,
          max: 1,
        });
        try {
          const table = typeof flags['--table'] === 'string' ? flags['--table'] : undefined;
          result = await verifyAuditStream(
            streamPostgresLog(pool, log, table === undefined ? {} : { table }),
            options,
          );
        } finally {
          await pool.end();
        }
      }
    } else {
      const path = positional[0] ?? '-';
      result = await verifyAuditStream(
        io.readFile === undefined ? await fileLines(path) : io.readFile(path).split('\n'),
        options,
      );
    }
    if (result.ok) {
      io.out(
        `ok: ${result.records} records${result.first === undefined ? '' : ` (${result.first} to ${result.last})`}${result.checkpoint === undefined ? '' : `, checked against the checkpoint of record ${result.checkpoint.seq} at ${result.checkpoint.time}`}`,
      );
      return 0;
    }
    io.out(`${result.defect?.kind}: ${result.defect?.detail}`);
    return 1;
  } catch (err) {
    io.err(`Could not read the log: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
}
