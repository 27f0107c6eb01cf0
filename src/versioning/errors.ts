import { RestwellError, type RestwellErrorCode } from '../core/errors.js';

/** 400, 404 or 406 (by strategy): the request names a version this API does not serve. */
const VERSION_UNSUPPORTED = 'version-unsupported' satisfies RestwellErrorCode;
/** 410: the version is past its sunset and no longer served. */
const VERSION_SUNSET = 'version-sunset' satisfies RestwellErrorCode;
/** 410: the resource (a deprecated route) is past its sunset and no longer served. */
const RESOURCE_SUNSET = 'resource-sunset' satisfies RestwellErrorCode;

/**
 * A version this API does not serve: 404 when it came in the URI (no such
 * resource), 406 when in `Accept` (no acceptable representation), 400 when in
 * a header. Lists the supported versions, newest first, in `supported`.
 */
export class VersionUnsupportedError extends RestwellError {
  override readonly name = 'VersionUnsupportedError';
  /** The supported versions, newest first. */
  readonly supported: readonly string[];
  constructor(status: 400 | 404 | 406, detail: string, supported: readonly string[]) {
    super(VERSION_UNSUPPORTED, status, 'Unsupported API version', {
      detail,
      extensions: { supported },
    });
    this.supported = supported;
  }
}

/**
 * 410 Gone: the version is past its sunset (RFC 8594) and this API no longer
 * serves it. Names the successor version, when there is one, in `successor`.
 */
export class VersionSunsetError extends RestwellError {
  override readonly name = 'VersionSunsetError';
  readonly version: string;
  readonly successor: string | undefined;
  constructor(version: string, sunset: Date, successor: string | undefined, link?: string) {
    super(VERSION_SUNSET, 410, `Version ${version} is past its sunset`, {
      detail: `Version ${version} was retired on ${sunset.toISOString()}${
        successor === undefined ? '.' : `; use ${successor}.`
      }`,
      extensions: {
        version,
        sunset: sunset.toISOString(),
        ...(successor === undefined ? {} : { successor }),
      },
      ...(link === undefined ? {} : { headers: { Link: link } }),
    });
    this.version = version;
    this.successor = successor;
  }
}

/** 410 Gone: a deprecated resource past its sunset; names its successor's URI when configured. */
export class ResourceSunsetError extends RestwellError {
  override readonly name = 'ResourceSunsetError';
  readonly successor: string | undefined;
  constructor(sunset: Date, successor: string | undefined, link?: string) {
    super(RESOURCE_SUNSET, 410, 'The resource is past its sunset', {
      detail: `This resource was retired on ${sunset.toISOString()}${
        successor === undefined ? '.' : `; use ${successor}.`
      }`,
      extensions: {
        sunset: sunset.toISOString(),
        ...(successor === undefined ? {} : { successor }),
      },
      ...(link === undefined ? {} : { headers: { Link: link } }),
    });
    this.successor = successor;
  }
}
