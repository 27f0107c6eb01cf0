/** Request schemas of the example API, as Standard Schema validators (zod). */
import { z } from 'zod';

/** A user as v2 writes it (`fullName`); v1 bodies (`name`) are migrated to it first. */
export const CreateUser = z.object({
  email: z.email(),
  fullName: z.string().min(1).max(200),
});

// Loose: unknown and server-owned members reach replaceRepresentation(), which refuses them by name.
export const ReplaceUser = CreateUser.loose();

export const CreatePayment = z.object({
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'An ISO 4217 code such as EUR.'),
  userId: z.string().min(1),
  description: z.string().max(500).optional(),
});
