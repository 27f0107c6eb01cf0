/**
 * jose, loaded on first use. It is an optional peer dependency that only
 * JWT verification needs: an application that authenticates with API keys
 * alone imports `restwell/auth` without it, and no other entry of the package
 * ever loads it.
 */
export type Jose = typeof import('jose');

let loading: Promise<Jose> | undefined;

/** The jose module; rejects with an install hint when it is missing. */
export function loadJose(): Promise<Jose> {
  loading ??= import('jose').catch((cause: unknown) => {
    loading = undefined;
    throw new Error(
      'restwell/auth: JWT verification needs the jose package, an optional peer dependency: npm install jose',
      { cause },
    );
  });
  return loading;
}
