#ifndef WD_PROGRAM_H
#define WD_PROGRAM_H

/* What the daemons (wd-server, wd-api) do first: check the command line
 * (only --help, --config FILE and --section.key=value), load the
 * configuration (--config FILE, else conf.d/default.toml when present, else
 * the built-in defaults), apply APPCONF_ variables and --section.key=value
 * arguments, and start logging from log.level / log.target. Messages go to
 * stderr prefixed with `ident`. */

#include <stdio.h>

struct wd_config;

/* NULL with *exit_r set when the program should end now: 0 after --help
   (usage printed to stdout), 2 for an unexpected argument, 1 when the
   configuration or logging fails (all reported). */
struct wd_config *wd_program_config(const char *ident, int argc, char **argv,
				    void (*usage)(FILE *out), int *exit_r);

#endif
