/**
 * Entity tags across versions, under the header and media-type strategies,
 * where one URI has a representation per version. They differ, so they must
 * not share a validator (RFC 9110 §8.8.1: a strong validator is unique across
 * every representation of a resource): a response of an older version has its
 * `ETag` labelled with the version,
 * `"abc"` becoming `"v1~abc"` (`W/"abc"`, `W/"v1~abc"`). The newest version's
 * tags carry no label. Validators stay what the application computes for the
 * newest representation; the label says which version's representation the
 * client holds.
 *
 * On the way in, before anything inside `versioning()` reads them:
 * - `If-None-Match` keeps only the tags of the client's version, unlabelled,
 *   so a `conditional()` inside compares them with the newest representation's
 *   validators; a tag of another version (or an unlabelled tag sent to an older
 *   version) names another representation, can never match this one, and is
 *   dropped (an emptied field is removed).
 * - `If-Match` has every version's label removed: it guards against lost
 *   updates, and a tag names the resource's state whichever version's
 *   representation carried it.
 *
 * A label goes before the tag, so that compression's coding suffix
 * (`"v1~abc-br"`) is added after it and removed first by `conditional()`.
 *
 * A tag that does not exist yet when `versioning()` returns (a hashing
 * `conditional()` mounted outside computes it afterwards) cannot be labelled
 * here: `versioning()` records the version with `varyEntityTag()` instead, and
 * that `conditional()` mixes it into the hash and compares the request's tags,
 * as it read them before `versioning()` rewrote them, with the result. Such a
 * tag carries no visible label and needs none: the outer `conditional()` is the
 * only one that validates it.
 *
 * Under the URI strategy each version's resource has its own URI, and
 * validators are per resource: tags are left as they are, whichever side the
 * `conditional()` is on. A cache keys what it stores by URI (RFC 9111 §4), so
 * two versions' equal tags never meet there.
 *
 * @module
 */
import {
  type EntityTag,
  formatEntityTag,
  parseEntityTag,
  parseETagList,
} from '../conditional/etag-list.js';

const SEPARATOR = '~';

/** The response `ETag` of `version`'s representation: its label before the tag; an invalid tag is left as it is. */
export function labelETag(value: string, version: string): string {
  const tag = parseEntityTag(value);
  if (tag === undefined) return value;
  return formatEntityTag({
    weak: tag.weak,
    opaque: `"${version}${SEPARATOR}${tag.opaque.slice(1)}`,
  });
}

/** The version whose label `tag` carries, among `versions`, or `undefined`. */
function labelOf(tag: EntityTag, versions: readonly string[]): string | undefined {
  const sep = tag.opaque.indexOf(SEPARATOR);
  if (sep < 2) return undefined;
  const label = tag.opaque.slice(1, sep);
  return versions.includes(label) ? label : undefined;
}

function unlabelled(tag: EntityTag, label: string): EntityTag {
  return { weak: tag.weak, opaque: `"${tag.opaque.slice(label.length + 2)}` };
}

/**
 * The `If-None-Match` value a module inside `versioning()` should see, for a
 * client of `version` (`newest` when it is the newest): `undefined` when no
 * tag is left. `*` and values that do not parse are returned as they are.
 */
export function ifNoneMatchFor(
  value: string,
  version: string,
  newest: boolean,
  versions: readonly string[],
): string | undefined {
  const list = parseETagList(value);
  if (list === undefined || list.kind !== 'tags') return value;
  const kept: string[] = [];
  for (const tag of list.tags) {
    const label = labelOf(tag, versions);
    if (label === undefined) {
      if (newest) kept.push(formatEntityTag(tag));
    } else if (label === version && !newest) {
      kept.push(formatEntityTag(unlabelled(tag, label)));
    }
  }
  return kept.length === 0 ? undefined : kept.join(', ');
}

/** The `If-Match` value a module inside `versioning()` should see: every version label removed. */
export function ifMatchFor(value: string, versions: readonly string[]): string {
  const list = parseETagList(value);
  if (list === undefined || list.kind !== 'tags') return value;
  return list.tags
    .map((tag) => {
      const label = labelOf(tag, versions);
      return formatEntityTag(label === undefined ? tag : unlabelled(tag, label));
    })
    .join(', ');
}
