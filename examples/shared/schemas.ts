/** Request schemas of the example API, as Standard Schema validators (zod). */
import { z } from 'zod';

export const CreateUser = z.object({
  email: z.email(),
  name: z.string().min(1).max(200),
});

export const ReplaceUser = CreateUser;

export const PatchUser = CreateUser.partial().refine((v) => Object.keys(v).length > 0, {
  message: 'At least one of email, name is required.',
});

export const CreatePayment = z.object({
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'An ISO 4217 code such as EUR.'),
  userId: z.string().min(1),
  description: z.string().max(500).optional(),
});
