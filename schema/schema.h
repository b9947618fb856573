/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* The SQL migrations of schema/, compiled in; step N moves PRAGMA user_version to N. */
#ifndef HARP_SCHEMA_SCHEMA_H
#define HARP_SCHEMA_SCHEMA_H

struct schema_step {
    unsigned version;
    const char *name;
    const char *sql;
};

extern const struct schema_step schema_steps[];
extern const unsigned schema_nsteps;

#endif
