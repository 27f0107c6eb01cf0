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

export class Repository {
  readonly users = new Map<string, User>();
  readonly payments = new Map<string, Payment>();

  constructor() {
    for (const [id, email, name] of [
      ['usr_ada', 'ada@example.com', 'Ada Lovelace'],
      ['usr_alan', 'alan@example.com', 'Alan Turing'],
      ['usr_grace', 'grace@example.com', 'Grace Hopper'],
    ] as const) {
      this.users.set(id, { id, email, name, version: 1, updatedAt: new Date(0).toISOString() });
    }
  }

  listUsers(): User[] {
    return [...this.users.values()];
  }

  createUser(input: { email: string; name: string }): User {
    const user: User = {
      id: `usr_${randomUUID().slice(0, 8)}`,
      ...input,
      version: 1,
      updatedAt: new Date().toISOString(),
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

  listPayments(): Payment[] {
    return [...this.payments.values()];
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
