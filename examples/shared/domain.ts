/**
 * The example's domain: users and payments kept in memory. Framework-free, so
 * the Express and Koa apps serve exactly the same API. Every record has a
 * `version` that increases on each write: the example's optimistic-concurrency
 * validator.
 */
import { randomUUID } from 'node:crypto';

export interface User {
  id: string;
  email: string;
  name: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface Payment {
  id: string;
  amount: number;
  currency: string;
  userId: string;
  description?: string;
  status: 'succeeded';
  createdAt: string;
}

/**
 * The users every fresh example starts with, in this order: fifty, so that a
 * list has pages to walk through. Deterministic (ids from first names, version
 * 1, created one second apart from the epoch on, last modified when created),
 * so the walk-through in examples/README.md and the tests can name them.
 */
export const SEED_USERS: ReadonlyArray<readonly [first: string, last: string]> = [
  ['Ada', 'Lovelace'],
  ['Alan', 'Turing'],
  ['Grace', 'Hopper'],
  ['Barbara', 'Liskov'],
  ['Edsger', 'Dijkstra'],
  ['Donald', 'Knuth'],
  ['John', 'McCarthy'],
  ['Margaret', 'Hamilton'],
  ['Dennis', 'Ritchie'],
  ['Ken', 'Thompson'],
  ['Frances', 'Allen'],
  ['Tony', 'Hoare'],
  ['Niklaus', 'Wirth'],
  ['Leslie', 'Lamport'],
  ['Radia', 'Perlman'],
  ['Vint', 'Cerf'],
  ['Bob', 'Kahn'],
  ['Tim', 'Berners-Lee'],
  ['Shafi', 'Goldwasser'],
  ['Whitfield', 'Diffie'],
  ['Martin', 'Hellman'],
  ['Adele', 'Goldberg'],
  ['Jean', 'Sammet'],
  ['Fernando', 'Corbató'],
  ['Sophie', 'Wilson'],
  ['Steve', 'Wozniak'],
  ['Linus', 'Torvalds'],
  ['Guido', 'van Rossum'],
  ['Bjarne', 'Stroustrup'],
  ['James', 'Gosling'],
  ['Anders', 'Hejlsberg'],
  ['Brendan', 'Eich'],
  ['Yukihiro', 'Matsumoto'],
  ['Larry', 'Wall'],
  ['Hedy', 'Lamarr'],
  ['Claude', 'Shannon'],
  ['Konrad', 'Zuse'],
  ['Charles', 'Babbage'],
  ['Ivan', 'Sutherland'],
  ['Douglas', 'Engelbart'],
  ['Butler', 'Lampson'],
  ['Robert', 'Tarjan'],
  ['Judea', 'Pearl'],
  ['Richard', 'Hamming'],
  ['Peter', 'Naur'],
  ['Ole-Johan', 'Dahl'],
  ['Kristen', 'Nygaard'],
  ['Evelyn', 'Berezin'],
  ['Mary', 'Keller'],
  ['Annie', 'Easley'],
];

export class Repository {
  readonly users = new Map<string, User>();
  readonly payments = new Map<string, Payment>();

  constructor() {
    SEED_USERS.forEach(([first, last], i) => {
      const id = `usr_${first.toLowerCase()}`;
      const at = new Date(i * 1000).toISOString();
      this.users.set(id, {
        id,
        email: `${first.toLowerCase()}@example.com`,
        name: `${first} ${last}`,
        version: 1,
        createdAt: at,
        updatedAt: at,
      });
    });
  }

  listUsers(): User[] {
    return [...this.users.values()];
  }

  createUser(input: { email: string; name: string }): User {
    const now = new Date().toISOString();
    const user: User = {
      id: `usr_${randomUUID().slice(0, 8)}`,
      ...input,
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    this.users.set(user.id, user);
    return user;
  }

  updateUser(id: string, patch: Partial<Pick<User, 'email' | 'name'>>): User | undefined {
    const user = this.users.get(id);
    if (user === undefined) return undefined;
    const next: User = {
      ...user,
      ...patch,
      version: user.version + 1,
      updatedAt: new Date().toISOString(),
    };
    this.users.set(id, next);
    return next;
  }

  deleteUser(id: string): boolean {
    return this.users.delete(id);
  }

  /** Every payment, or one user's. */
  listPayments(userId?: string): Payment[] {
    const all = [...this.payments.values()];
    return userId === undefined ? all : all.filter((p) => p.userId === userId);
  }

  createPayment(input: {
    amount: number;
    currency: string;
    userId: string;
    description?: string;
  }): Payment {
    const payment: Payment = {
      id: `pay_${randomUUID().replaceAll('-', '').slice(0, 16)}`,
      ...input,
      status: 'succeeded',
      createdAt: new Date().toISOString(),
    };
    this.payments.set(payment.id, payment);
    return payment;
  }
}
