#include "wd-load.h"
int wl_mode_pop3(void) { return 2; }
