/**
 * The pluggable server-side logger. restwell logs what clients must not see
 * (stack traces, store failures, causes) here. Pass your own (pino, winston,
 * console) to the adapter; the default writes one JSON line per entry on stderr.
 */

/** The levels restwell logs at; `debug` only when an adapter's `debug` option is on. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** Where restwell's server-side lines go: pino, winston and `console` fit as they are. */
export interface Logger {
  error(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  /** Needed only with an adapter's `debug: true` (which module answered a request). */
  debug?(message: string, fields?: Record<string, unknown>): void;
}

/** Turns an error (and up to five links of its `cause` chain) into plain JSON-safe fields. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined && depth < 5) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/**
 * The fields with each top-level error already turned into plain fields.
 * JSON.stringify calls an error's own `toJSON()` before the replacer sees the
 * error, so a `toJSON` that throws dropped every field of the line, and one
 * that returns a summary hid the message, stack and cause. Copies only when a
 * field is an error.
 */
function withSerializedErrors(
  fields: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const key in fields) {
    const value = fields[key];
    if (value instanceof Error) {
      out ??= { ...fields };
      out[key] = serializeError(value);
    }
  }
  return out ?? fields;
}

/** A logger that writes one JSON object per line to a stream (stderr by default). */
export function jsonLogger(
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    let line: string;
    try {
      line = JSON.stringify(
        { level, time: new Date().toISOString(), msg: message, ...withSerializedErrors(fields) },
        replacer,
      );
    } catch {
      // Fields that cannot be serialised (a cycle, a throwing getter) are
      // dropped, but the trace id is kept: it is what joins the line to the
      // client's report.
      const traceId = fields?.traceId;
      line = JSON.stringify({
        level,
        time: new Date().toISOString(),
        msg: message,
        ...(typeof traceId === 'string' ? { traceId } : {}),
        fieldsDropped: true,
      });
    }
    write(`${line}\n`);
  };
  return {
    error: (m, f) => emit('error', m, f),
    debug: (m, f) => emit('debug', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
  };
}

/**
 * Lets one log line through per interval, so that an outage that fails every
 * request writes one line every few seconds rather than one per request.
 * `pass()` answers how many lines were held back since the last one that
 * passed, or `undefined` when this one must be held back too.
 */
export class LogThrottle {
  private last = Number.NEGATIVE_INFINITY;
  private held = 0;
  constructor(
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  pass(): { suppressed: number } | undefined {
    const now = this.now();
    if (now - this.last < this.intervalMs) {
      this.held++;
      return undefined;
    }
    this.last = now;
    const suppressed = this.held;
    this.held = 0;
    return { suppressed };
  }
}

/** A logger that drops everything; useful in tests. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** The logger adapters use when none is given: one JSON line per entry on stderr. */
export const defaultLogger: Logger = jsonLogger();
