/**
 * The one check of a PostgreSQL table name that restwell interpolates into
 * SQL (identifiers cannot be bind parameters). Internal: imported by the
 * PostgreSQL store (`restwell/postgres`) and meant for the transactional
 * idempotency table (`restwell/idempotency/postgres`) too, so that both
 * accept exactly the same names.
 */
import { invalidOption } from '../../core/errors.js';

/**
 * An unquoted identifier, optionally schema-qualified: letters, digits and
 * `_`, not starting with a digit, at most 63 bytes per part (PostgreSQL's
 * NAMEDATALEN - 1). Unquoted, so PostgreSQL folds it to lower case.
 */
export const TABLE_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}(\.[a-zA-Z_][a-zA-Z0-9_]{0,62})?$/;

/**
 * Returns `table` when it is a safe table name; otherwise throws a
 * `TypeError` prefixed `restwell/<module>:` naming the option, without
 * serialising the value.
 */
export function checkTableName(module: string, table: unknown, option = 'table'): string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) {
    invalidOption(
      module,
      option,
      'a table name (letters, digits, _; optionally schema.table)',
      table,
    );
  }
  return table;
}
