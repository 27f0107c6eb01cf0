/**
 * The fields of draft-ietf-httpapi-ratelimit-headers (-10):
 *
 *     RateLimit-Policy: "per-ip";q=100;w=60, "per-key";q=1000;w=3600
 *     RateLimit: "per-ip";r=42;t=18
 *
 * Both are Structured Field Lists (RFC 9651) of Strings naming the policy,
 * with Integer parameters: `q` quota and `w` window in seconds for a policy,
 * `r` remaining quota and `t` seconds until it is restored for the current
 * state. And the legacy, widely parsed `X-RateLimit-Limit`, `-Remaining`
 * and `-Reset` (epoch seconds, as GitHub sends it).
 */
import type { LimitOutcome } from './algorithms.js';

/** What the headers report for one policy. */
export interface PolicyReport {
  name: string;
  limit: number;
  windowMs: number;
  remaining: number;
  resetMs: number;
  /** This policy's `RateLimit-Policy` item, when it is the same on every request. */
  item?: string | undefined;
}

/** A policy as evaluated for one request. */
export interface EvaluatedPolicy extends PolicyReport {
  outcome: LimitOutcome;
}

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** `"name";q=100;w=60`. Names are validated to need no escaping. */
export function policyItem(p: Pick<PolicyReport, 'name' | 'limit' | 'windowMs'>): string {
  return `"${p.name}";q=${p.limit};w=${Math.max(1, seconds(p.windowMs))}`;
}

/** `"name";q=100;w=60` for each policy; an item built once (static limits) is reused. */
export function policyField(policies: readonly PolicyReport[]): string {
  let field = '';
  for (const p of policies) {
    const item = p.item ?? policyItem(p);
    field = field === '' ? item : `${field}, ${item}`;
  }
  return field;
}

/** `"name";r=42;t=18` for the reported policy. */
export function stateField(p: PolicyReport): string {
  return `"${p.name}";r=${p.remaining};t=${seconds(p.resetMs)}`;
}

export function legacyFields(p: PolicyReport, nowMs: number): Record<string, string> {
  return {
    'X-RateLimit-Limit': String(p.limit),
    'X-RateLimit-Remaining': String(p.remaining),
    'X-RateLimit-Reset': String(Math.ceil((nowMs + p.resetMs) / 1000)),
  };
}
