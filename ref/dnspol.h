/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy's allowlist (SPEC.md 8.3): name suffixes matched ASCII case-insensitively on label
 * boundaries (RFC 4343), so "evil-example.test" is not under "example.test".
 */
#ifndef CELLREF_DNSPOL_H
#define CELLREF_DNSPOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dnspol;

int dnspol_new(struct dnspol **ret);
void dnspol_free(struct dnspol *p);
void dnspol_freep(struct dnspol **p);

/*
 * Add a suffix in text form ("example.test", "example.test.", "." for everything). Escapes are
 * not accepted. -EINVAL for an empty label, a label over 63 bytes or a name over 255.
 */
int dnspol_allow(struct dnspol *p, const char *suffix);

/* Whether any suffix was added: without one, every name is allowed. */
bool dnspol_active(const struct dnspol *p);

/* Whether the wire name (as validated by dnswire) is allowed. */
bool dnspol_allows(const struct dnspol *p, const uint8_t *name, size_t name_len);

/* The i-th suffix normalised: lowercase with a trailing dot. NULL past the end. */
const char *dnspol_suffix(const struct dnspol *p, size_t i);

#endif
