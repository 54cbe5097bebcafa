#include "wd-load.h"
int wl_mode_lmtp(void) { return 2; }
