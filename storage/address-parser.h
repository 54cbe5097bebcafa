#ifndef ADDRESS_PARSER_H
#define ADDRESS_PARSER_H

/* nodemailer's addressparser (6.9, which WildDuck uses when it parses a
 * message) ported to C: one address header value in, the list of addresses
 * and groups out. Private to libwdstore (address-parser.c describes the
 * rules and where we differ). */

#include "js-string.h"

#include <stdbool.h>

struct wd_arena;

/* Groups inside groups: addressparser parses a group's text again; deeper
   groups keep their name but lose their members. */
#define WD_ADDRESS_DEPTH_MAX 8

struct wd_address {
	struct wd_address *next;
	bool group;
	/* {address, name} for an address (either may be empty); {name, group}
	   for a group, where an empty name is JavaScript's undefined. */
	struct wd_js_text name;
	struct wd_js_text address;   /* addresses only */
	struct wd_address *members;  /* groups only: NULL when none */
};

/* addressparser(value) for well-formed UTF-8 `value` (NULs allowed: they are
   dropped like other control characters). *list_r is NULL when the value
   holds no address. Everything is allocated in `arena`; the result may
   point into `value`, which must outlive it. WD_ERROR when memory runs
   out. Linear in the value's length for each level of group nesting. */
int wd__address_parse(struct wd_arena *arena, struct wd_js_text value,
		      struct wd_address **list_r);

#endif
