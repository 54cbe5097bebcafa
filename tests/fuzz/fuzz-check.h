#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

/* CHECK() for the fuzz targets: a broken contract aborts with the
   line, which libFuzzer reports as a crash with the input saved. */
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "check failed at line %d: %s\n", __LINE__,      \
				#cond);                                                 \
			abort();                                                        \
		}                                                                       \
	} while (0)

#endif
